//! Every extractor and rule on normal and adversarial input; config errors. Shared helpers
//! here, one file per concern below.

mod actions;
mod extractors;
mod each_rule;
mod set;

use serde_json::{Map, Value, json};

use super::action::{Action, TargetAction};
use super::extract::{
    Answer, Extractor, MAX_TEXT_BYTES, answer_tag, boxed, json_pointer, last_number, parse_number,
};
use super::rules::{self, Shape};
use super::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reward_all_or_nothing: bool,
    rewards: Vec<RuleConfig>,
}

fn parse(toml_text: &str) -> std::result::Result<File, String> {
    toml::from_str(toml_text).map_err(|e| e.to_string())
}

fn set(toml_text: &str) -> RewardSet {
    let f = parse(toml_text).unwrap();
    RewardSet::new(&f.rewards, f.reward_all_or_nothing).unwrap()
}

fn set_err(toml_text: &str) -> String {
    match parse(toml_text) {
        Err(e) => e,
        Ok(f) => RewardSet::new(&f.rewards, f.reward_all_or_nothing)
            .unwrap_err()
            .to_string(),
    }
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// One rule's score on one completion.
fn one(rule: &str, completion: &str, r: Value) -> f64 {
    let s = set(&format!("[[rewards]]\n{rule}"));
    let sc = s.score(completion, 0, &row(r)).unwrap();
    assert_eq!(sc.per_rule.len(), 1);
    sc.per_rule[0]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}
