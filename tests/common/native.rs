//! Helpers for tests that build native programs against libedgerl (C, JNI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `target/release/{,deps/}<name>`: `cargo test --release` builds the C libraries
/// with the lib but leaves them in deps/; `cargo build --release` copies them up.
pub fn release_lib(name: &str) -> PathBuf {
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release");
    [release.join("deps").join(name), release.join(name)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{name} is missing under {}: cargo builds it with the lib (crate-type cdylib, staticlib)", release.display()))
}

/// Whether `tool` runs (`tool --version`, or `-version` for the JDK's); outside CI a missing
/// one skips the test, in CI it fails it.
pub fn have(tool: &str, flag: &str, why: &str) -> bool {
    let ok = Command::new(tool).arg(flag).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have `{tool}` for {why}");
        eprintln!("skipping: `{tool}` not found ({why})");
    }
    ok
}
