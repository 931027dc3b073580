//! `edgerl select`: per-row scores from a run's completions.jsonl (one-shot RLVR's historical
//! variance, LIMR's learning-impact score, within-group variance, trend), on a hand-written log
//! with hand-computed scores, and end to end on a tiny online run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use edgerl::rl::select::{By, select};
use serde_json::Value;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-select-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 3 rows, 2 completions a draw. Epoch 0 draws rows 2, 0, 1; epoch 1 rows 1, 2, 0; draw 6
/// (row 0) starts epoch 2. Group means / population variances:
/// draw 0 row 2 step 1 [0, 0]     0    0
/// draw 1 row 0 step 1 [0, 1]     0.5  0.25
/// draw 2 row 1 step 2 [1, 1]     1    0
/// draw 3 row 1 step 2 [0, 1]     0.5  0.25
/// draw 4 row 2 step 3 [0, 0.5]   0.25 0.0625
/// draw 5 row 0 step 3 [1, 1]     1    0
/// draw 6 row 0 step 4 [0.5, 1]   0.75 0.0625
const LOG: &[(usize, usize, usize, [f64; 2])] = &[
    (0, 2, 1, [0.0, 0.0]),
    (1, 0, 1, [0.0, 1.0]),
    (2, 1, 2, [1.0, 1.0]),
    (3, 1, 2, [0.0, 1.0]),
    (4, 2, 3, [0.0, 0.5]),
    (5, 0, 3, [1.0, 1.0]),
    (6, 0, 4, [0.5, 1.0]),
];

/// Dataset lines as written: a CRLF line and a blank line, copied byte for byte.
const ROWS: [&str; 3] = ["{\"prompt\": \"zero\"}\r\n", "{\"prompt\": \"one\",  \"x\": 1}\n", "{\"prompt\": \"two\"}"];

fn write_case(tag: &str) -> (PathBuf, PathBuf) {
    let d = dir(tag);
    let mut log = String::new();
    for (draw, row, step, rewards) in LOG {
        for r in rewards {
            log.push_str(&format!(
                "{{\"prompt\":\"p\",\"completion\":\"c\",\"reward\":{r:?},\"step\":{step},\"draw\":{draw},\"row\":{row}}}\n"
            ));
        }
    }
    std::fs::write(d.join("completions.jsonl"), log).unwrap();
    let data = d.join("data.jsonl");
    std::fs::write(&data, format!("{}{}\n{}", ROWS[0], ROWS[1], ROWS[2])).unwrap();
    (d, data)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

#[test]
fn hand_computed_scores() {
    let (d, data) = write_case("hand");
    let r = select(&d, &data, By::Variance, None).unwrap();
    let s = &r.selection;
    assert_eq!(s.epochs, 2);
    let row = |i: usize| s.rows.iter().find(|x| x.row == i).unwrap();
    // Row 0: rewards 0,1,1,1,0.5,1; group means 0.5, 1, 0.75 at steps 1, 3, 4.
    let r0 = row(0);
    assert_eq!((r0.samples, r0.visits), (6, 3));
    assert!(close(r0.mean_reward, 0.75));
    assert!(close(r0.group_variance, 0.3125 / 3.0));
    assert!(close(r0.variance, 0.125 / 3.0));
    assert!(close(r0.trend, 3.0 / 28.0), "{:?}", r0.trend);
    // Row 1: two groups, both at step 2: no trend.
    let r1 = row(1);
    assert_eq!((r1.samples, r1.visits), (4, 2));
    assert!(close(r1.mean_reward, 0.75) && close(r1.group_variance, 0.125) && close(r1.variance, 0.0625));
    assert_eq!(r1.trend, None);
    let r2 = row(2);
    assert!(close(r2.mean_reward, 0.125) && close(r2.group_variance, 0.03125) && close(r2.variance, 0.015625));
    assert!(close(r2.trend, 0.125));
    // LIM over epochs 0 and 1: average curve 0.5, 7/12; denominator 0.25 + 25/144 = 61/144.
    assert!(close(r0.lim, 36.0 / 61.0), "{:?}", r0.lim);
    assert!(close(r1.lim, 24.0 / 61.0));
    assert!(close(r2.lim, 9.0 / 61.0));
    // Rankings.
    let order = |by: By| -> Vec<usize> { select(&d, &data, by, None).unwrap().selection.rows.iter().map(|x| x.row).collect() };
    assert_eq!(order(By::Variance), vec![1, 0, 2]);
    assert_eq!(order(By::Lim), vec![0, 1, 2]);
    assert_eq!(order(By::GroupVariance), vec![1, 0, 2]);
    assert_eq!(order(By::Trend), vec![2, 0, 1], "no trend ranks last");
    // selection.jsonl: every row, best first, with its score.
    let text = std::fs::read_to_string(d.join("selection.jsonl")).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["rank"], 1);
    assert_eq!(lines[2]["row"], 1);
    assert_eq!(lines[2]["trend"], Value::Null);
    assert_eq!(lines[2]["score"], Value::Null);
    // --top 2 by variance: rows 1 and 0, their lines byte for byte in file order.
    let r = select(&d, &data, By::Variance, Some(2)).unwrap();
    assert_eq!(r.selected_path.as_deref(), Some(d.join("selected.jsonl").as_path()));
    assert_eq!(std::fs::read(d.join("selected.jsonl")).unwrap(), format!("{}{}", ROWS[0], ROWS[1]).into_bytes());
    // The last line has no newline in the file; it gets one.
    let r = select(&d, &data, By::Trend, Some(1)).unwrap();
    assert_eq!(r.selection.rows[0].row, 2);
    assert_eq!(std::fs::read_to_string(d.join("selected.jsonl")).unwrap(), format!("{}\n", ROWS[2]));
    let _ = std::fs::remove_dir_all(&d);
}

