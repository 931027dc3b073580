//! Declarative reward rules (`[[rewards]]` in run.toml): extract an answer from a completion,
//! compare it with a dataset column, weight and sum. Definitions: ALGORITHMS.md, "Reward
//! rules"; keys and schemas: README.md. A completion that doesn't parse scores the rule's
//! `on_fail` and never stops a run; a bad rule or a missing/malformed target column is an error.

mod action;
mod config;
mod extract;
mod rules;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use config::{BoxNormalize, ExtractKind, RuleConfig, RuleType};
pub use extract::MAX_TEXT_BYTES;

use crate::error::Result;
use config::{Kind, Rule, rule_error};
use rules::Shape;

/// The rules of a run, built once and checked before the first step.
#[derive(Clone, Debug)]
pub struct RewardSet {
    rules: Vec<Rule>,
    names: Vec<String>,
    all_or_nothing: bool,
}

/// One completion's rewards.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Σ weight·score (see [`RewardSet::new`] for all-or-nothing).
    pub total: f64,
    /// Unweighted, in rule order.
    pub per_rule: Vec<f64>,
}

impl RewardSet {
    /// `all_or_nothing` (run.toml's `reward_all_or_nothing`): the non-length rules count only if
    /// every one of them scored its maximum, 1.0; otherwise they add 0. Length rules are
    /// penalties (max 0) and always add their weighted value.
    pub fn new(rules: &[RuleConfig], all_or_nothing: bool) -> Result<RewardSet> {
        let names = config::names(rules)?;
        let rules = rules
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (c, n))| Rule::build(c).map_err(|e| rule_error(i, n, e)))
            .collect::<Result<_>>()?;
        Ok(RewardSet {
            rules,
            names,
            all_or_nothing,
        })
    }

    /// Metric names, one per rule, in order: "rewards/<name>/mean" uses these.
    pub fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// Reads a prompts JSONL, checking each row's target columns against the rules (present
    /// and of the right type) before anything runs, so a bad row stops a run before it writes
    /// anything.
    pub fn read_dataset(&self, path: &std::path::Path) -> crate::error::Result<Vec<crate::data::dataset::Row>> {
        crate::data::dataset::read_checked(path, |row| self.check_row(row))
    }

    /// Checks a dataset row for the rules: every column they read is there, and the targets
    /// parse (rules parse their targets before the completion, so an empty one finds bad ones).
    pub fn check_row(&self, row: &crate::data::dataset::Row) -> std::result::Result<(), String> {
        if let Some(c) = self.columns().iter().find(|c| !row.columns.contains_key(c.as_str())) {
            return Err(format!("no `{c}` column, which a reward rule reads"));
        }
        self.score("", 0, &row.columns).map(|_| ()).map_err(|e| e.to_string())
    }

    /// The dataset columns the rules read (so a dataset can be checked up front).
    pub fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for r in &self.rules {
            let screen = matches!(r.kind, Kind::BoxSize(BoxNormalize::Image));
            let extra = screen.then_some([IMAGE_WIDTH, IMAGE_HEIGHT]);
            let reads = r.target.iter().map(String::as_str).chain(extra.into_iter().flatten());
            for c in reads {
                if !cols.iter().any(|k| k == c) {
                    cols.push(c.to_string());
                }
            }
        }
        cols
    }

    /// Scores one completion. `row` is the dataset line's other columns; `completion_tokens`
    /// feeds the length rules.
    pub fn score(
        &self,
        completion: &str,
        completion_tokens: usize,
        row: &Map<String, Value>,
    ) -> Result<Scores> {
        let mut per_rule = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let s = score_rule(rule, completion, completion_tokens, row)
                .map_err(|e| rule_error(i, &self.names[i], e))?;
            per_rule.push(s);
        }
        let is_length = |r: &Rule| matches!(r.kind, Kind::Overlong { .. } | Kind::TowardsLength(_));
        let sum = |length: bool| -> f64 {
            self.rules
                .iter()
                .zip(&per_rule)
                .filter(|(r, _)| is_length(r) == length)
                .map(|(r, s)| r.weight * s)
                .sum()
        };
        let all_max = self
            .rules
            .iter()
            .zip(&per_rule)
            .all(|(r, s)| is_length(r) || *s >= 1.0);
        let main = if self.all_or_nothing && !all_max {
            0.0
        } else {
            sum(false)
        };
        Ok(Scores {
            total: main + sum(true),
            per_rule,
        })
    }
}

