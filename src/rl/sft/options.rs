//! The SFT keys a training session's config takes (`edgerl_session_sft_step`): how its rows are
//! tokenized (top-level keys, as in `edgerl sft`) and, in an `[sft]` table, the learning rate
//! and schedule of its SFT steps when they should not use the session's (GRPO) ones.

use serde::Deserialize;

use crate::rl::config::{Schedule, TrainConfig};

/// The SFT keys a training session's config takes at the top level: how its rows are
/// tokenized. The others (`dataset`, batch sizes, `packing`) do not apply to a session, which
/// trains on the rows of each call as one batch.
pub const SESSION_KEYS: &[&str] = &["assistant_only_loss", "completion_only_loss", "max_length"];

/// The keys of a session config's `[sft]` table.
pub const SESSION_SFT_TABLE_KEYS: &[&str] =
    &["learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "max_steps"];

/// How rows are tokenized (TRL `SFTConfig`'s names and defaults): the part of an SFT config a
/// session's SFT steps use; and a session's own SFT learning rate, if it has one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SftOptions {
    pub assistant_only_loss: bool,
    /// `None`: true for prompt/completion rows (TRL).
    pub completion_only_loss: Option<bool>,
    pub max_length: Option<usize>,
    /// A session's `[sft]` table (`None`: its SFT steps use the session's learning rate).
    pub schedule: Option<SftSchedule>,
}

/// The learning rate of a session's SFT steps (its `[sft]` table): TrainConfig's schedule
/// keys, on the session's one optimizer-step clock (GRPO and SFT steps both count, as both
/// move the shared AdamW moments).
#[derive(Clone, Debug, PartialEq)]
pub struct SftSchedule {
    pub learning_rate: f64,
    pub lr_scheduler_type: Schedule,
    pub warmup_steps: usize,
    pub warmup_ratio: f64,
    /// The schedule's length (`None`: constant after any warmup).
    pub max_steps: Option<usize>,
}

