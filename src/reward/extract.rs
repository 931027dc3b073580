//! Pulling the answer out of a completion, and the number scanner everything else parses with.
//! Completion text is untrusted: every scan here is linear (or capped), nothing panics.

use regex::Regex;
use serde_json::Value;

/// Completions longer than this fail extraction (the rule scores `on_fail`): a bound on the
/// work one completion can cause, far above any `max_completion_length` in practice.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// How many `{` we try as the start of a JSON object before giving up (each try may parse to
/// the end of the text, so this bounds json_path at a small multiple of linear).
pub(crate) const MAX_JSON_TRIES: usize = 32;
/// Longest number token we convert; longer ones are garbage, not answers.
const MAX_NUMBER_BYTES: usize = 512;

/// A compiled extractor (`extract = ...`).
#[derive(Clone, Debug)]
pub(crate) enum Extractor {
    Raw,
    AnswerTag,
    Boxed,
    LastNumber,
    /// A JSON pointer built from the dotted path ("" = the whole object).
    JsonPath(String),
    Regex(Regex),
}

/// What an extractor found.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer<'a> {
    Text(&'a str),
    Json(Value),
    /// Several regex capture groups (2..=4), meant as the numbers of a point or a box.
    Groups([&'a str; 4], usize),
}

impl Extractor {
    /// `None` when the answer isn't there (the rule then scores `on_fail`).
    pub(crate) fn apply<'a>(&self, text: &'a str) -> Option<Answer<'a>> {
        if text.len() > MAX_TEXT_BYTES {
            return None;
        }
        match self {
            Extractor::Raw => Some(Answer::Text(text)),
            Extractor::AnswerTag => answer_tag(text).map(Answer::Text),
            Extractor::Boxed => boxed(text).map(Answer::Text),
            Extractor::LastNumber => last_number(text).map(Answer::Text),
            Extractor::JsonPath(ptr) => {
                let mut v = first_json_object(text, |_| true)?;
                Some(Answer::Json(v.pointer_mut(ptr)?.take()))
            }
            Extractor::Regex(re) => regex_groups(re, text),
        }
    }
}

/// Dotted path (`action.x`, `box.0`) to a JSON pointer; `None` for an empty segment.
pub(crate) fn json_pointer(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some(String::new());
    }
    let mut ptr = String::new();
    for seg in path.split('.') {
        if seg.is_empty() {
            return None;
        }
        ptr.push('/');
        ptr.push_str(&seg.replace('~', "~0").replace('/', "~1"));
    }
    Some(ptr)
}

/// Inside the last `<answer>`; an unclosed one runs to the end (stop strings such as
/// `</answer>` are usually cut from the completion).
pub(crate) fn answer_tag(text: &str) -> Option<&str> {
    const OPEN: &str = "<answer>";
    let start = text.rfind(OPEN)? + OPEN.len();
    let rest = &text[start..];
    Some(match rest.find("</answer>") {
        Some(end) => &rest[..end],
        None => rest,
    })
}