/// A row never sampled has no scores and ranks last; without every row in an epoch, no LIM.
#[test]
fn unsampled_rows_rank_last() {
    let (d, data) = write_case("unsampled");
    std::fs::write(&data, format!("{}{}\n{}\n{{\"prompt\": \"three\"}}\n", ROWS[0], ROWS[1], ROWS[2])).unwrap();
    let s = select(&d, &data, By::Lim, None).unwrap().selection;
    assert_eq!(s.epochs, 0);
    assert!(s.rows.iter().all(|r| r.lim.is_none()));
    let last = s.rows.last().unwrap();
    assert_eq!((last.row, last.samples, last.visits, last.mean_reward), (3, 0, 0, None));
    let s = select(&d, &data, By::Variance, None).unwrap().selection;
    assert_eq!(s.rows.iter().map(|r| r.row).collect::<Vec<_>>(), vec![1, 0, 2, 3]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_logs_are_named_by_line() {
    let (d, data) = write_case("bad");
    let log = d.join("completions.jsonl");
    let good = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let err = |text: String| -> String {
        std::fs::write(&log, text).unwrap();
        select(&d, &data, By::Variance, None).unwrap_err().to_string()
    };
    let with_line3 = |l3: &str| format!("{}\n{}\n{l3}\n{}\n", lines[0], lines[1], lines[3..].join("\n"));
    for (l3, needles) in [
        ("{\"reward\": 1.0, \"step\"", vec!["line 3", "not JSON"]),
        ("{\"prompt\":\"p\",\"completion\":\"c\",\"reward\":1.0,\"step\":2}", vec!["line 3", "no `draw`", "run the training again"]),
        ("{\"reward\":1.0,\"step\":2,\"draw\":2,\"row\":-1}", vec!["line 3", "`row`", "non-negative integer"]),
        ("{\"reward\":\"high\",\"step\":2,\"draw\":2,\"row\":1}", vec!["line 3", "`reward`", "finite"]),
        ("{\"reward\":1.0,\"step\":2,\"draw\":2,\"row\":7}", vec!["line 3", "row 7", "3 rows"]),
        ("{\"reward\":1.0,\"step\":1,\"draw\":0,\"row\":1}", vec!["line 3", "draw 0", "row 2", "row 1"]),
    ] {
        let e = err(with_line3(l3));
        assert!(e.contains("completions.jsonl"), "{e}");
        for n in needles {
            assert!(e.contains(n), "{l3}: {e:?} lacks {n:?}");
        }
    }
    assert!(err(String::new()).contains("no completions"));
    std::fs::remove_file(&log).unwrap();
    let e = select(&d, &data, By::Variance, None).unwrap_err().to_string();
    assert!(e.contains("completions.jsonl"), "{e}");
    std::fs::write(&log, good).unwrap();
    for k in [0, 4] {
        let e = select(&d, &data, By::Variance, Some(k)).unwrap_err().to_string();
        assert!(e.contains("--top") && e.contains("3 rows"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

fn edgerl(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_edgerl")).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn cli_select() {
    let (d, data) = write_case("cli");
    let run = d.to_str().unwrap();
    let (ok, out, err) = edgerl(&["select", "--run", run, "--dataset", data.to_str().unwrap(), "--by", "lim", "--top", "1", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["by"].as_str(), v["rows"].as_u64(), v["epochs"].as_u64()), (Some("lim"), Some(3), Some(2)));
    assert_eq!(v["ranking"][0]["row"], 0);
    assert_eq!(std::fs::read_to_string(d.join("selected.jsonl")).unwrap(), ROWS[0]);
    // The table; no dataset known is a clear error; so is an unknown --by.
    let (ok, out, _) = edgerl(&["select", "--run", run, "--dataset", data.to_str().unwrap()]);
    assert!(ok && out.contains("ranked by variance"), "{out}");
    let (ok, _, err) = edgerl(&["select", "--run", run]);
    assert!(!ok && err.contains("--config") && err.contains("--dataset"), "{err}");
    let (ok, _, err) = edgerl(&["select", "--run", run, "--dataset", data.to_str().unwrap(), "--by", "luck"]);
    assert!(!ok && err.contains("--by"), "{err}");
    // DIR/run.toml names the dataset when present.
    std::fs::write(d.join("run.toml"), "model = \"m\"\noutput_dir = \".\"\ndataset = \"data.jsonl\"\n[[rewards]]\ntype = \"regex\"\npattern = 'x'\n").unwrap();
    let (ok, out, err) = edgerl(&["select", "--run", run, "--json"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["ranking"][0]["row"], 1);
    let _ = std::fs::remove_dir_all(&d);
}

/// End to end: a tiny online run (3 rows, 2 prompts a step, 3 steps: 2 epochs, shuffled), then
/// `edgerl select --config` on its output: every row sampled twice, scores from its log.
#[test]
fn scores_a_tiny_online_run() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml");
    let mut cfg = edgerl::rl::TrainConfig::from_file(&ex).unwrap();
    cfg.output_dir = dir("online");
    cfg.max_steps = 3;
    let gpu = &common::backends().normal[0];
    edgerl::rl::trainer::train(gpu, cfg.clone(), |_| {}).unwrap();
    let out = cfg.output_dir.to_str().unwrap();
    let (ok, stdout, err) = edgerl(&["select", "--run", out, "--config", ex.to_str().unwrap(), "--top", "2", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((v["rows"].as_u64(), v["sampled"].as_u64(), v["epochs"].as_u64()), (Some(3), Some(3), Some(2)));
    let log: Vec<Value> =
        std::fs::read_to_string(cfg.output_dir.join("completions.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in v["ranking"].as_array().unwrap() {
        assert_eq!(r["visits"], 2);
        assert_eq!(r["samples"].as_u64().unwrap() as usize, 2 * cfg.num_generations);
        let mine: Vec<f64> = log.iter().filter(|l| l["row"] == r["row"]).map(|l| l["reward"].as_f64().unwrap()).collect();
        let mean = mine.iter().sum::<f64>() / mine.len() as f64;
        assert!((r["mean_reward"].as_f64().unwrap() - mean).abs() < 1e-12, "{r}");
    }
    // The 2 rows kept are dataset lines, unchanged.
    let data = std::fs::read_to_string(cfg.dataset.as_ref().unwrap()).unwrap();
    let kept = std::fs::read_to_string(cfg.output_dir.join("selected.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 2);
    assert!(kept.lines().all(|l| data.lines().any(|d| d == l)));
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
}