impl SftSchedule {
    /// `cfg` with this schedule in place of its own (what the trainer's update reads).
    pub fn apply(&self, cfg: &mut TrainConfig) {
        cfg.learning_rate = self.learning_rate;
        cfg.lr_scheduler_type = self.lr_scheduler_type;
        cfg.warmup_steps = self.warmup_steps;
        cfg.warmup_ratio = self.warmup_ratio;
        if let Some(n) = self.max_steps {
            cfg.max_steps = n;
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionKeys {
    #[serde(default)]
    assistant_only_loss: bool,
    completion_only_loss: Option<bool>,
    max_length: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SftTable {
    learning_rate: Option<f64>,
    lr_scheduler_type: Option<Schedule>,
    #[serde(default)]
    warmup_steps: usize,
    #[serde(default)]
    warmup_ratio: f64,
    max_steps: Option<usize>,
}

/// Upper bound of `[sft] max_steps` and `warmup_steps` (a typo is an error).
const MAX_SCHEDULE_STEPS: usize = 1 << 40;

fn one_line(e: toml::de::Error) -> String {
    e.to_string().trim().replace('\n', " ")
}

impl SftTable {
    fn check(self) -> std::result::Result<SftSchedule, String> {
        let learning_rate = self.learning_rate.unwrap_or(super::SFT_LEARNING_RATE);
        if !(learning_rate > 0.0 && learning_rate.is_finite()) {
            return Err(format!("[sft] `learning_rate` must be > 0, got {learning_rate}"));
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err(format!("[sft] `warmup_ratio` must be in [0, 1], got {}", self.warmup_ratio));
        }
        for (k, v) in [("max_steps", self.max_steps.unwrap_or(1)), ("warmup_steps", self.warmup_steps)] {
            if v > MAX_SCHEDULE_STEPS {
                return Err(format!("[sft] `{k}` = {v} is larger than edgerl supports (at most {MAX_SCHEDULE_STEPS})"));
            }
        }
        if self.max_steps == Some(0) {
            return Err("[sft] `max_steps` must be at least 1".into());
        }
        // As the session's own schedule: without a length the rate stays constant (a decay
        // needs to know where it ends).
        let lr_scheduler_type = match (self.lr_scheduler_type, self.max_steps) {
            (Some(s), _) => s,
            (None, Some(_)) => Schedule::Linear,
            (None, None) => Schedule::Constant,
        };
        if self.max_steps.is_none() && (lr_scheduler_type != Schedule::Constant || self.warmup_ratio > 0.0) {
            return Err("[sft] a `lr_scheduler_type` other than \"constant\", or a `warmup_ratio`, needs `max_steps` (the schedule's length in the session's optimizer steps)".into());
        }
        Ok(SftSchedule {
            learning_rate,
            lr_scheduler_type,
            warmup_steps: self.warmup_steps,
            warmup_ratio: self.warmup_ratio,
            max_steps: self.max_steps,
        })
    }
}

impl SftOptions {
    /// Removes `SESSION_KEYS` and the `[sft]` table from a config table and parses them
    /// (checked as `edgerl sft` checks them); the rest of the table is left for `TrainConfig`.
    pub fn take(table: &mut toml::Table) -> std::result::Result<SftOptions, String> {
        let mut own = toml::Table::new();
        for k in SESSION_KEYS {
            if let Some(v) = table.remove(*k) {
                own.insert(k.to_string(), v);
            }
        }
        let k: SessionKeys = own.try_into().map_err(one_line)?;
        if k.max_length == Some(0) {
            return Err("`max_length` must be at least 1".into());
        }
        let schedule = match table.remove("sft") {
            None => None,
            Some(toml::Value::Table(t)) => {
                let t: SftTable = t.try_into().map_err(|e| format!("[sft]: {}", one_line(e)))?;
                Some(t.check()?)
            }
            Some(_) => {
                return Err(format!(
                    "`sft` must be a table (`[sft]` with {})",
                    SESSION_SFT_TABLE_KEYS.join(", ")
                ));
            }
        };
        Ok(SftOptions {
            assistant_only_loss: k.assistant_only_loss,
            completion_only_loss: k.completion_only_loss,
            max_length: k.max_length,
            schedule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys() {
        let mut t: toml::Table =
            "max_length = 7\nassistant_only_loss = true\nlearning_rate = 0.1\n".parse().unwrap();
        let o = SftOptions::take(&mut t).unwrap();
        assert_eq!(
            o,
            SftOptions {
                assistant_only_loss: true,
                completion_only_loss: None,
                max_length: Some(7),
                schedule: None
            }
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), ["learning_rate"]);
        let mut t: toml::Table = "max_length = 0\n".parse().unwrap();
        assert!(SftOptions::take(&mut t).unwrap_err().contains("max_length"));
        let mut t: toml::Table = "completion_only_loss = 3\n".parse().unwrap();
        assert!(SftOptions::take(&mut t).is_err());
        let c = super::super::SftConfig::from_toml(
            "model = \"m\"\noutput_dir = \"o\"\ndataset = \"d.jsonl\"\nmax_length = 5\n",
        )
        .unwrap();
        assert_eq!(c.options().max_length, Some(5));
    }

    #[test]
    fn sft_table() {
        let take = |s: &str| SftOptions::take(&mut s.parse::<toml::Table>().unwrap());
        let mut t: toml::Table = "learning_rate = 1e-6\n[sft]\nlearning_rate = 0.25\n".parse().unwrap();
        let s = SftOptions::take(&mut t).unwrap().schedule.unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), ["learning_rate"]);
        assert_eq!((s.learning_rate, s.lr_scheduler_type, s.max_steps), (0.25, Schedule::Constant, None));
        let s = take("[sft]\nmax_steps = 10\nwarmup_ratio = 0.1\n").unwrap().schedule.unwrap();
        assert_eq!((s.learning_rate, s.lr_scheduler_type), (super::super::SFT_LEARNING_RATE, Schedule::Linear));
        let mut cfg = TrainConfig::from_toml("model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r\"\n").unwrap();
        s.apply(&mut cfg);
        // Warmup of ⌈0.1 · 10⌉ = 1 step, then a linear decay over the other 9.
        assert_eq!((cfg.lr_at(0, cfg.max_steps), cfg.lr_at(1, cfg.max_steps)), (0.0, 2e-5));
        for (bad, want) in [
            ("[sft]\nlearning_rate = 0.0\n", "learning_rate"),
            ("[sft]\nlearning_rate = 1e-3\nbeta = 0.1\n", "beta"),
            ("[sft]\nlr_scheduler_type = \"cosine\"\n", "max_steps"),
            ("[sft]\nwarmup_ratio = 0.5\n", "max_steps"),
            ("[sft]\nmax_steps = 0\n", "max_steps"),
            ("[sft]\nlr_scheduler_type = \"steps\"\nmax_steps = 3\n", "steps"),
            ("sft = 0.1\n", "table"),
        ] {
            let e = take(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
