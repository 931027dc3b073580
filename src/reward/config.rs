//! One `[[rewards]]` table and its checks. The table is flat (every key is optional here) so
//! serde names a misspelt key; which keys each rule type takes is checked in [`Rule::build`].

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::extract::{Extractor, json_pointer};
use super::rules::Normalise;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    Exact,
    Numeric,
    Regex,
    PointInBox,
    Iou,
    BoxSize,
    Action,
    Length,
}

impl RuleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Exact => "exact",
            RuleType::Numeric => "numeric",
            RuleType::Regex => "regex",
            RuleType::PointInBox => "point_in_box",
            RuleType::Iou => "iou",
            RuleType::BoxSize => "box_size",
            RuleType::Action => "action",
            RuleType::Length => "length",
        }
    }
}

/// What `box_size` measures coordinate errors against.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BoxNormalize {
    /// The target box's width and height (the default).
    Target,
    /// The screen's: the row's `image_width` and `image_height` columns (GUI-G1's code).
    Image,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExtractKind {
    Raw,
    AnswerTag,
    Boxed,
    LastNumber,
    JsonPath,
    Regex,
}

/// One `[[rewards]]` table of run.toml. Keys and their meaning: README.md, "Reward rules".
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// Metric name (`rewards/<name>/mean`); default: the type, deduplicated.
    pub name: Option<String>,
    /// Default 1.
    pub weight: Option<f64>,
    /// Default `raw`.
    pub extract: Option<ExtractKind>,
    /// The regex of `extract = "regex"`, or of `type = "regex"` (full match).
    pub pattern: Option<String>,
    /// Dotted path for `extract = "json_path"` (`action.x`, `box.0`; "" = the whole object).
    pub path: Option<String>,
    /// Dataset column holding the reference.
    pub target: Option<String>,
    /// Score when extraction or parsing fails; default 0.
    pub on_fail: Option<f64>,
    /// `exact`: defaults true, true, true.
    pub lowercase: Option<bool>,
    pub trim: Option<bool>,
    pub collapse_spaces: Option<bool>,
    /// `numeric`: |a − b| ≤ atol + rtol·|b|; defaults 1e-6 and 0.
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
    /// `action`: typed text also matches when token F1 ≥ this (in (0, 1]).
    pub text_f1_threshold: Option<f64>,
    /// `length`, DAPO's soft overlong penalty: L and C, in completion tokens.
    pub max_length: Option<usize>,
    pub cache: Option<usize>,
    /// `length`, linear penalty towards this many tokens (instead of max_length/cache).
    pub target_length: Option<usize>,
    /// `box_size`: `target` (default) or `image` (by the row's `image_width`/`image_height`).
    pub normalize: Option<BoxNormalize>,
}

/// A rule ready to score.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Exact(Normalise),
    Numeric { atol: f64, rtol: f64 },
    Regex(Regex),
    PointInBox,
    Iou,
    BoxSize(BoxNormalize),
    Action { f1_threshold: Option<f64> },
    Overlong { max_length: usize, cache: usize },
    TowardsLength(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub kind: Kind,
    pub extract: Extractor,
    pub target: Option<String>,
    pub weight: f64,
    pub on_fail: f64,
}

/// `.` matches newlines (as Python's re.DOTALL): completions span lines; `(?-s)` turns it off.
fn compile(pattern: &str, full: bool) -> std::result::Result<Regex, String> {
    let build = |p: &str| RegexBuilder::new(p).dot_matches_new_line(true).build();
    let bad = |e: regex::Error| format!("bad regex `{pattern}`: {}", one_line(&e));
    let re = build(pattern).map_err(bad)?;
    if !full {
        return Ok(re);
    }
    build(&format!(r"\A(?:{pattern})\z")).map_err(bad)
}

