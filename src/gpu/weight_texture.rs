//! Quantized weight pieces held in textures rather than storage buffers on CPU devices
//! (shaders/weight_texture.wgsl): on lavapipe a storage load is a loop over the 8 SIMD lanes (an
//! exec-mask test, a bounds check and a branch each), a texel fetch one vectorized gather, and
//! the weights' loads set the time of decoding's products. Every kernel that reads a weight piece
//! reads it through `wword` / `wvec` / `wvec7`, so a piece lives in one place or the other.

use std::sync::Arc;

use super::device::Gpu;
use super::memory::MemoryCounter;
use super::tensor::{DType, PieceStore};
use crate::error::Result;

/// Texels (vec4s of words) a texture row holds (`WTEX_W` in weight_texture.wgsl): the piece's
/// words in the texture's rows in buffer order.
pub const WEIGHT_TEXTURE_WIDTH: u32 = 2048;

/// A weight piece's texture. Counted in the `MemoryCounter` as the buffer it replaces (the
/// plan sizes weights as buffers); its last row is padded, at most 32 KiB more.
#[derive(Debug)]
pub struct WeightTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    pub bytes: u64,
    counter: Arc<MemoryCounter>,
}

impl Drop for WeightTexture {
    fn drop(&mut self) {
        self.counter.free(self.bytes);
    }
}

/// CPU devices that take the subgroup forms (lavapipe's Vulkan; llvmpipe's GL, unmeasured, and
/// `EDGERL_PORTABLE_KERNELS` keep buffers) where the largest piece fits a texture;
/// `EDGERL_WEIGHT_TEXTURES_OFF=1` keeps buffers (to measure against).
pub(super) fn takes_weight_textures(gpu: &Gpu) -> bool {
    let cpu = gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
    let fits = gpu.limits.max_texture_dimension_2d as u64 * WEIGHT_TEXTURE_WIDTH as u64 * 16 >= gpu.max_binding;
    let off = std::env::var("EDGERL_WEIGHT_TEXTURES_OFF").is_ok_and(|v| !v.is_empty() && v != "0");
    cpu && gpu.features.subgroups && fits && !off
}

impl Gpu {
    /// Whether pieces of `dtype` live in textures: the types read a vec4 at a time
    /// (`matvec_form::reads_vec4`) on a device that `takes_weight_textures`.
    pub fn weight_textures(&self, dtype: DType) -> bool {
        self.weight_textures_on && super::matvec_form::reads_vec4(dtype)
    }

    /// A texture holding `data` (the piece's device bytes), zero-padded to whole rows.
    pub(super) fn upload_weight_texture(&self, data: &[u8], what: &str) -> Result<WeightTexture> {
        // As `Gpu::alloc` counts a buffer of these bytes.
        let bytes = (data.len() as u64).max(4).div_ceil(4) * 4;
        self.check_alloc(what, bytes)?;
        let row = WEIGHT_TEXTURE_WIDTH as usize * 16;
        let rows = data.len().div_ceil(row).max(1);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(what),
            size: wgpu::Extent3d { width: WEIGHT_TEXTURE_WIDTH, height: rows as u32, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(self.out_of_memory(what, bytes));
        }
        // Whole rows, then the last one padded (a texture write takes whole rows).
        let whole = data.len() / row;
        let layout = |r: usize| wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row as u32), rows_per_image: Some(r as u32) };
        let at = |y: usize| wgpu::TexelCopyTextureInfo {
            texture: &texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x: 0, y: y as u32, z: 0 },
            aspect: wgpu::TextureAspect::All,
        };
        let size = |r: usize| wgpu::Extent3d { width: WEIGHT_TEXTURE_WIDTH, height: r as u32, depth_or_array_layers: 1 };
        if whole > 0 {
            self.queue.write_texture(at(0), &data[..whole * row], layout(whole), size(whole));
        }
        if whole * row < data.len() || data.is_empty() {
            let mut last = vec![0u8; row];
            last[..data.len() - whole * row].copy_from_slice(&data[whole * row..]);
            self.queue.write_texture(at(whole), &last, layout(1), size(1));
        }
        // (Flushed now: the write's staging copy is freed before the next piece's.)
        self.queue.submit([]);
        self.wait()?;
        self.memory.alloc(bytes);
        Ok(WeightTexture { view: texture.create_view(&Default::default()), texture, bytes, counter: self.memory.clone() })
    }
}

impl Gpu {
    /// A piece's device bytes back on the CPU (waits for the GPU; tests and diagnostics).
    pub fn read_piece(&self, p: &PieceStore) -> Result<Vec<u8>> {
        let t = match p {
            PieceStore::Buffer(b) => return self.read(&b.buffer, 0, b.bytes),
            PieceStore::Texture(t) => t,
        };
        let row = WEIGHT_TEXTURE_WIDTH as u64 * 16;
        let rows = t.texture.height();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("piece readback"),
            size: rows as u64 * row,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            t.texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row as u32), rows_per_image: Some(rows) },
            },
            t.texture.size(),
        );
        self.queue.submit([enc.finish()]);
        self.read(&staging, 0, t.bytes)
    }
}
