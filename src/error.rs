//! One error type for the whole crate: every failure carries what was being done and why,
//! so the CLI can print a single line and exit non-zero.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A file could not be read or is malformed: the path and the reason.
    File { path: PathBuf, reason: String },
    /// The model or its config is not something we support, or is inconsistent.
    Model(String),
    /// No usable GPU adapter, or the device could not be created.
    NoAdapter(String),
    /// The GPU ran out of memory while allocating `what` (`bytes`; 0 when the driver did not
    /// say), with the device bytes edgerl held then (`live`) and at most so far (`peak`), and
    /// what to change (`advice`, may be empty).
    OutOfMemory { what: String, bytes: u64, live: u64, peak: u64, advice: String },
    /// wgpu reported a validation or internal error (a bug on our side, or a driver limit).
    Gpu(String),
    /// Training hit NaN/Inf values it could not step past (`max_consecutive_skips`).
    NonFinite(String),
    /// Bad arguments from the caller (CLI flags, API misuse).
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn file(path: &Path, reason: impl fmt::Display) -> Error {
        Error::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::File { path, reason } => write!(f, "{}: {}", path.display(), reason),
            Error::Model(m) => write!(f, "model: {m}"),
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::OutOfMemory { what, bytes, live, peak, advice } => {
                let b = crate::units::fmt_bytes;
                let size = if *bytes > 0 { format!(" ({})", b(*bytes)) } else { String::new() };
                write!(f, "GPU out of memory allocating {what}{size}, with {} of device memory in use (peak {})", b(*live), b(*peak))?;
                if !advice.is_empty() {
                    write!(f, ". {advice}")?;
                }
                Ok(())
            }
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::NonFinite(m) => write!(f, "{m}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}
