//! File writes that never leave a half-written file behind: write a temp file beside the
//! target, flush it to disk, rename it over the target, then flush the directory so the
//! rename itself survives a power cut.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The marker in every temporary name edgerl writes (`.NAME.tmp-WRITER`), which is how
/// leftovers of interrupted writes are recognised.
pub const TMP_MARK: &str = ".tmp-";

/// A writer's unique tag: the process id and a counter, so two threads of one app (or two
/// sessions) writing the same file never share a temp file.
pub fn writer_tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `.NAME.tmp-WRITER` beside `path`.
pub fn temp_beside(path: &Path) -> std::path::PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}{TMP_MARK}{}", writer_tag()))
}

/// Flushes a directory's entries (the renames into it) to disk. Where a directory cannot be
/// opened as a file (Windows), renames are durable through the file system's own journal.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().or_else(|e| if cfg!(unix) { Err(e) } else { Ok(()) }).map_err(|e| Error::file(dir, format!("cannot flush: {e}"))),
        Err(_) if !cfg!(unix) => Ok(()),
        Err(e) => Err(Error::file(dir, format!("cannot flush: {e}"))),
    }
}

/// Writes and flushes `bytes` to a new file at `tmp`; on failure the file is removed and the
/// error is the OS's reason.
pub fn write_synced(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Renames `from` to `to` and flushes `to`'s directory.
pub fn rename_synced(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::file(to, format!("cannot move {} into place: {e}", from.display())))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// `path` holds `bytes` or what it held before, never a mix, after any crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    write_synced(&tmp, bytes).map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
    rename_synced(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_differ_between_writers() {
        let p = Path::new("/x/adapter_model.safetensors");
        let (a, b) = (temp_beside(p), temp_beside(p));
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with(".adapter_model.safetensors.tmp-"));
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("edgerl-io-{}", writer_tag()));
        std::fs::create_dir_all(&dir).unwrap();
        // A directory where the file should go: the rename fails, the temp file must go.
        std::fs::create_dir_all(dir.join("f/inner")).unwrap();
        assert!(write_atomic(&dir.join("f"), b"abc").is_err());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
        write_atomic(&dir.join("g"), b"abc").unwrap();
        assert_eq!(std::fs::read(dir.join("g")).unwrap(), b"abc");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
