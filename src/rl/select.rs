//! `edgerl select`: which dataset rows teach, scored from a run's `completions.jsonl`.
//!
//! An online run logs every completion with its `draw` (the k-th prompt the run sampled,
//! counting across steps and refills), its `row` (the dataset row that draw read), its
//! optimizer `step` and its `reward`. The completions of one draw form one GRPO group. Per row,
//! over its groups g = 1..V (in draw order), with m_g the group's mean reward and v_g the
//! population variance of its rewards:
//!
//! - `samples`: completions of the row; `visits`: V.
//! - `mean_reward`: the mean of all its completions' rewards.
//! - `group_variance`: mean over g of v_g. Zero means every group had equal rewards: zero
//!   advantages, no gradient (what `dynamic_sampling` throws away).
//! - `variance`: one-shot RLVR's *historical variance score* (Wang et al. 2025, "Reinforcement
//!   Learning for Reasoning in Large Language Models with One Training Example"): the
//!   population variance of m_1..m_V, the row's training reward visit after visit (one visit
//!   an epoch). Null below two visits.
//! - `trend`: the least-squares slope of m_g against the group's optimizer step (reward per
//!   step). Null below two distinct steps.
//! - `lim`: LIMR's learning-impact score (Li, Zou, Liu 2025, "LIMR: Less is More for RL
//!   Scaling"): with K the epochs every row completed (epoch k = draws k·N .. (k+1)·N − 1, N
//!   rows; each row is drawn once an epoch), r_i^k row i's group mean in epoch k and
//!   r̄^k = mean_i r_i^k the run's average curve,
//!   `lim_i = 1 − Σ_k (r_i^k − r̄^k)² / Σ_k (c − r̄^k)²`, c = 1 as LIMR's accuracy rewards
//!   (or the largest reward logged, when larger). 1: the row follows the run's learning curve
//!   exactly; LIMR keeps rows above 0.6. Null when K = 0 or the average is at c throughout.
//!
//! The ranking `score` is one of these (`By`): by default `variance`, one-shot RLVR's rule.
//! Rows without a score (never sampled, or too few visits) rank last; ties by row index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// What ranks the rows (higher first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// One-shot RLVR's historical variance of the row's per-visit mean reward.
    Variance,
    /// LIMR's alignment of the row's per-epoch reward with the run's average curve.
    Lim,
    /// The mean within-group reward variance (the GRPO signal the row gave).
    GroupVariance,
    /// The slope of the row's per-visit mean reward over optimizer steps.
    Trend,
}

