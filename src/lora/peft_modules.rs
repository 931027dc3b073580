//! Which projections of a decoder layer a PEFT config selects, as PEFT matches module names:
//! `target_modules` / `exclude_modules` as a string is a regular expression that must match a
//! module's whole name (`model.layers.3.self_attn.q_proj`, `model.text_model.layers.3.…` in a
//! vision-language model), as a list it matches a name equal to an entry or ending in
//! `.entry`. edgerl adapts the same projections in every layer, so a selection that differs
//! between layers is refused; modules outside the text layers (a vision tower's) are ignored.

use regex::Regex;
use serde_json::Value;

use super::Target;

/// Layers whose names are checked (past any real model's depth; a pattern that treats later
/// layers differently from these is not one edgerl can follow).
const LAYERS_CHECKED: usize = 64;
/// Where a text model's layers are named.
const PREFIXES: [&str; 2] = ["model.", "model.text_model."];

type Matcher = Box<dyn Fn(&str) -> bool>;

fn matcher(spec: &Value, key: &str) -> Result<Matcher, String> {
    match spec {
        Value::Null => Ok(Box::new(|_| false)),
        Value::String(p) => {
            let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("`{key}` {p:?} is not a regular expression edgerl reads: {e}"))?;
            Ok(Box::new(move |name| re.is_match(name)))
        }
        Value::Array(list) => {
            let names = list
                .iter()
                .map(|m| m.as_str().map(str::to_string).ok_or_else(|| format!("`{key}` must hold strings")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Box::new(move |name| names.iter().any(|n| name == n || name.ends_with(&format!(".{n}")))))
        }
        other => Err(format!("`{key}` {other} is neither a regular expression nor a list of names")),
    }
}

/// The layers (of the first `LAYERS_CHECKED`) in which `select` holds for target `t`'s module.
fn layers_where(t: Target, select: &dyn Fn(&str) -> bool) -> usize {
    (0..LAYERS_CHECKED)
        .filter(|l| PREFIXES.iter().any(|p| select(&format!("{p}layers.{l}.{}", t.module_path()))))
        .count()
}

/// The targets a PEFT config selects: `target_modules` (a regex or a list) less
/// `exclude_modules`, each in every layer or in none.
pub fn selected(target_modules: &Value, exclude_modules: Option<&Value>) -> Result<Vec<Target>, String> {
    if let Value::Array(list) = target_modules {
        // A list names the projections (`q_proj`, …) or paths ending in them.
        for m in list {
            let s = m.as_str().ok_or("target_modules must be strings")?;
            let last = s.rsplit('.').next().unwrap_or(s);
            if Target::parse(last).is_none() {
                return Err(format!("target module {s:?} is not one of q_proj … down_proj"));
            }
        }
    }
    let include = matcher(target_modules, "target_modules")?;
    let exclude = matcher(exclude_modules.unwrap_or(&Value::Null), "exclude_modules")?;
    let mut out = Vec::new();
    for t in Target::ALL {
        let n = layers_where(t, &|name| include(name) && !exclude(name));
        if n == LAYERS_CHECKED {
            out.push(t);
        } else if n > 0 {
            return Err(format!(
                "target_modules / exclude_modules select {} in only some layers; edgerl adapts a projection in every layer or in none",
                t.name()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_and_regexes_select_as_peft_does() {
        use Target::*;
        assert_eq!(selected(&json!(["q_proj", "v_proj"]), None).unwrap(), vec![Q, V]);
        assert_eq!(selected(&json!(["self_attn.o_proj"]), None).unwrap(), vec![O]);
        // PEFT's regex form for a vision-language model's text layers.
        let re = json!(r"model\.text_model\.layers\.\d+\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj");
        assert_eq!(selected(&re, None).unwrap(), Target::ALL.to_vec());
        assert_eq!(selected(&json!(r".*\.(q|v)_proj"), None).unwrap(), vec![Q, V]);
        // Excluding the vision tower leaves the text layers as they are.
        let all = json!(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
        assert_eq!(selected(&all, Some(&json!(".*vision_model.*"))).unwrap(), Target::ALL.to_vec());
        assert_eq!(selected(&all, Some(&json!(["mlp.down_proj"]))).unwrap(), vec![Q, K, V, O, Gate, Up]);
    }

    #[test]
    fn what_edgerl_cannot_follow_is_refused() {
        for (t, x, needle) in [
            (json!(r".*layers\.(0|1)\.self_attn\.q_proj"), None, "only some layers"),
            (json!(["q_proj"]), Some(json!(["layers.3.self_attn.q_proj"])), "only some layers"),
            (json!(["lm_head"]), None, "not one of"),
            (json!("(unclosed"), None, "regular expression"),
            (json!(7), None, "neither"),
            (json!(["q_proj"]), Some(json!({"a": 1})), "exclude_modules"),
        ] {
            let e = selected(&t, x.as_ref()).unwrap_err();
            assert!(e.contains(needle), "{t} / {x:?}: {e}");
        }
    }
}