/// Content of the last `\boxed{…}`, braces balanced (`\{` and `\}` are literal). An unbalanced
/// last one fails rather than falling back to an earlier, probably intermediate, box.
pub(crate) fn boxed(text: &str) -> Option<&str> {
    const OPEN: &str = "\\boxed{";
    let start = text.rfind(OPEN)? + OPEN.len();
    let b = text.as_bytes();
    let (mut depth, mut i) = (1usize, start);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The last number token (see [`next_number`]), thousands separators allowed.
pub(crate) fn last_number(text: &str) -> Option<&str> {
    let mut last = None;
    let mut i = 0;
    while let Some((s, e)) = next_number(text.as_bytes(), i, true) {
        last = Some((s, e));
        i = e;
    }
    last.map(|(s, e)| &text[s..e])
}

/// The first JSON object in the text (e.g. inside ```json fences) that `accept` likes.
pub(crate) fn first_json_object(
    text: &str,
    accept: impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> Option<Value> {
    let mut from = 0;
    for _ in 0..MAX_JSON_TRIES {
        let i = from + text[from..].find('{')?;
        let mut de = serde_json::Deserializer::from_str(&text[i..]);
        // serde_json's recursion limit (128) keeps deep nesting from overflowing the stack.
        if let Ok(Value::Object(m)) = serde::Deserialize::deserialize(&mut de)
            && accept(&m)
        {
            return Some(Value::Object(m));
        }
        from = i + 1;
    }
    None
}

/// The last match: no participating group → the whole match; one → that group; 2..=4 → the
/// numbers of a point or box; more → fail.
fn regex_groups<'a>(re: &Regex, text: &'a str) -> Option<Answer<'a>> {
    // Capped: iterating matches can be superlinear for some patterns.
    let caps = re.captures_iter(text).take(100_000).last()?;
    let mut groups = [""; 4];
    let mut n = 0;
    for g in caps.iter().skip(1).flatten() {
        if n == 4 {
            return None;
        }
        groups[n] = g.as_str();
        n += 1;
    }
    match n {
        0 => Some(Answer::Text(caps.get(0)?.as_str())),
        1 => Some(Answer::Text(groups[0])),
        _ => Some(Answer::Groups(groups, n)),
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The next number token at or after `i`: `(start, end)` byte offsets. Grammar:
/// `[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?`, with `1,234,567` groups when
/// `commas`. Digits glued to an ASCII word (`x1`, `point_2d`, `v1.2`) are not numbers; a sign
/// after a digit, letter or closing bracket is an operator (`5-3` → 3), not a sign.
pub(crate) fn next_number(b: &[u8], mut i: usize, commas: bool) -> Option<(usize, usize)> {
    while i < b.len() {
        let c = b[i];
        let starts =
            c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i += 1;
            continue;
        }
        if i > 0 && (is_word(b[i - 1]) || b[i - 1].is_ascii_digit()) {
            while i < b.len() && (is_word(b[i]) || b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            continue;
        }
        let mut start = i;
        if i > 0 && matches!(b[i - 1], b'-' | b'+') {
            let operand = i > 1
                && (b[i - 2].is_ascii_alphanumeric() || matches!(b[i - 2], b')' | b']' | b'_'));
            if !operand {
                start = i - 1;
            }
        }
        return Some((start, scan_unsigned(b, i, commas)));
    }
    None
}

/// End of the unsigned number starting at `i` (a digit, or `.` before a digit).
fn scan_unsigned(b: &[u8], mut i: usize, commas: bool) -> usize {
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_start = i;
    i = digits(i);
    if commas && i > int_start && i - int_start <= 3 {
        // `,ddd` groups, each followed by a non-digit.
        while b.get(i) == Some(&b',')
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)
            && !b.get(i + 4).is_some_and(u8::is_ascii_digit)
        {
            i += 4;
        }
    }
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(j);
        }
    }
    i
}

/// A number token to a finite f64 (`1e999` and friends are not numbers).
pub(crate) fn to_f64(token: &str) -> Option<f64> {
    if token.len() > MAX_NUMBER_BYTES {
        return None;
    }
    let v: f64 = if token.contains(',') {
        token.replace(',', "").parse().ok()?
    } else {
        token.parse().ok()?
    };
    v.is_finite().then_some(v)
}

/// The whole (trimmed) string as one number, thousands separators allowed; `inf`, `NaN`,
/// `0x10` and `12 apples` are not numbers.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    let i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let first = *b.get(i)?;
    if !(first.is_ascii_digit() || (first == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
    {
        return None;
    }
    if scan_unsigned(b, i, true) != b.len() {
        return None;
    }
    to_f64(s)
}

/// Up to `N` numbers found in free text (no thousands separators: commas separate here);
/// `None` if there are more than `N` or one isn't finite. No allocation.
pub(crate) fn numbers_in<const N: usize>(text: &str) -> Option<([f64; N], usize)> {
    let mut out = [0.0; N];
    let mut n = 0;
    let mut i = 0;
    while let Some((s, e)) = next_number(text.as_bytes(), i, false) {
        if n == N {
            return None;
        }
        out[n] = to_f64(&text[s..e])?;
        n += 1;
        i = e;
    }
    Some((out, n))
}
