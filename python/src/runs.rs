//! Whole runs from Python, as the CLI runs them: `edgerl sft` (`rl::sft::sft_with`) and
//! `edgerl eval` (`rl::eval::evaluate`). The config is a run.toml's text with its path
//! (relative paths relative to its directory) or a dict's JSON (relative to the current
//! directory); rows given from Python arrive as a JSONL file the package wrote.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;

use edgerl::Error;
use edgerl::rl::TrainConfig;
use edgerl::rl::eval::{EvalOptions, evaluate};
use edgerl::rl::sft::{SftConfig, sft_with};
use edgerl::rl::trainer::Start;

use crate::train::{blame, config_table};
use crate::{gpu, gpu_lock, to_py};

/// `p` relative to the config's directory (`base`), as `--config` resolves it.
fn resolve(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if !p.is_absolute() => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// The config's table with the rows file as its `dataset` (refused when it names one too).
fn with_rows(mut t: toml::Table, rows: Option<&Path>, path: Option<&Path>) -> Result<toml::Table, Error> {
    if let Some(rows) = rows {
        if t.contains_key("dataset") {
            return Err(blame(path, "`dataset` is given both in the config and as the `dataset` argument".into()));
        }
        t.insert("dataset".into(), toml::Value::String(rows.to_string_lossy().into_owned()));
    }
    Ok(t)
}

/// `edgerl sft --config` from its table: SFT keys split off as the CLI splits them, paths
/// resolved as `SftConfig::from_file` resolves them.
fn sft_config(t: toml::Table, path: Option<&Path>) -> Result<SftConfig, Error> {
    let text = toml::to_string(&t).map_err(|e| blame(path, e.to_string()))?;
    let mut c = SftConfig::from_toml(&text).map_err(|e| blame(path, e))?;
    let base = path.map(|p| p.parent().unwrap_or(Path::new(".")));
    c.train.model = resolve(base, &c.train.model);
    c.train.output_dir = resolve(base, &c.train.output_dir);
    c.train.init_adapter = c.train.init_adapter.as_deref().map(|p| resolve(base, p));
    c.dataset = resolve(base, &c.dataset);
    c.train.rollouts = Some(c.dataset.clone());
    Ok(c)
}

/// `_sft(config_toml, config_json, config_path, rows_path, start)`: runs `edgerl sft` to the
/// end (metrics.jsonl, checkpoints and the adapter in output_dir, as the CLI writes them) and
/// returns the adapter's directory. `start`: "fresh", "overwrite" or "resume".
#[pyfunction]
#[pyo3(signature = (config_toml=None, config_json=None, config_path=None, rows_path=None, start="fresh"))]
pub fn _sft(
    py: Python<'_>,
    config_toml: Option<&str>,
    config_json: Option<&str>,
    config_path: Option<PathBuf>,
    rows_path: Option<PathBuf>,
    start: &str,
) -> PyResult<String> {
    let start = match start {
        "fresh" => Start::Fresh,
        "overwrite" => Start::Overwrite,
        "resume" => Start::Resume,
        s => return Err(crate::invalid(format!("start = {s:?}: expected fresh, overwrite or resume"))),
    };
    let path = config_path.as_deref();
    let table = config_table(config_toml, config_json, path).map_err(to_py)?;
    let table = with_rows(table, rows_path.as_deref(), path).map_err(to_py)?;
    let cfg = sft_config(table, path).map_err(to_py)?;
    py.allow_threads(move || {
        let g = gpu()?;
        let _work = gpu_lock();
        sft_with(g, cfg, start, |_| {})
    })
    .map(|p| p.to_string_lossy().into_owned())
    .map_err(to_py)
}

/// `_evaluate(config_toml, config_json, config_path, rows_path, adapter, samples, temperature,
/// batch_size, output)`: `edgerl eval --json`'s summary (as JSON text) on the config's dataset
/// or the rows file (`--dataset`); with `output`, the completions written there as `--output`
/// writes them.
#[pyfunction]
#[pyo3(signature = (config_toml=None, config_json=None, config_path=None, rows_path=None, adapter=None, samples=1, temperature=0.0, batch_size=None, output=None))]
#[allow(clippy::too_many_arguments)]
pub fn _evaluate(
    py: Python<'_>,
    config_toml: Option<&str>,
    config_json: Option<&str>,
    config_path: Option<PathBuf>,
    rows_path: Option<PathBuf>,
    adapter: Option<PathBuf>,
    samples: usize,
    temperature: f64,
    batch_size: Option<usize>,
    output: Option<PathBuf>,
) -> PyResult<String> {
    let path = config_path.as_deref();
    let mut table = config_table(config_toml, config_json, path).map_err(to_py)?;
    // Rows given from Python replace the config's dataset, as `--dataset` does; a config
    // without one names them so that it checks as a run's.
    if let Some(rows) = &rows_path
        && !table.contains_key("dataset")
        && !table.contains_key("rollouts")
    {
        table.insert("dataset".into(), toml::Value::String(rows.to_string_lossy().into_owned()));
    }
    let text = toml::to_string(&table).map_err(|e| to_py(blame(path, e.to_string())))?;
    let mut cfg = TrainConfig::from_toml(&text).map_err(|e| to_py(blame(path, e)))?;
    let base = path.map(|p| p.parent().unwrap_or(Path::new(".")));
    cfg.model = resolve(base, &cfg.model);
    cfg.output_dir = resolve(base, &cfg.output_dir);
    cfg.dataset = cfg.dataset.as_deref().map(|p| resolve(base, p));
    cfg.rollouts = cfg.rollouts.as_deref().map(|p| resolve(base, p));
    cfg.init_adapter = cfg.init_adapter.as_deref().map(|p| resolve(base, p));
    let opts = EvalOptions { dataset: rows_path, samples, temperature, batch_size };
    opts.validate().map_err(to_py)?;
    py.allow_threads(move || {
        let g = gpu()?;
        let _work = gpu_lock();
        let r = evaluate(g, &cfg, adapter.as_deref(), opts)?;
        if let Some(out) = &output {
            r.write_completions(out)?;
        }
        Ok::<_, Error>(r.to_json().to_string())
    })
    .map_err(to_py)
}