impl By {
    pub fn from_name(s: &str) -> Result<By> {
        Ok(match s {
            "variance" => By::Variance,
            "lim" => By::Lim,
            "group_variance" => By::GroupVariance,
            "trend" => By::Trend,
            _ => return Err(Error::Invalid(format!("--by {s:?}: expected variance, lim, group_variance or trend"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            By::Variance => "variance",
            By::Lim => "lim",
            By::GroupVariance => "group_variance",
            By::Trend => "trend",
        }
    }
}

/// One logged completion: what `select` reads of a `completions.jsonl` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    /// The line of `completions.jsonl` (1-based), for errors.
    pub line: usize,
    pub draw: usize,
    pub row: usize,
    pub step: usize,
    pub reward: f64,
}

/// A row's statistics (see the module's documentation); `None` is written as null.
#[derive(Clone, Debug, PartialEq)]
pub struct RowScore {
    pub row: usize,
    pub samples: usize,
    pub visits: usize,
    pub mean_reward: Option<f64>,
    pub group_variance: Option<f64>,
    pub variance: Option<f64>,
    pub trend: Option<f64>,
    pub lim: Option<f64>,
    pub score: Option<f64>,
}

impl RowScore {
    pub fn to_json(&self, rank: usize) -> Value {
        json!({
            "rank": rank,
            "row": self.row,
            "score": self.score,
            "samples": self.samples,
            "visits": self.visits,
            "mean_reward": self.mean_reward,
            "group_variance": self.group_variance,
            "variance": self.variance,
            "trend": self.trend,
            "lim": self.lim,
        })
    }
}

/// Every row, ranked; `epochs`: the complete epochs LIM used.
#[derive(Clone, Debug)]
pub struct Selection {
    pub by: By,
    pub epochs: usize,
    pub rows: Vec<RowScore>,
}

/// Reads `completions.jsonl`: every line must be an object with non-negative integer `draw`,
/// `row` and `step` and a finite `reward`; an error names the first line that is not.
pub fn read_log(path: &Path) -> Result<Vec<Logged>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| Error::file(path, format!("line {}: {why}", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON ({e})")))?;
        let int = |k: &str| -> Result<usize> {
            match v.get(k) {
                None if k != "step" => Err(bad(format!(
                    "no `{k}`: the log was written before edgerl recorded each completion's dataset row; run the training again to score its rows"
                ))),
                None => Err(bad(format!("no `{k}`"))),
                Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| bad(format!("`{k}` is {x}, not a non-negative integer"))),
            }
        };
        let reward = match v.get("reward") {
            None => return Err(bad("no `reward`".into())),
            Some(x) => x.as_f64().filter(|r| r.is_finite()).ok_or_else(|| bad(format!("`reward` is {x}, not a finite number")))?,
        };
        out.push(Logged { line: i + 1, draw: int("draw")?, row: int("row")?, step: int("step")?, reward });
    }
    if out.is_empty() {
        return Err(Error::file(path, "no completions logged: the run has not sampled yet"));
    }
    Ok(out)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Population variance (divides by n, numpy's default).
fn pvar(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64
}

/// Least-squares slope of y on x; `None` when x does not vary.
fn slope(pts: &[(f64, f64)]) -> Option<f64> {
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Scores the `n_rows` rows of the dataset from the logged completions. `path` names the log
/// in errors (a row beyond the dataset, one draw split between rows or steps).
pub fn score(log: &[Logged], n_rows: usize, by: By, path: &Path) -> Result<Selection> {
    // The groups: one per draw, in draw order.
    let mut draws: BTreeMap<usize, (usize, usize, Vec<f64>)> = BTreeMap::new();
    for l in log {
        if l.row >= n_rows {
            return Err(Error::file(path, format!(
                "line {}: row {} is beyond the dataset's {n_rows} rows (was the run trained on another dataset?)",
                l.line,
                l.row
            )));
        }
        let g = draws.entry(l.draw).or_insert((l.row, l.step, Vec::new()));
        if (g.0, g.1) != (l.row, l.step) {
            return Err(Error::file(path, format!(
                "line {}: draw {} is logged with row {} at step {} and with row {} at step {}",
                l.line,
                l.draw,
                g.0,
                g.1,
                l.row,
                l.step
            )));
        }
        g.2.push(l.reward);
    }
    // Per row: (draw, step, group mean, group variance) in draw order.
    let mut groups: Vec<Vec<(usize, usize, f64, f64)>> = vec![Vec::new(); n_rows];
    let mut samples = vec![0usize; n_rows];
    let mut sums = vec![0.0f64; n_rows];
    for (&d, (row, step, rewards)) in &draws {
        groups[*row].push((d, *step, mean(rewards), pvar(rewards)));
        samples[*row] += rewards.len();
        sums[*row] += rewards.iter().sum::<f64>();
    }
    // LIM over the epochs every row completed.
    let mut epochs = 0;
    let mut per_epoch: Vec<Vec<f64>> = Vec::new(); // [epoch][row]
    'epochs: loop {
        let mut rs = Vec::with_capacity(n_rows);
        for g in &groups {
            match g.iter().find(|x| x.0 / n_rows == epochs) {
                Some(x) => rs.push(x.2),
                None => break 'epochs,
            }
        }
        per_epoch.push(rs);
        epochs += 1;
    }
    let ceiling = log.iter().map(|l| l.reward).fold(1.0f64, f64::max);
    let avg: Vec<f64> = per_epoch.iter().map(|rs| mean(rs)).collect();
    let denom: f64 = avg.iter().map(|a| (ceiling - a) * (ceiling - a)).sum();
    let mut rows: Vec<RowScore> = (0..n_rows)
        .map(|r| {
            let g = &groups[r];
            let means: Vec<f64> = g.iter().map(|x| x.2).collect();
            let pts: Vec<(f64, f64)> = g.iter().map(|x| (x.1 as f64, x.2)).collect();
            let lim = (epochs > 0 && denom > 0.0).then(|| {
                1.0 - per_epoch.iter().zip(&avg).map(|(rs, a)| (rs[r] - a) * (rs[r] - a)).sum::<f64>() / denom
            });
            let mut s = RowScore {
                row: r,
                samples: samples[r],
                visits: g.len(),
                mean_reward: (samples[r] > 0).then(|| sums[r] / samples[r] as f64),
                group_variance: (!g.is_empty()).then(|| mean(&g.iter().map(|x| x.3).collect::<Vec<_>>())),
                variance: (g.len() >= 2).then(|| pvar(&means)),
                trend: if g.len() >= 2 { slope(&pts) } else { None },
                lim,
                score: None,
            };
            s.score = match by {
                By::Variance => s.variance,
                By::Lim => s.lim,
                By::GroupVariance => s.group_variance,
                By::Trend => s.trend,
            };
            s
        })
        .collect();
    rows.sort_by(|a, b| match (a.score, b.score) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.row.cmp(&b.row)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.row.cmp(&b.row),
    });
    Ok(Selection { by, epochs, rows })
}

/// The dataset's rows as `data::dataset` counts them (blank lines skipped), each with its line
/// terminator as in the file (a final line without one gets `\n`).
pub fn dataset_lines(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let mut out = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_ok_and(|t| t.trim().is_empty()) {
            continue;
        }
        let mut l = line.to_vec();
        if !l.ends_with(b"\n") {
            l.push(b'\n');
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err(Error::file(path, "no rows"));
    }
    Ok(out)
}

/// What `edgerl select` wrote.
#[derive(Clone, Debug)]
pub struct Report {
    pub selection: Selection,
    pub dataset: PathBuf,
    /// `DIR/selection.jsonl`: every row, ranked.
    pub scores_path: PathBuf,
    /// `DIR/selected.jsonl` with `--top K`: those K rows' dataset lines, in file order.
    pub selected_path: Option<PathBuf>,
}

/// `edgerl select`: scores the rows of `dataset` from `dir/completions.jsonl`, writes
/// `dir/selection.jsonl` (one line per row, best first) and, with `top`, `dir/selected.jsonl`
/// holding the top rows' dataset lines byte for byte, in the dataset's order.
pub fn select(dir: &Path, dataset: &Path, by: By, top: Option<usize>) -> Result<Report> {
    let log_path = dir.join("completions.jsonl");
    let log = read_log(&log_path)?;
    let lines = dataset_lines(dataset)?;
    if let Some(k) = top.filter(|&k| k == 0 || k > lines.len()) {
        return Err(Error::Invalid(format!("--top {k}: the dataset {} has {} rows", dataset.display(), lines.len())));
    }
    let selection = score(&log, lines.len(), by, &log_path)?;
    let mut text = String::new();
    for (i, r) in selection.rows.iter().enumerate() {
        text.push_str(&r.to_json(i + 1).to_string());
        text.push('\n');
    }
    let scores_path = dir.join("selection.jsonl");
    crate::io::write_atomic(&scores_path, text.as_bytes())?;
    let selected_path = match top {
        None => None,
        Some(k) => {
            let mut keep: Vec<usize> = selection.rows[..k].iter().map(|r| r.row).collect();
            keep.sort_unstable();
            let bytes: Vec<u8> = keep.iter().flat_map(|&r| lines[r].iter().copied()).collect();
            let p = dir.join("selected.jsonl");
            crate::io::write_atomic(&p, &bytes)?;
            Some(p)
        }
    };
    Ok(Report { selection, dataset: dataset.to_path_buf(), scores_path, selected_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_and_variance() {
        assert_eq!(slope(&[(1.0, 0.0), (2.0, 1.0), (3.0, 2.0)]), Some(1.0));
        assert_eq!(slope(&[(1.0, 0.0), (1.0, 1.0)]), None);
        assert_eq!(pvar(&[0.0, 1.0]), 0.25);
    }
}
