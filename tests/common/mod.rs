//! Shared test setup: one GPU per available backend (Vulkan through lavapipe, GL through
//! llvmpipe on CI machines). In CI a missing backend is a failure, not a skip.
#![allow(dead_code)]

pub mod native;
pub mod turns;

pub use turns::in_turn;

use std::sync::OnceLock;

use edgerl::gpu::{Gpu, GpuOptions};

/// Tests reach a GL device in its turn (`turns`): through the iterators below, `in_turn` or
/// `take_turn`. `normal[0]` is Vulkan wherever it exists (`make`'s order), which needs none.
pub struct Backends {
    /// Devices with their real limits.
    pub normal: Vec<Gpu>,
    /// The same backends with a tiny storage-binding limit, so weights split into pieces.
    pub tiny_binding: Vec<Gpu>,
    /// A 64 KiB limit: whole tiny models still run, and their embeddings split.
    pub split_models: Vec<Gpu>,
    /// Vulkan with the portable kernels only, where the normal Vulkan device has subgroups:
    /// both forms of the reductions then run the kernel tests.
    pub portable: Vec<Gpu>,
}

pub const TINY_BINDING: u64 = 4096;
pub const MODEL_SPLIT_BINDING: u64 = 65536;

fn make(max_binding: Option<u64>) -> Vec<Gpu> {
    let mut out = Vec::new();
    for backend in ["vulkan", "gl"] {
        let opts = GpuOptions {
            backend: Some(backend.into()),
            max_binding,
            ..Default::default()
        };
        match Gpu::new(&opts) {
            Ok(g) => out.push(g),
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("CI must have a {backend} adapter: {e}");
                }
                eprintln!("skipping backend {backend}: {e}");
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no GPU adapter at all: install mesa-vulkan-drivers"
    );
    out
}

pub fn backends() -> &'static Backends {
    static B: OnceLock<Backends> = OnceLock::new();
    B.get_or_init(|| Backends {
        normal: make(None),
        tiny_binding: make(Some(TINY_BINDING)),
        split_models: make(Some(MODEL_SPLIT_BINDING)),
        portable: portable_vulkan(),
    })
}

fn portable_vulkan() -> Vec<Gpu> {
    let opts = GpuOptions { backend: Some("vulkan".into()), portable: true, ..Default::default() };
    match Gpu::new(&opts) {
        Ok(g) => vec![g],
        Err(_) => vec![], // no Vulkan: `make` has already said so
    }
}

/// The devices whose reductions run on subgroup operations (lavapipe's Vulkan device).
pub fn subgroup_gpus() -> impl Iterator<Item = &'static Gpu> {
    in_turn(backends().normal.iter().filter(|g| g.features.subgroups))
}

/// Each backend's device with its real limits, each in its turn (see `turns`).
pub fn normal_gpus() -> impl Iterator<Item = &'static Gpu> {
    in_turn(&backends().normal)
}

/// Every device the kernel tests should run on: each backend, normal and with split tensors,
/// and Vulkan with the portable kernels, each in its turn (see `turns`).
pub fn all_gpus() -> impl Iterator<Item = &'static Gpu> {
    let b = backends();
    in_turn(b.normal.iter().chain(b.tiny_binding.iter()).chain(b.portable.iter()))
}

/// A small deterministic generator, so test data needs no extra crate.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u32() as f64 / 4294967296.0 * 2.0 - 1.0) as f32
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            (g - w).abs() <= tol && g.is_finite(),
            "{what}: element {i}: got {g}, want {w} (tol {tol})"
        );
    }
}

/// Runs `f` on every device of `all_gpus()`, a thread per backend (Vulkan and its tiny-binding
/// twin, GL and its twin, the portable Vulkan device; each twin after its first, so it finds
/// that one's shaders in Mesa's cache), each device in its turn. For tests that build many
/// kernels: with a cold shader cache (a fresh CI machine) they are bound by lavapipe's and
/// llvmpipe's LLVM compiles, one core each, and one device after another left the other core
/// idle for minutes.
pub fn each_gpu_in_parallel(f: impl Fn(&'static Gpu) + Sync) {
    let b = backends();
    let mut groups: Vec<Vec<&'static Gpu>> = Vec::new();
    for g in b.normal.iter().chain(b.tiny_binding.iter()) {
        match groups.iter_mut().find(|grp| grp[0].adapter.backend == g.adapter.backend) {
            Some(grp) => grp.push(g),
            None => groups.push(vec![g]),
        }
    }
    groups.extend(b.portable.iter().map(|g| vec![g]));
    debug_assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), all_gpus().count());
    let f = &f;
    std::thread::scope(|s| {
        for grp in groups {
            s.spawn(move || in_turn(grp).for_each(f));
        }
    });
}

/// Devices for whole-model tests: each backend, with real limits and with a 64 KiB limit, each
/// in its turn (see `turns`).
pub fn model_gpus() -> impl Iterator<Item = &'static Gpu> {
    let b = backends();
    in_turn(b.normal.iter().chain(b.split_models.iter()))
}

pub fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The real SmolLM2-135M-Instruct Q4_1 GGUF: `EDGERL_SMOLLM2_GGUF`, else the `edgerl fetch`
/// cache. `None` (test skipped) only outside CI: CI fetches it and must run these tests.
pub fn smollm2_gguf() -> Option<std::path::PathBuf> {
    real_gguf("EDGERL_SMOLLM2_GGUF", &edgerl::fetch::SMOLLM2, "smollm2")
}

/// The real Gemma-3-270M Q4_K_M GGUF: `EDGERL_GEMMA3_GGUF`, else the `edgerl fetch` cache;
/// skipped only outside CI, as for SmolLM2.
pub fn gemma3_gguf() -> Option<std::path::PathBuf> {
    real_gguf("EDGERL_GEMMA3_GGUF", &edgerl::fetch::GEMMA3_270M, "gemma3-270m")
}

fn real_gguf(var: &str, known: &edgerl::fetch::Known, name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os(var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| edgerl::fetch::model_path(known));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {} (run `edgerl fetch {name}` in .ci/run)",
        path.display()
    );
    eprintln!("skipping: no {} (run `edgerl fetch {name}`)", path.display());
    None
}

/// Runs the `edgerl` binary: (exit code, stdout, stderr). XDG_RUNTIME_DIR is set (wgpu's GL
/// backend wants one).
pub fn edgerl(args: &[&str]) -> (i32, String, String) {
    let xdg = std::env::temp_dir().join("edgerl-test-xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgerl"))
        .args(args)
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An adapter directory's tensors (adapter_model.safetensors, f32), by name.
pub fn adapter_tensors(dir: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
