//! minijinja 3.1 recurses without limit when it prints or concatenates a namespace that
//! contains itself (`{% set ns.n = ns %}{{ ns }}`), and the stack overflow kills the process
//! (found by fuzz/chat_template). Nothing can stop that at render time, so templates are
//! checked at load for the only way a namespace gets into a value: `namespace(` may only be
//! the whole right side of `{% set NAME = namespace(...) %}`, and such a NAME may only be used
//! as `NAME.attr` / `NAME[...]` (or assigned). Then no namespace is ever a value that can be
//! stored, so none can contain another. Hugging Face templates use namespaces only this way.

/// One token of a tag: an identifier, a string or number (`"`), or one punctuation char.
fn tokens(tag: &str) -> Vec<&str> {
    let b = tag.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let t = &tag[start..i];
            out.push(if c.is_ascii_digit() { "\"" } else { t });
            continue;
        } else if c == b'"' || c == b'\'' {
            // As minijinja's lexer: a backslash escapes the next byte.
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push("\"");
            continue;
        }
        // Byte by byte: a backslash in a string may have left `i` inside a character.
        i += 1;
        out.push(tag.get(start..i).unwrap_or("?"));
    }
    out
}

/// The expression parts of `source` (inside `{{ }}` and `{% %}`, raw blocks skipped), tokenized.
fn tags(source: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let close = match after.as_bytes().first() {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => {
                rest = after.find("#}").map_or("", |j| &after[j + 2..]);
                continue;
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        // The tag ends at the first closer outside a string.
        let mut end = body.len();
        let mut quote = None;
        let b = body.as_bytes();
        let mut j = 0;
        while j < b.len() {
            match (quote, b[j]) {
                (Some(_), b'\\') => j += 1,
                (Some(q), c) if c == q => quote = None,
                (None, b'"' | b'\'') => quote = Some(b[j]),
                (None, _) if b[j..].starts_with(close.as_bytes()) => {
                    end = j;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let toks = tokens(body.get(..end).unwrap_or(body));
        rest = body.get(end + 2..).unwrap_or("");
        if toks.iter().find(|t| !matches!(**t, "-" | "+")) == Some(&"raw") {
            rest = rest.find("endraw").map_or("", |k| &rest[k..]);
        }
        out.push(toks);
    }
    out
}

/// Err(why) when `source` could build a namespace that holds a namespace.
pub fn check(source: &str) -> Result<(), String> {
    let tags = tags(source);
    let mut names = Vec::new();
    for t in &tags {
        let t: Vec<&str> = t.iter().copied().filter(|x| !matches!(*x, "-" | "+")).collect();
        for (i, tok) in t.iter().enumerate() {
            if *tok != "namespace" || (i > 0 && t[i - 1] == ".") {
                continue;
            }
            // {% set NAME = namespace( ... ) %} with the call's parenthesis closing last.
            let whole = i == 3 && t[0] == "set" && t[2] == "=" && t.get(4) == Some(&"(") && {
                let mut depth = 0i32;
                let mut closed_at = None;
                for (k, x) in t.iter().enumerate().skip(4) {
                    depth += match *x { "(" => 1, ")" => -1, _ => 0 };
                    if depth == 0 {
                        closed_at = Some(k);
                        break;
                    }
                }
                closed_at == Some(t.len() - 1)
            };
            if !whole {
                return Err("namespace() is supported only as `{% set name = namespace(...) %}`".into());
            }
            names.push(t[1]);
        }
    }
    for t in &tags {
        for (i, tok) in t.iter().enumerate() {
            if !names.contains(tok) || (i > 0 && t[i - 1] == ".") {
                continue;
            }
            let next = t.get(i + 1).copied();
            let assigned = next == Some("=") && t.get(i + 2) != Some(&"=");
            if !(matches!(next, Some("." | "[")) || assigned) {
                return Err(format!(
                    "namespace `{tok}` is used as a value (only `{tok}.attr` is supported)"
                ));
            }
        }
    }
    Ok(())
}