/// The columns `box_size` with `normalize = "image"` reads: the screen's size in the target's
/// units (pixels).
pub const IMAGE_WIDTH: &str = "image_width";
pub const IMAGE_HEIGHT: &str = "image_height";

/// The screen size of a row, for `box_size` normalised by the image: both columns present,
/// numbers (or numeric strings), finite and > 0.
fn screen_size(row: &Map<String, Value>) -> std::result::Result<[f64; 2], String> {
    let get = |col: &str| {
        let v = row.get(col).ok_or_else(|| {
            format!("normalize = \"image\" needs a `{col}` column (the screen's size), and the dataset row has none")
        })?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => extract::parse_number(s),
            _ => None,
        };
        n.filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("column `{col}` must be a number > 0 (normalize = \"image\"), got {}", shorten(v.to_string())))
    };
    Ok([get(IMAGE_WIDTH)?, get(IMAGE_HEIGHT)?])
}

/// One rule's unweighted score; `Err` is a data problem with the target column.
fn score_rule(
    rule: &Rule,
    completion: &str,
    tokens: usize,
    row: &Map<String, Value>,
) -> std::result::Result<f64, String> {
    let (col, tv) = match &rule.target {
        Some(col) => (
            col.as_str(),
            row.get(col)
                .ok_or_else(|| format!("the dataset row has no column `{col}`"))?,
        ),
        None => ("", &Value::Null),
    };
    let bad = |what: &str| format!("column `{col}` is not {what}: {}", shorten(tv.to_string()));
    let target_box = || match Shape::from_json(tv) {
        Some(Shape::Box(b)) => Ok(b),
        _ => Err(bad("a box [x1, y1, x2, y2]")),
    };
    // Targets are parsed before the completion so a data error shows up on every row.
    let fail = rule.on_fail;
    let answer = || rule.extract.apply(completion);
    Ok(match &rule.kind {
        Kind::Overlong { max_length, cache } => rules::overlong(tokens, *max_length, *cache),
        Kind::TowardsLength(n) => rules::towards_length(tokens, *n),
        Kind::Exact(norm) => {
            let targets = scalars(tv, |v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            })
            .ok_or_else(|| bad("a string, number or list of them"))?;
            match answer().as_ref().and_then(rules::answer_text) {
                Some(a) => rules::exact(&a, &targets, *norm),
                None => fail,
            }
        }
        Kind::Numeric { atol, rtol } => {
            let targets = scalars(tv, |v| match v {
                Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
                Value::String(s) => extract::parse_number(s),
                _ => None,
            })
            .ok_or_else(|| bad("a number or list of numbers"))?;
            match answer().as_ref().and_then(rules::answer_number) {
                Some(a) => rules::numeric(a, &targets, *atol, *rtol),
                None => fail,
            }
        }
        Kind::Regex(re) => match answer().as_ref().and_then(rules::answer_text) {
            Some(a) => rules::full_match(re, &a),
            None => fail,
        },
        Kind::PointInBox => {
            let g = target_box()?;
            match answer().as_ref().and_then(Shape::parse) {
                Some(p) => rules::point_in_box(p, g),
                None => fail,
            }
        }
        Kind::Iou => {
            let g = target_box()?;
            match answer().as_ref().and_then(Shape::parse) {
                Some(Shape::Box(p)) => rules::iou(p, g),
                _ => fail,
            }
        }
        Kind::BoxSize(norm) => {
            let g = target_box()?;
            let scale = match norm {
                BoxNormalize::Target => [g[2] - g[0], g[3] - g[1]],
                BoxNormalize::Image => screen_size(row)?,
            };
            match answer().as_ref().and_then(Shape::parse) {
                Some(Shape::Box(p)) => rules::box_size(p, g, scale),
                _ => fail,
            }
        }
        Kind::Action { f1_threshold } => {
            let t = action::TargetAction::parse(tv)
                .map_err(|e| format!("column `{col}` {e}: {}", shorten(tv.to_string())))?;
            match answer().as_ref().and_then(action::Action::parse) {
                Some(p) => action::score(&p, &t, *f1_threshold),
                None => fail,
            }
        }
    })
}

/// Target values quoted in errors are cut to a readable length.
fn shorten(mut s: String) -> String {
    if s.len() > 80 {
        let mut cut = 80;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A scalar target, or a non-empty list of accepted ones.
fn scalars<T>(v: &Value, one: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        v => Some(vec![one(v)?]),
    }
}
