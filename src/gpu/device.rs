//! Adapter choice, limits and features, and wgpu errors turned into `Result`s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kernels::Kernel;
use super::memory::{GpuBuffer, MemoryCounter};
use crate::error::{Error, Result};

/// What the caller may pin down; everything else is chosen for them.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// vulkan | metal | dx12 | gl (EDGERL_BACKEND).
    pub backend: Option<String>,
    /// Substring of the adapter name (EDGERL_ADAPTER).
    pub adapter: Option<String>,
    /// Forces a smaller storage-binding limit (EDGERL_MAX_BINDING), to exercise tensor splitting.
    pub max_binding: Option<u64>,
    /// Only the portable kernels, even where the device has subgroups
    /// (EDGERL_PORTABLE_KERNELS=1): for comparisons and for tests of the portable path.
    pub portable: bool,
    /// Keeps the kernels' run-time check of the subgroup lane layout even on CPU devices, whose
    /// layout is known (EDGERL_LANE_CHECK=1): for tests of that path.
    pub lane_check: bool,
}

impl GpuOptions {
    pub fn from_env() -> Result<Self> {
        let max_binding = match std::env::var("EDGERL_MAX_BINDING") {
            Ok(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                Error::Invalid(format!("EDGERL_MAX_BINDING={v:?} is not a byte count"))
            })?),
            Err(_) => None,
        };
        Ok(GpuOptions {
            backend: std::env::var("EDGERL_BACKEND")
                .ok()
                .filter(|s| !s.is_empty()),
            adapter: std::env::var("EDGERL_ADAPTER")
                .ok()
                .filter(|s| !s.is_empty()),
            max_binding,
            portable: std::env::var("EDGERL_PORTABLE_KERNELS").is_ok_and(|v| !v.is_empty() && v != "0"),
            lane_check: std::env::var("EDGERL_LANE_CHECK").is_ok_and(|v| !v.is_empty() && v != "0"),
        })
    }
}

/// Optional device capabilities. Kernels never require them: each has a portable path.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct GpuFeatures {
    /// The adapter offers `shader-f16` (no kernel uses it yet).
    pub shader_f16: bool,
    /// The kernels' subgroup forms are used (shaders/reduce_subgroup.wgsl: workgroup reductions,
    /// x rows shared between lanes): the adapter has subgroups and `GpuOptions::portable` is off.
    pub subgroups: bool,
    /// The adapter's subgroup sizes (min, max); 0 without subgroups.
    pub subgroup_sizes: (u32, u32),
    /// Each run of 8 invocations (1-D workgroups of a multiple of 8) is one subgroup, in
    /// invocation order, without a run-time check: a CPU device whose subgroups are always 8
    /// lanes (lavapipe), unless `GpuOptions::lane_check`.
    pub lanes8_in_order: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub backend: String,
    pub name: String,
    pub device_type: String,
    pub driver: String,
}

/// One wgpu device and its kernels. Shared between threads, its calls on the GL backend should
/// not overlap: wgpu holds a GL device's context through a whole compile or submit and panics in
/// a thread that waits more than 6 s for it (the C ABI serialises a runtime's GPU work).
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: GpuFeatures,
    /// Largest storage binding a kernel may see: the device limit, or a smaller forced one.
    pub max_binding: u64,
    pub memory: Arc<MemoryCounter>,
    pub(crate) pipelines: Mutex<HashMap<Kernel, Arc<super::pipeline::KernelPipeline>>>,
    uncaptured: Arc<Mutex<Vec<String>>>,
    /// Why wgpu lost the device, once it has.
    lost: Arc<Mutex<Option<String>>>,
    /// With `EDGERL_PROFILE=1`, every dispatch is submitted alone and waited for, and its wall
    /// time added here by entry point: (dispatches, seconds). Slow; for finding hot kernels.
    pub(crate) profile: Option<Mutex<HashMap<&'static str, (u64, f64)>>>,
    /// New `Recorder`s take the workgroup-per-row attention kernels even where the tiled ones
    /// apply (benchmarks compare the two).
    pub general_attention: std::sync::atomic::AtomicBool,
    /// The `MatvecForm` new `Recorder`s take (as `u8`; `bench --matvec`).
    pub matvec_form: std::sync::atomic::AtomicU8,
    /// How prompts decoded side by side are prefilled (`model::decode::PromptPrefill` as `u8`
    /// plus 1; 0 is the device's default; tests and benchmarks set it).
    pub prompt_prefill: std::sync::atomic::AtomicU8,
    /// The run forms' copy of x as a texture (gpu/x_texture.rs).
    pub(crate) x_textures: super::x_texture::XTextures,
    /// Quantized weight pieces live in textures (`Gpu::weight_textures`), settled at creation.
    pub(crate) weight_textures_on: bool,
    /// Compute dispatches submitted so far (benchmarks report them per decoding step: on
    /// lavapipe each costs roughly 0.1 ms whatever its size).
    pub dispatches: std::sync::atomic::AtomicU64,
}

fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => {
            return Err(Error::Invalid(format!(
                "unknown backend {other:?}: expected vulkan, metal, dx12 or gl"
            )));
        }
    })
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    // Native APIs first; GL is the portable fallback.
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

impl Gpu {
    /// A device as `GpuOptions::from_env` picks it, with `EDGERL_DEVICE_MEMORY_LIMIT=bytes`
    /// (a simulated device-memory size) applied.
    pub fn from_env() -> Result<Gpu> {
        let gpu = Gpu::new(&GpuOptions::from_env()?)?;
        if let Ok(v) = std::env::var("EDGERL_DEVICE_MEMORY_LIMIT") {
            let bytes = v.trim().parse::<u64>().map_err(|_| Error::Invalid(format!("EDGERL_DEVICE_MEMORY_LIMIT={v:?} is not a byte count")))?;
            gpu.memory.set_limit(Some(bytes));
        }
        Ok(gpu)
    }

    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        let backends = match &opts.backend {
            Some(b) => parse_backend(b)?,
            None => wgpu::Backends::all(),
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        // No indirect dispatches here. wgpu's indirect-call validation compiles a shader with
        // runtime-sized arrays at device creation, which GL drivers without them refuse, and the
        // device is then lost: NVIDIA's GL (an H200 through EGL) failed so (gfx-rs/wgpu#8799).
        desc.flags.remove(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
        let instance = wgpu::Instance::new(desc);
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let all_names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        if let Some(want) = &opts.adapter {
            let want = want.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&want));
        }
        // A GL context below GLES 3.1 / GL 4.3 has no compute shaders: say so here rather than
        // fail at the first pipeline.
        let mut no_compute = Vec::new();
        adapters.retain(|a| {
            let ok = a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
            if !ok {
                let i = a.get_info();
                no_compute.push(format!("{} ({:?})", i.name, i.backend));
            }
            ok
        });
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (type_rank(i.device_type), backend_rank(i.backend))
        });
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(Error::NoAdapter(format!(
                "backends {:?}, adapter filter {:?}; found [{}]{} (on Linux without a GPU, install mesa-vulkan-drivers)",
                opts.backend.as_deref().unwrap_or("any"),
                opts.adapter.as_deref().unwrap_or("none"),
                all_names.join(", "),
                if no_compute.is_empty() {
                    String::new()
                } else {
                    format!(", without compute shaders [{}]", no_compute.join(", "))
                }
            )));
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let af = adapter.features();
        let subgroups = af.contains(wgpu::Features::SUBGROUP);
        let features = GpuFeatures {
            shader_f16: af.contains(wgpu::Features::SHADER_F16),
            subgroups: subgroups && !opts.portable,
            subgroup_sizes: if subgroups { (info.subgroup_min_size, info.subgroup_max_size) } else { (0, 0) },
            lanes8_in_order: subgroups
                && !opts.portable
                && !opts.lane_check
                && info.device_type == wgpu::DeviceType::Cpu
                && (info.subgroup_min_size, info.subgroup_max_size) == (8, 8),
        };
        let required_features = if features.subgroups { wgpu::Features::SUBGROUP } else { wgpu::Features::empty() };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("edgerl"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoAdapter(format!("{}: request_device failed: {e}", info.name)))?;

        // wgpu's default handler panics; we collect instead and report at the next sync point.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));

        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = sink.lock() {
                *l = Some(if msg.is_empty() { format!("{reason:?}") } else { format!("{reason:?}, {msg}") });
            }
        });

        let device_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_binding = match opts.max_binding {
            Some(m) => m.clamp(256, device_limit),
            None => device_limit,
        };
        let x_textures = super::x_texture::XTextures::new(&device);
        let mut gpu = Gpu {
            device,
            queue,
            adapter: AdapterSummary {
                backend: format!("{:?}", info.backend).to_lowercase(),
                name: info.name.clone(),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
            },
            limits,
            features,
            max_binding,
            memory: Arc::new(MemoryCounter::default()),
            pipelines: Mutex::new(HashMap::new()),
            uncaptured,
            lost,
            profile: std::env::var("EDGERL_PROFILE")
                .is_ok_and(|v| !v.is_empty() && v != "0")
                .then(|| Mutex::new(HashMap::new())),
            general_attention: Default::default(),
            matvec_form: Default::default(),
            prompt_prefill: Default::default(),
            x_textures,
            weight_textures_on: false,
            dispatches: Default::default(),
        };
        gpu.weight_textures_on = super::weight_texture::takes_weight_textures(&gpu);
        // Some GL drivers claim compute shaders yet get a shading-language version without
        // them (NVIDIA's EGL; Mesa's with MESA_GLSL_VERSION_OVERRIDE=330): one small kernel now
        // turns that into a clear error here, before anything is loaded.
        if info.backend == wgpu::Backend::Gl {
            gpu.pipeline(Kernel::RmsNorm)?;
        }
        Ok(gpu)
    }

    /// Compute pipelines (kernel variants) built on this device so far: a benchmark leaves the
    /// runs that built one untimed (a first execution on lavapipe also runs slow).
    pub fn kernels_built(&self) -> usize {
        self.pipelines.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The `EDGERL_PROFILE` totals, slowest first: (entry point, dispatches, seconds).
    pub fn profile_report(&self) -> Vec<(String, u64, f64)> {
        let Some(p) = &self.profile else { return Vec::new() };
        let map = p.lock().map(|m| m.clone()).unwrap_or_default();
        let mut rows: Vec<_> = map.into_iter().map(|(k, (n, s))| (k.to_string(), n, s)).collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        rows
    }

    /// A zero-filled storage buffer, counted and checked for out-of-memory.
    pub fn alloc(&self, bytes: u64, what: &str) -> Result<GpuBuffer> {
        // Storage bindings need a non-zero size that is a multiple of 4.
        let size = bytes.max(4).div_ceil(4) * 4;
        self.check_alloc(what, size)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(self.out_of_memory(what, size));
        }
        Ok(GpuBuffer::new(buffer, size, self.memory.clone()))
    }

    /// A buffer holding `data` (padded with zeros to a multiple of 4 bytes).
    pub fn upload(&self, data: &[u8], what: &str) -> Result<GpuBuffer> {
        let buf = self.alloc(data.len() as u64, what)?;
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(&buf.buffer, 0, &data[..whole]);
        }
        if whole < data.len() {
            let mut tail = [0u8; 4];
            tail[..data.len() - whole].copy_from_slice(&data[whole..]);
            self.queue.write_buffer(&buf.buffer, whole as u64, &tail);
        }
        Ok(buf)
    }

    /// Copies `bytes` bytes from `src` at `offset` back to the CPU (waits for the GPU).
    pub fn read(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("reading back a buffer: {e}"))),
            Err(_) => {
                return Err(Error::Gpu(
                    "reading back a buffer: map callback lost".into(),
                ));
            }
        }
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading back a buffer: {e}")))?;
        let out = view[..bytes as usize].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    pub fn read_f32(&self, src: &GpuBuffer, count: usize) -> Result<Vec<f32>> {
        let bytes = self.read(&src.buffer, 0, (count * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Blocks until the queue is idle, then reports any error wgpu raised meanwhile.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| self.check_lost().err().unwrap_or_else(|| Error::Gpu(format!("device poll: {e}"))))?;
        self.take_errors()
    }

    pub(crate) fn take_errors(&self) -> Result<()> {
        // A lost device explains whatever errors came with it.
        self.check_lost()?;
        let mut errs = self
            .uncaptured
            .lock()
            .map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        if msg.to_lowercase().contains("out of memory") {
            return Err(self.out_of_memory(&msg, 0));
        }
        Err(Error::Gpu(msg))
    }

    /// Whether `size` more bytes may be allocated: the device is not lost, the size is within
    /// the buffer limit and the counter's budget.
    pub(super) fn check_alloc(&self, what: &str, size: u64) -> Result<()> {
        self.check_lost()?;
        let over_limit = self.memory.limit().is_some_and(|l| self.memory.live() + size > l);
        if size > self.limits.max_buffer_size || over_limit {
            return Err(self.out_of_memory(what, size));
        }
        Ok(())
    }

    pub(super) fn out_of_memory(&self, what: &str, bytes: u64) -> Error {
        Error::OutOfMemory { what: what.to_string(), bytes, live: self.memory.live(), peak: self.memory.peak(), advice: String::new() }
    }

    /// `Error::Gpu("device lost: …")` once wgpu has reported the device lost.
    fn check_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(why) => Err(Error::Gpu(format!("device lost ({why}): the work in flight is gone and the device cannot be used again; `edgerl train --resume` continues from the newest checkpoint"))),
            None => Ok(()),
        }
    }
}
