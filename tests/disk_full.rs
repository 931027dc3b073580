//! A disk that fills up in the middle of a checkpoint: `output_dir` on a small tmpfs, shrunk to
//! leave room for half a checkpoint. The run must fail with the OS's reason, leave no temp
//! directory and the last complete checkpoint intact; with room again, `--resume` must end
//! where an uninterrupted run does, byte for byte. Needs `mount` (root); under CI it must run.

mod offline_case;

use std::path::Path;
use std::process::Command;

use offline_case::{adapter_bytes, case_dir, edgerl, run_err, run_ok, set_key, steps};

fn mount(dir: &Path, opts: &str) -> bool {
    Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs", dir.to_str().unwrap()]).status().is_ok_and(|s| s.success())
}

fn remount(dir: &Path, size: u64) {
    let ok = Command::new("mount").args(["-o", &format!("remount,size={size}"), dir.to_str().unwrap()]).status().unwrap().success();
    assert!(ok, "remount to {size} bytes failed");
}

/// Bytes in use on the file system of `dir`.
fn used(dir: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=used", dir.to_str().unwrap()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Unmounts on the way out, pass or fail.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_disk_full_mid_checkpoint_loses_nothing_and_resumes() {
    let full = case_dir("diskfull-full", 3, "");
    run_ok(&mut edgerl(&full, false));

    let dir = case_dir("diskfull", 3, "");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    if !mount(&out, "size=64m") {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs (run as root)");
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    let _guard = Mounted(&out);
    set_key(&dir, "max_steps", "1");
    run_ok(&mut edgerl(&dir, false));
    let ckpt = adapter_bytes(&dir);
    // Room for about half of the next checkpoint (adapter ~41 kB, optimizer ~80 kB).
    remount(&out, (used(&out) + 64 * 1024).div_ceil(4096) * 4096);
    set_key(&dir, "max_steps", "3");
    let e = run_err(&mut edgerl(&dir, true));
    assert!(e.contains("No space left on device") || e.contains("os error 28"), "{e}");
    let left: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp-")).collect();
    assert!(left.is_empty(), "a failed write left {left:?}");
    assert!(out.join("checkpoint-1").exists() && !out.join("checkpoint-2").exists());
    assert!(adapter_bytes(&dir) == ckpt, "the adapter of the finished 1-step run was touched");

    remount(&out, 64 << 20);
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(steps(&dir), vec![1, 2, 3]);
    assert!(adapter_bytes(&dir) == adapter_bytes(&full), "resumed after the full disk, the adapter differs");
    drop(_guard);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&full);
}
