//! A copy of a product's x in a texture, for the run forms' x loads (`x_tex` in
//! shaders/matmul_rows16.wgsl). On lavapipe every load from a storage buffer is a loop over the
//! 8 SIMD lanes (an exec-mask test, a bounds check and a branch each), a texel fetch a
//! vectorized gather; a throwaway kernel of vec4 loads ran ~0.55× the time from a texture.

use std::sync::Mutex;

use super::device::Gpu;
use super::memory::GpuBuffer;
use super::recorder::Recorder;

/// Texels (vec4s of x) a texture row holds (`XTEX_W` in matmul_rows16.wgsl): x's words in the
/// texture's rows in buffer order, so a copy needs no row alignment of x itself.
pub const X_TEXTURE_WIDTH: u32 = 2048;
/// The largest x copied (larger products take the tiled kernel, which reads the buffer). The
/// texture is outside the `MemoryCounter`: plans are computed from shapes alone, for any
/// device, and only the run forms (CPU devices) take it, so it stays a bounded scratch like the
/// pipelines' own memory (a batch of 16 screens' prefill, 2,080 rows × 1536, is 12.8 MB).
pub const X_TEXTURE_MAX_BYTES: u64 = 16 << 20;

/// The device's scratch texture (grown to the largest x copied so far) and a one-texel
/// stand-in for the entry points that bind `x_tex` without reading it.
pub struct XTextures {
    scratch: Mutex<Option<wgpu::Texture>>,
    none: wgpu::TextureView,
}

fn texture(device: &wgpu::Device, width: u32, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("x texture"),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Uint,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

impl XTextures {
    pub fn new(device: &wgpu::Device) -> XTextures {
        XTextures { scratch: Mutex::new(None), none: texture(device, 1, 1).create_view(&Default::default()) }
    }
}

impl Gpu {
    pub(super) fn x_texture_unread(&self) -> wgpu::TextureView {
        self.x_textures.none.clone()
    }

    /// The scratch texture, at least `rows` rows high (replaced, not resized, when it grows:
    /// work recorded before keeps its own handle).
    fn x_scratch(&self, rows: u32) -> wgpu::Texture {
        let mut s = self.x_textures.scratch.lock().unwrap_or_else(|e| e.into_inner());
        match &*s {
            Some(t) if t.height() >= rows => t.clone(),
            _ => {
                let t = texture(&self.device, X_TEXTURE_WIDTH, rows);
                *s = Some(t.clone());
                t
            }
        }
    }
}

impl Recorder<'_> {
    /// What a run form binds as `x_tex`: x's first `floats` values (a multiple of 4) copied
    /// into the scratch texture, in order with the work around it, or the stand-in where the
    /// lanes never read it (no subgroups: each lane reads its rows from the buffer). None where
    /// x is too large for it: the caller takes a kernel that reads the buffer.
    pub(super) fn x_texture(&mut self, x: &GpuBuffer, floats: usize) -> Option<wgpu::TextureView> {
        if !self.gpu.features.subgroups {
            return Some(self.gpu.x_texture_unread());
        }
        // (Only what the buffer holds: the kernels' own reads of a short x stay in bounds too.)
        let texels = (floats as u64 / 4).min(x.buffer.size() / 16);
        let rows = texels.div_ceil(X_TEXTURE_WIDTH as u64).max(1);
        if floats as u64 * 4 > X_TEXTURE_MAX_BYTES || rows > self.gpu.limits.max_texture_dimension_2d as u64 {
            return None;
        }
        // (Grown 64 rows, 2 MiB, at a time: not a texture per new row count.)
        let tex = self.gpu.x_scratch((rows.div_ceil(64) * 64).min(self.gpu.limits.max_texture_dimension_2d as u64) as u32);
        let view = tex.create_view(&Default::default());
        self.copy_to_texture(x, tex, texels);
        Some(view)
    }
}