/// The regex crate draws syntax errors over several lines (the pattern, a caret, the reason);
/// errors here are one line, so keep the reason and the caret's column.
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let reasons: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("error: ")).collect();
    let column = text.lines().find_map(|l| l.trim_end().ends_with('^').then(|| l.find('^')));
    match (reasons.is_empty(), column.flatten()) {
        (true, _) => text.split_whitespace().collect::<Vec<_>>().join(" "),
        // The pattern line is indented by four spaces.
        (false, Some(c)) if c >= 4 => format!("{} (at character {})", reasons.join("; "), c - 3),
        (false, _) => reasons.join("; "),
    }
}

impl Rule {
    /// Errors are bare reasons; the caller prefixes the rule's index and name.
    pub(crate) fn build(c: &RuleConfig) -> std::result::Result<Rule, String> {
        let t = c.kind;
        let extract = c.extract.unwrap_or(ExtractKind::Raw);
        let is = |k: RuleType| t == k;
        // Which optional keys this type takes.
        let applies = [
            ("extract", c.extract.is_some(), !is(RuleType::Length)),
            ("on_fail", c.on_fail.is_some(), !is(RuleType::Length)),
            (
                "target",
                c.target.is_some(),
                !is(RuleType::Length) && !is(RuleType::Regex),
            ),
            (
                "pattern",
                c.pattern.is_some(),
                is(RuleType::Regex) || extract == ExtractKind::Regex,
            ),
            ("path", c.path.is_some(), extract == ExtractKind::JsonPath),
            ("lowercase", c.lowercase.is_some(), is(RuleType::Exact)),
            ("trim", c.trim.is_some(), is(RuleType::Exact)),
            (
                "collapse_spaces",
                c.collapse_spaces.is_some(),
                is(RuleType::Exact),
            ),
            ("atol", c.atol.is_some(), is(RuleType::Numeric)),
            ("rtol", c.rtol.is_some(), is(RuleType::Numeric)),
            (
                "text_f1_threshold",
                c.text_f1_threshold.is_some(),
                is(RuleType::Action),
            ),
            ("max_length", c.max_length.is_some(), is(RuleType::Length)),
            ("cache", c.cache.is_some(), is(RuleType::Length)),
            (
                "target_length",
                c.target_length.is_some(),
                is(RuleType::Length),
            ),
            ("normalize", c.normalize.is_some(), is(RuleType::BoxSize)),
        ];
        for (key, given, ok) in applies {
            if given && !ok {
                let why = match key {
                    "pattern" => " (it is for type = \"regex\" or extract = \"regex\")",
                    "path" => " (it is for extract = \"json_path\")",
                    _ => "",
                };
                return Err(format!(
                    "key `{key}` does not apply to type = \"{}\"{why}",
                    t.as_str()
                ));
            }
        }
        let weight = c.weight.unwrap_or(1.0);
        let on_fail = c.on_fail.unwrap_or(0.0);
        if !weight.is_finite() || !on_fail.is_finite() {
            return Err("`weight` and `on_fail` must be finite".into());
        }
        let needs_target = !matches!(t, RuleType::Regex | RuleType::Length);
        let target = match &c.target {
            Some(col) if col.is_empty() => return Err("`target` is empty".into()),
            None if needs_target => {
                return Err(format!(
                    "type = \"{}\" needs `target` (a dataset column)",
                    t.as_str()
                ));
            }
            col => col.clone(),
        };
        if is(RuleType::Regex) && extract == ExtractKind::Regex {
            return Err(
                "type = \"regex\" with extract = \"regex\": one `pattern` can't be both; \
                        extract with answer_tag, boxed, json_path or raw"
                    .into(),
            );
        }
        let extractor = match extract {
            ExtractKind::Raw => Extractor::Raw,
            ExtractKind::AnswerTag => Extractor::AnswerTag,
            ExtractKind::Boxed => Extractor::Boxed,
            ExtractKind::LastNumber => Extractor::LastNumber,
            ExtractKind::JsonPath => {
                let path = c
                    .path
                    .as_deref()
                    .ok_or("extract = \"json_path\" needs `path` (e.g. \"action.x\")")?;
                Extractor::JsonPath(
                    json_pointer(path).ok_or(format!("bad `path` \"{path}\": empty segment"))?,
                )
            }
            ExtractKind::Regex => Extractor::Regex(compile(
                c.pattern
                    .as_deref()
                    .ok_or("extract = \"regex\" needs `pattern`")?,
                false,
            )?),
        };
        let kind = match t {
            RuleType::Exact => Kind::Exact(Normalise {
                lowercase: c.lowercase.unwrap_or(true),
                trim: c.trim.unwrap_or(true),
                collapse_spaces: c.collapse_spaces.unwrap_or(true),
            }),
            RuleType::Numeric => {
                let (atol, rtol) = (c.atol.unwrap_or(1e-6), c.rtol.unwrap_or(0.0));
                if !(atol >= 0.0 && rtol >= 0.0 && atol.is_finite() && rtol.is_finite()) {
                    return Err("`atol` and `rtol` must be finite and >= 0".into());
                }
                Kind::Numeric { atol, rtol }
            }
            RuleType::Regex => Kind::Regex(compile(
                c.pattern
                    .as_deref()
                    .ok_or("type = \"regex\" needs `pattern`")?,
                true,
            )?),
            RuleType::PointInBox => Kind::PointInBox,
            RuleType::Iou => Kind::Iou,
            RuleType::BoxSize => Kind::BoxSize(c.normalize.unwrap_or(BoxNormalize::Target)),
            RuleType::Action => {
                if let Some(th) = c.text_f1_threshold.filter(|th| !(*th > 0.0 && *th <= 1.0)) {
                    return Err(format!("`text_f1_threshold` = {th} is not in (0, 1]"));
                }
                Kind::Action {
                    f1_threshold: c.text_f1_threshold,
                }
            }
            RuleType::Length => match (c.max_length, c.cache, c.target_length) {
                (Some(l), Some(cache), None) if l >= 1 && cache <= l => Kind::Overlong {
                    max_length: l,
                    cache,
                },
                (Some(_), Some(_), None) => {
                    return Err("needs 1 <= max_length and cache <= max_length".into());
                }
                (Some(_), None, None) => {
                    return Err("`max_length` needs `cache` (the soft-penalty span, C)".into());
                }
                (None, None, Some(n)) if n >= 1 => Kind::TowardsLength(n),
                (None, None, Some(_)) => return Err("`target_length` must be >= 1".into()),
                _ => {
                    return Err(
                        "needs either `max_length` and `cache` (DAPO overlong penalty) \
                                or `target_length`"
                            .into(),
                    );
                }
            },
        };
        Ok(Rule {
            kind,
            extract: extractor,
            target,
            weight,
            on_fail,
        })
    }
}

/// Prefixes a rule's errors with where it is in run.toml.
pub(crate) fn rule_error(index: usize, label: &str, reason: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("[[rewards]] #{} ({label}): {reason}", index + 1))
}

/// Metric names: explicit ones must be unique; defaults are the type, then `_2`, `_3`, ….
pub(crate) fn names(rules: &[RuleConfig]) -> Result<Vec<String>> {
    let mut taken: Vec<String> = Vec::new();
    for (i, c) in rules.iter().enumerate() {
        if let Some(n) = &c.name {
            if n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace) {
                return Err(rule_error(
                    i,
                    n,
                    "`name` must be non-empty, without '/' or spaces",
                ));
            }
            if taken.contains(n) {
                return Err(rule_error(i, n, "another rule has this `name`"));
            }
            taken.push(n.clone());
        }
    }
    let mut out = Vec::with_capacity(rules.len());
    for c in rules {
        let name = match &c.name {
            Some(n) => n.clone(),
            None => {
                let base = c.kind.as_str();
                let mut name = base.to_string();
                let mut k = 2;
                while taken.contains(&name) {
                    name = format!("{base}_{k}");
                    k += 1;
                }
                taken.push(name.clone());
                name
            }
        };
        out.push(name);
    }
    Ok(out)
}
