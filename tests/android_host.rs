//! The Android wrapper (platforms/android: Edgerl.kt over the JNI shim) on this machine's JVM:
//! the shim is built for the host against libedgerl.a, Edgerl.kt is compiled with a test
//! program (platforms/android/host-test/HostSmoke.kt) that trains two steps with a Kotlin
//! reward, steps on rows with rule rewards, takes an SFT step (`Session.sftStep`: finite loss,
//! adapter changed) before a GRPO step, generates, scores, round-trips adapters and checks the
//! errors an app would meet.
//! Needs a JDK and kotlinc (.ci/run installs both); skipped elsewhere when they are missing.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn kotlin_wrapper_trains_and_reports_errors_on_the_host_jvm() {
    if !(common::native::have("javac", "-version", "the Android wrapper test")
        && common::native::have("kotlinc", "-version", "the Android wrapper test"))
    {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("edgerl-android-host-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new("bash")
        .arg(root.join("platforms/android/host-test.sh"))
        .arg(root.join("tests/fixtures/models/qwen3_f16"))
        .arg(&out)
        .env("EDGERL_STATIC_LIB", common::native::release_lib("libedgerl.a"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "host test failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("all Kotlin host checks passed"), "{stdout}");
    // -Xcheck:jni (host-test.sh): HotSpot says "WARNING in native method: JNI call made with
    // exception pending" (and the like) where Android's CheckJNI would abort the app.
    assert!(!stderr.contains("in native method"), "CheckJNI complained:\n{stderr}");
    // EdgerlLog.setLevel(INFO) routed the episode step's metrics line to stderr.
    assert!(stderr.contains("edgerl [3] edgerl::"), "no log records on stderr:\n{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}
