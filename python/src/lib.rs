//! `edgerl._edgerl`: the Python extension (PyO3). The `edgerl` Python package (python/edgerl/)
//! wraps it: `Model` (generate, score), `Trainer` (GRPO steps with Python reward
//! functions), and whole `sft` / `evaluate` runs as the CLI's. One GPU device per process,
//! opened on first use (`EDGERL_BACKEND` etc. as for the CLI); GPU work runs with the GIL
//! released and one call at a time.

use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple, PyType};

use edgerl::Error;
use edgerl::gpu::Gpu;

mod model;
mod runs;
mod train;

pyo3::create_exception!(_edgerl, EdgerlError, PyRuntimeError, "An error from edgerl (the message is the CLI's).");

/// `InvalidInputError(EdgerlError, ValueError)`: bad input (config, dataset, arguments).
static INVALID: GILOnceCell<Py<PyType>> = GILOnceCell::new();

fn invalid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<EdgerlError>().into_any(), py.get_type::<PyValueError>().into_any()])?;
            let ns = PyDict::new(py);
            ns.set_item("__module__", "edgerl")?;
            ns.set_item("__doc__", "Invalid input to edgerl (a config key, a dataset row, an argument): both an EdgerlError and a ValueError.")?;
            let t = py.import("builtins")?.getattr("type")?.call1(("InvalidInputError", bases, ns))?;
            Ok::<_, PyErr>(t.downcast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// An edgerl error or a Python exception (from a reward function) on its way to the caller.
pub(crate) enum Fail {
    Edgerl(Error),
    Py(PyErr),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Edgerl(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Fail {
        Fail::Py(e)
    }
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        match f {
            Fail::Py(e) => e,
            Fail::Edgerl(e) => to_py(e),
        }
    }
}

/// An edgerl error as the Python exception: `InvalidInputError` for bad input, else
/// `EdgerlError`; the message is the one the CLI prints after `error: `.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    if matches!(e, Error::Invalid(_)) {
        Python::with_gil(|py| match invalid_type(py) {
            Ok(t) => PyErr::from_type(t.clone(), msg),
            Err(err) => err,
        })
    } else {
        EdgerlError::new_err(msg)
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(Error::Invalid(msg.into()))
}

static GPU: Mutex<Option<&'static Gpu>> = Mutex::new(None);
/// Serializes GPU work across the process's models and trainers (as the C ABI's runtime lock).
static GPU_WORK: Mutex<()> = Mutex::new(());

/// The process's device, opened on first use as the CLI opens it (`Gpu::from_env`).
pub(crate) fn gpu() -> Result<&'static Gpu, Error> {
    let mut g = GPU.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(gpu) = *g {
        return Ok(gpu);
    }
    let gpu: &'static Gpu = Box::leak(Box::new(Gpu::from_env()?));
    *g = Some(gpu);
    Ok(gpu)
}

pub(crate) fn gpu_lock() -> MutexGuard<'static, ()> {
    GPU_WORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves a value into `Python::allow_threads`. The values are plain Rust data reached through a
/// `&mut` borrow of a `#[pyclass]` (PyO3 keeps that borrow exclusive) and the closure runs on
/// the calling thread; no Python object crosses.
pub(crate) struct Unchecked<T>(pub T);
unsafe impl<T> Send for Unchecked<T> {}

/// The device edgerl uses, as `edgerl info --json` describes it (backend, adapter, features).
#[pyfunction]
fn device_info(py: Python<'_>) -> PyResult<String> {
    let g = py.allow_threads(gpu).map_err(to_py)?;
    Ok(serde_json::json!({
        "backend": g.adapter.backend,
        "adapter": g.adapter.name,
        "device_type": g.adapter.device_type,
        "driver": g.adapter.driver,
        "features": g.features,
        "max_binding_used": g.max_binding,
    })
    .to_string())
}

/// `n` of `edgerl demo`'s GUI-grounding screens (seeded; `elements` per screen, 2..=6) as JSON
/// lines: a chat prompt continued after "click(", `target_box` and `app` (see src/demo/screens.rs).
#[pyfunction]
#[pyo3(signature = (seed, n, elements=3))]
fn demo_screens(seed: u64, n: usize, elements: usize) -> PyResult<String> {
    if !(2..=6).contains(&elements) {
        return Err(invalid(format!("elements = {elements}: a screen has 2 to 6 elements")));
    }
    Ok(edgerl::demo::screens::dataset(seed, n, elements))
}

#[pymodule]
fn _edgerl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("EdgerlError", py.get_type::<EdgerlError>())?;
    m.add("InvalidInputError", invalid_type(py)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<train::Trainer>()?;
    m.add_class::<train::CancelFlag>()?;
    m.add_function(wrap_pyfunction!(device_info, m)?)?;
    m.add_function(wrap_pyfunction!(demo_screens, m)?)?;
    m.add_function(wrap_pyfunction!(runs::_sft, m)?)?;
    m.add_function(wrap_pyfunction!(runs::_evaluate, m)?)?;
    Ok(())
}
