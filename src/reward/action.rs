//! GUI-agent actions: the predicted action (a JSON object or a call like `click(35, 30)`), the
//! target column's action, and the match between them. The schema is documented in README.md
//! ("Reward rules").

use serde_json::{Map, Value};

use super::extract::{Answer, first_json_object, next_number, to_f64};
use super::rules::{Normalise, Shape, inside, token_f1};

/// Call arguments longer than this don't parse (bounds the work per candidate call).
const MAX_ARGS_BYTES: usize = 2048;
/// Candidate calls tried per completion.
const MAX_CALLS: usize = 10_000;

const POINT_KEYS: &[&str] = &[
    "point",
    "coordinate",
    "position",
    "start",
    "start_point",
    "start_box",
    "box",
    "bbox",
];
const END_KEYS: &[&str] = &["end", "end_point", "end_box"];
const TEXT_KEYS: &[&str] = &["text", "content"];

const NORM: Normalise = Normalise {
    lowercase: true,
    trim: true,
    collapse_spaces: true,
};

/// `Click`, `long-press`, `LONG PRESS` → `click`, `long_press`.
fn kind_name(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c == '-' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn kind_of(m: &Map<String, Value>) -> Option<String> {
    Some(kind_name(
        m.get("action").or_else(|| m.get("action_type"))?.as_str()?,
    ))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A predicted action.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Action {
    pub kind: String,
    /// Click/long-press point, or a swipe's start.
    pub point: Option<[f64; 2]>,
    pub end: Option<[f64; 2]>,
    pub text: Option<String>,
    pub direction: Option<String>,
}

impl Action {
    pub(crate) fn parse(a: &Answer) -> Option<Action> {
        match a {
            Answer::Text(s) => Action::from_text(s),
            Answer::Json(Value::String(s)) => Action::from_text(s),
            Answer::Json(Value::Object(m)) => Action::from_object(m),
            _ => None,
        }
    }

    /// The first JSON object with an `action` key, else the last call.
    pub(crate) fn from_text(s: &str) -> Option<Action> {
        if let Some(Value::Object(m)) = first_json_object(s, |m| kind_of(m).is_some()) {
            return Action::from_object(&m);
        }
        last_call(s)
    }

    fn from_object(m: &Map<String, Value>) -> Option<Action> {
        let pair = |a: &str, b: &str| {
            Shape::from_json(&Value::Array(vec![m.get(a)?.clone(), m.get(b)?.clone()]))
        };
        let keyed = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| m.get(*k).and_then(Shape::from_json))
        };
        let point = pair("x", "y")
            .or_else(|| pair("x1", "y1"))
            .or_else(|| keyed(POINT_KEYS));
        let end = pair("x2", "y2").or_else(|| keyed(END_KEYS));
        Some(Action {
            kind: kind_of(m)?,
            point: point.map(Shape::point),
            end: end.map(Shape::point),
            text: TEXT_KEYS
                .iter()
                .find_map(|k| m.get(*k).and_then(scalar_text)),
            direction: m
                .get("direction")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// The explicit direction, else a swipe's dominant axis (screen coordinates: y grows down).
    fn direction(&self) -> Option<String> {
        if let Some(d) = &self.direction {
            return Some(d.trim().to_lowercase());
        }
        let ([x1, y1], [x2, y2]) = (self.point?, self.end?);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let d = if dx == 0.0 && dy == 0.0 {
            return None;
        } else if dx.abs() >= dy.abs() {
            if dx > 0.0 { "right" } else { "left" }
        } else if dy > 0.0 {
            "down"
        } else {
            "up"
        };
        Some(d.to_string())
    }
}

/// The target column's action: `{"action": "click", "box": [x1, y1, x2, y2]}` and friends (or
/// that object as a JSON string). Malformed targets are data errors, reported by the caller.
#[derive(Debug, PartialEq)]
pub(crate) struct TargetAction {
    kind: String,
    bbox: Option<[f64; 4]>,
    end_box: Option<[f64; 4]>,
    text: Option<String>,
    direction: Option<String>,
}

impl TargetAction {
    pub(crate) fn parse(v: &Value) -> Result<TargetAction, String> {
        let parsed;
        let m = match v {
            Value::Object(m) => m,
            Value::String(s) => match serde_json::from_str(s) {
                Ok(Value::Object(m)) => {
                    parsed = m;
                    &parsed
                }
                _ => return Err("is not a JSON object".into()),
            },
            _ => return Err("is not a JSON object".into()),
        };
        let kind = kind_of(m).ok_or("has no string `action` (or `action_type`)")?;
        let get_box = |k: &str| match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match Shape::from_json(v) {
                Some(Shape::Box(b)) => Ok(Some(b)),
                _ => Err(format!("`{k}` is not a box [x1, y1, x2, y2]")),
            },
        };
        let t = TargetAction {
            bbox: get_box("box")?,
            end_box: get_box("end_box")?,
            text: m.get("text").and_then(scalar_text),
            direction: m
                .get("direction")
                .and_then(Value::as_str)
                .map(|d| d.trim().to_lowercase()),
            kind,
        };
        match t.kind.as_str() {
            "click" | "long_press" if t.bbox.is_none() => {
                Err(format!("a `{}` needs `box`", t.kind))
            }
            "type" if t.text.is_none() => Err("a `type` needs `text`".into()),
            _ => Ok(t),
        }
    }
}

/// 1 when the type matches and every field the target gives is matched, else 0.
pub(crate) fn score(p: &Action, t: &TargetAction, f1_threshold: Option<f64>) -> f64 {
    let ok = p.kind == t.kind
        && t.bbox.is_none_or(|b| p.point.is_some_and(|q| inside(q, b)))
        && t.end_box
            .is_none_or(|b| p.end.is_some_and(|q| inside(q, b)))
        && t.text.as_ref().is_none_or(|want| {
            p.text.as_ref().is_some_and(|got| {
                NORM.apply(got) == NORM.apply(want)
                    || f1_threshold.is_some_and(|th| token_f1(got, want) >= th)
            })
        })
        && t.direction
            .as_ref()
            .is_none_or(|d| p.direction().as_ref() == Some(d));
    if ok { 1.0 } else { 0.0 }
}

/// The last `name(args)` in the text that parses; a parsed call is skipped whole, so a call
/// inside a typed string (`type("f(x)")`) isn't mistaken for the action.
fn last_call(s: &str) -> Option<Action> {
    let b = s.as_bytes();
    let (mut found, mut i, mut tries) = (None, 0, 0);
    while let Some(off) = s[i..].find('(') {
        let p = i + off;
        let mut st = p;
        while st > 0 && (b[st - 1].is_ascii_alphanumeric() || b[st - 1] == b'_') {
            st -= 1;
        }
        i = p + 1;
        if st == p || b[st].is_ascii_digit() {
            continue;
        }
        tries += 1;
        if tries > MAX_CALLS {
            break;
        }
        if let Some((a, end)) = parse_call(&s[st..p], s, p + 1) {
            found = Some(a);
            i = end;
        }
    }
    found
}

enum Arg {
    Num(f64),
    /// A bracketed list `(35, 30)` / `[1, 2, 3, 4]`.
    Nums([f64; 4], usize),
    Str(String),
}

/// Parses the arguments after `name(` at `i`; the action and the offset after `)`.
fn parse_call(name: &str, s: &str, mut i: usize) -> Option<(Action, usize)> {
    let b = s.as_bytes();
    let mut limit = (i + MAX_ARGS_BYTES).min(b.len());
    while !s.is_char_boundary(limit) {
        limit -= 1;
    }
    let ws = |mut i: usize| {
        while i < limit && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut a = Action {
        kind: kind_name(name),
        ..Action::default()
    };
    let (mut nums, mut n) = ([0.0; 4], 0usize);
    let mut xy: [Option<f64>; 6] = [None; 6]; // x, y, x1, y1, x2, y2
    let mut positional_str = None;
    i = ws(i);
    if b.get(i) == Some(&b')') {
        return Some((a, i + 1));
    }
    loop {
        // `key=` (but not `==`).
        let mut key = None;
        let mut j = i;
        while j < limit && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let k = ws(j);
        if j > i && b.get(k) == Some(&b'=') && b.get(k + 1) != Some(&b'=') {
            key = Some(&s[i..j]);
            i = ws(k + 1);
        }
        let (arg, next) = parse_arg(s, i, limit)?;
        i = ws(next);
        match (key, arg) {
            (None, Arg::Num(v)) if n < 4 => {
                nums[n] = v;
                n += 1;
            }
            (None, Arg::Nums(v, m)) if n + m <= 4 => {
                nums[n..n + m].copy_from_slice(&v[..m]);
                n += m;
            }
            (None, Arg::Str(t)) => {
                positional_str.get_or_insert(t);
            }
            (None, _) => return None,
            (Some(k), arg) => {
                let shape = |arg: &Arg| match arg {
                    Arg::Str(t) => Shape::from_text(t),
                    Arg::Nums(v, m) => Shape::from_numbers(&v[..*m]),
                    Arg::Num(_) => None,
                };
                if let Some(slot) = ["x", "y", "x1", "y1", "x2", "y2"]
                    .iter()
                    .position(|c| *c == k)
                {
                    let Arg::Num(v) = arg else { return None };
                    xy[slot] = Some(v);
                } else if POINT_KEYS.contains(&k) {
                    a.point = Some(shape(&arg)?.point());
                } else if END_KEYS.contains(&k) {
                    a.end = Some(shape(&arg)?.point());
                } else if let Arg::Str(t) = arg {
                    if TEXT_KEYS.contains(&k) {
                        a.text = Some(t);
                    } else if k == "direction" {
                        a.direction = Some(t);
                    }
                }
            }
        }
        match b.get(i) {
            Some(b')') if i < limit => break,
            Some(b',') if i < limit => i = ws(i + 1),
            _ => return None,
        }
    }
    let pt = |x: Option<f64>, y: Option<f64>| Shape::from_numbers(&[x?, y?]).map(Shape::point);
    let swipe = matches!(a.kind.as_str(), "swipe" | "drag" | "scroll");
    match n {
        0 => {}
        2 => a.point = a.point.or(Some(Shape::from_numbers(&nums[..2])?.point())),
        4 if swipe => {
            a.point = a.point.or(Some(Shape::from_numbers(&nums[..2])?.point()));
            a.end = a.end.or(Some(Shape::from_numbers(&nums[2..])?.point()));
        }
        4 => a.point = a.point.or(Some(Shape::from_numbers(&nums)?.point())),
        _ => return None,
    }
    a.point = a
        .point
        .or_else(|| pt(xy[0], xy[1]))
        .or_else(|| pt(xy[2], xy[3]));
    a.end = a.end.or_else(|| pt(xy[4], xy[5]));
    if let Some(t) = positional_str {
        if swipe {
            a.direction.get_or_insert(t)
        } else {
            a.text.get_or_insert(t)
        };
    }
    Some((a, i + 1))
}

/// One argument at `i`: a quoted string (with `\` escapes), a bracketed number list, a number,
/// or a bare word (`scroll(down)`).
fn parse_arg(s: &str, i: usize, limit: usize) -> Option<(Arg, usize)> {
    let b = s.as_bytes();
    match *b.get(i).filter(|_| i < limit)? {
        q @ (b'"' | b'\'') => {
            let mut out = String::new();
            let mut chars = s[i + 1..limit].char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        e @ ('"' | '\'' | '\\') => out.push(e),
                        e => {
                            out.push('\\');
                            out.push(e);
                        }
                    },
                    c if c == q as char => return Some((Arg::Str(out), i + 1 + k + 1)),
                    c => out.push(c),
                }
            }
            None
        }
        open @ (b'(' | b'[') => {
            let close = if open == b'(' { b')' } else { b']' };
            let end = i + 1 + s[i + 1..limit].find(close as char)?;
            let inner = &s[i + 1..end];
            if inner.contains(['(', '[', '"', '\'']) {
                return None;
            }
            let mut v = [0.0; 4];
            let mut m = 0;
            let mut j = 0;
            while let Some((st, e)) = next_number(inner.as_bytes(), j, false) {
                if m == 4 {
                    return None;
                }
                v[m] = to_f64(&inner[st..e])?;
                m += 1;
                j = e;
            }
            Some((Arg::Nums(v, m), end + 1))
        }
        c if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') => {
            let (st, e) = next_number(&b[..limit], i, false).filter(|(st, _)| *st == i)?;
            Some((Arg::Num(to_f64(&s[st..e])?), e))
        }
        c if c.is_ascii_alphabetic() || c == b'_' => {
            let mut e = i;
            while e < limit && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
                e += 1;
            }
            Some((Arg::Str(s[i..e].to_string()), e))
        }
        _ => None,
    }
}
