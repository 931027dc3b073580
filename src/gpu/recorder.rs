//! The recorder: a step's dispatches, copies and clears, kept in order and submitted in one
//! command buffer; the dispatches' uniforms share one buffer. `EDGERL_PROFILE` times each
//! entry point by submitting them one at a time.

use std::sync::Arc;

use bytemuck::Pod;

use super::device::Gpu;
use super::kernels::Kernel;
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

/// What a dispatch binds at one of its bindings: a storage buffer, or a texture (a weight piece
/// on a device with `Gpu::weight_textures`, the run forms' `x_tex`).
#[derive(Clone, Copy, Debug)]
pub enum Bind<'a> {
    Buf(&'a wgpu::Buffer),
    Tex(&'a wgpu::TextureView),
}

#[derive(Clone)]
enum Bound {
    Buf(wgpu::Buffer),
    Tex(wgpu::TextureView),
}

enum Op {
    Dispatch {
        /// The entry point, for `EDGERL_PROFILE`.
        name: &'static str,
        pipeline: Arc<super::pipeline::KernelPipeline>,
        params: u64,
        params_len: u64,
        bindings: Vec<(u32, Bound)>,
        groups: (u32, u32),
    },
    /// The first `texels` vec4s of `src` into `dst`'s rows, in order (`x_texture.rs`).
    CopyToTexture {
        src: wgpu::Buffer,
        dst: wgpu::Texture,
        texels: u64,
    },
    Copy {
        src: wgpu::Buffer,
        src_off: u64,
        dst: wgpu::Buffer,
        dst_off: u64,
        bytes: u64,
    },
    /// Zeroes `bytes` bytes from `off` (`None`: to the end).
    Clear {
        buf: wgpu::Buffer,
        off: u64,
        bytes: Option<u64>,
    },
}

/// Records a step's work; `submit` sends it to the GPU in one command buffer.
pub struct Recorder<'g> {
    pub gpu: &'g Gpu,
    /// Attention through the workgroup-per-row kernels even where the tiled ones apply (tests
    /// compare the two, benchmarks time them).
    pub general_attention: bool,
    /// The kernel that takes decode products (`Auto`: settled by the device type; tests and
    /// benchmarks pin each form).
    pub matvec: super::kernels::MatvecForm,
    /// The vec4 products of a few rows over a long k (the LoRA x·Aᵀ of decoding rows) through
    /// `Kernel::GemmLanes` rather than `GemmSplitK`: true on CPU devices (tests pin each).
    pub gemm_lanes: bool,
    /// RMSNorm rows through `Kernel::RmsNormLanes` (8-thread workgroups, vec4 loads) where d
    /// is a multiple of 4: true on CPU devices (tests pin each).
    pub norm_lanes: bool,
    params: Vec<u8>,
    ops: Vec<Op>,
}

/// Workgroup counts for `n` workgroups, folded into 2-D past the per-dimension limit.
pub(super) fn groups_2d(gpu: &Gpu, n: u32) -> (u32, u32) {
    let max = gpu.limits.max_compute_workgroups_per_dimension.min(32768);
    if n <= max {
        (n.max(1), 1)
    } else {
        (max, n.div_ceil(max))
    }
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Recorder {
            gpu,
            general_attention: gpu
                .general_attention
                .load(std::sync::atomic::Ordering::Relaxed),
            matvec: super::kernels::MatvecForm::from_code(
                gpu.matvec_form.load(std::sync::atomic::Ordering::Relaxed),
            ),
            gemm_lanes: gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu),
            norm_lanes: gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu),
            params: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Storage buffers bound to bindings 1, 2, … in order (binding 0 is the uniform).
    pub(super) fn dispatch<P: Pod>(
        &mut self,
        k: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32),
    ) -> Result<()> {
        let numbered: Vec<(u32, &wgpu::Buffer)> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, *b))
            .collect();
        self.dispatch_at(k, params, &numbered, groups)
    }

    /// For entry points that use only some of their file's bindings.
    pub(super) fn dispatch_at<P: Pod>(
        &mut self,
        k: Kernel,
        params: &P,
        buffers: &[(u32, &wgpu::Buffer)],
        groups: (u32, u32),
    ) -> Result<()> {
        let at: Vec<(u32, Bind)> = buffers.iter().map(|(i, b)| (*i, Bind::Buf(*b))).collect();
        self.dispatch_binds(k, params, &at, groups)
    }

    /// A dispatch whose bindings may be textures too.
    pub(super) fn dispatch_binds<P: Pod>(&mut self, k: Kernel, params: &P, at: &[(u32, Bind)], groups: (u32, u32)) -> Result<()> {
        // Every binding must fit the (possibly forced) limit; weights are split before this.
        for (i, b) in at {
            if let Bind::Buf(b) = b
                && b.size() > self.gpu.max_binding
            {
                return Err(Error::Invalid(format!(
                    "{k:?}: binding {i} is {} bytes, above the device's {}-byte storage binding limit",
                    b.size(),
                    self.gpu.max_binding
                )));
            }
        }
        let mut bindings: Vec<(u32, Bound)> = at
            .iter()
            .map(|(i, b)| (*i, match b {
                Bind::Buf(b) => Bound::Buf((*b).clone()),
                Bind::Tex(t) => Bound::Tex((*t).clone()),
            }))
            .collect();
        // The products' entry points that bind `x_tex` without a copy to read get the stand-in.
        if k.binds_x_texture() && !at.iter().any(|(i, _)| *i == 8) {
            bindings.push((8, Bound::Tex(self.gpu.x_texture_unread())));
        }
        let pipeline = self.gpu.pipeline(k)?;
        // Bindings of branches the kernel's constants removed are not in its layout.
        bindings.retain(|(j, _)| pipeline.uses(*j));
        let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let off = self.params.len().div_ceil(align) * align;
        self.params.resize(off, 0);
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        self.ops.push(Op::Dispatch {
            name: k.entry(),
            pipeline,
            params: off as u64,
            params_len: std::mem::size_of::<P>() as u64,
            bindings,
            groups,
        });
        Ok(())
    }

    /// Copies `texels` vec4s from the start of `src` into `dst`'s rows, in order with the
    /// dispatches around it.
    pub(super) fn copy_to_texture(&mut self, src: &GpuBuffer, dst: wgpu::Texture, texels: u64) {
        self.ops.push(Op::CopyToTexture { src: src.buffer.clone(), dst, texels });
    }

    /// Copies bytes between buffers, in order with the dispatches around it.
    pub fn copy(
        &mut self,
        src: &GpuBuffer,
        src_off: u64,
        dst: &GpuBuffer,
        dst_off: u64,
        bytes: u64,
    ) {
        self.ops.push(Op::Copy {
            src: src.buffer.clone(),
            src_off,
            dst: dst.buffer.clone(),
            dst_off,
            bytes,
        });
    }

    /// Zeroes a buffer (encoder `clear_buffer`), in order with the dispatches around it.
    pub fn zero(&mut self, buf: &GpuBuffer) {
        self.ops.push(Op::Clear {
            buf: buf.buffer.clone(),
            off: 0,
            bytes: None,
        });
    }

    /// Zeroes `bytes` bytes of `buf` from `off` (both multiples of 4), in order.
    pub fn zero_range(&mut self, buf: &GpuBuffer, off: u64, bytes: u64) {
        if bytes > 0 {
            self.ops.push(Op::Clear {
                buf: buf.buffer.clone(),
                off,
                bytes: Some(bytes),
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Encodes everything recorded, submits once, and reports wgpu errors as `Err`.
    pub fn submit(self) -> Result<()> {
        let gpu = self.gpu;
        if self.ops.is_empty() {
            return Ok(());
        }
        let dispatches = self.ops.iter().filter(|op| matches!(op, Op::Dispatch { .. })).count();
        gpu.dispatches.fetch_add(dispatches as u64, std::sync::atomic::Ordering::Relaxed);
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (self.params.len().max(16).div_ceil(16) * 16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if !self.params.is_empty() {
            let mut bytes = self.params;
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            gpu.queue.write_buffer(&uniforms, 0, &bytes);
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut i = 0;
        while i < self.ops.len() {
            if let Op::Copy {
                src,
                src_off,
                dst,
                dst_off,
                bytes,
            } = &self.ops[i]
            {
                enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *bytes);
                i += 1;
                continue;
            }
            if let Op::CopyToTexture { src, dst, texels } = &self.ops[i] {
                copy_texels(&mut enc, src, dst, *texels);
                i += 1;
                continue;
            }
            if let Op::Clear { buf, off, bytes } = &self.ops[i] {
                enc.clear_buffer(buf, *off, *bytes);
                i += 1;
                continue;
            }
            let mut pass = enc.begin_compute_pass(&Default::default());
            let mut last = "";
            while let Some(Op::Dispatch {
                name,
                pipeline,
                params,
                params_len,
                bindings,
                groups,
            }) = self.ops.get(i)
            {
                let layout = pipeline.pipeline.get_bind_group_layout(0);
                let mut entries = Vec::with_capacity(bindings.len() + 1);
                if pipeline.uses(0) {
                    entries.push(wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &uniforms,
                            offset: *params,
                            size: wgpu::BufferSize::new(*params_len),
                        }),
                    });
                }
                for (j, b) in bindings {
                    let resource = match b {
                        Bound::Buf(b) => b.as_entire_binding(),
                        Bound::Tex(t) => wgpu::BindingResource::TextureView(t),
                    };
                    entries.push(wgpu::BindGroupEntry { binding: *j, resource });
                }
                let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &layout,
                    entries: &entries,
                });
                pass.set_pipeline(&pipeline.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(groups.0, groups.1, 1);
                i += 1;
                last = name;
                if gpu.profile.is_some() {
                    break;
                }
            }
            drop(pass);
            if let Some(p) = &gpu.profile {
                let t0 = std::time::Instant::now();
                gpu.queue.submit([enc.finish()]);
                gpu.wait()?;
                if let Ok(mut m) = p.lock() {
                    let e = m.entry(last).or_default();
                    e.0 += 1;
                    e.1 += t0.elapsed().as_secs_f64();
                }
                enc = gpu.device.create_command_encoder(&Default::default());
            }
        }
        gpu.queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("submitting work: {e}")));
        }
        gpu.take_errors()
    }
}

/// `texels` vec4s of `src` into the rows of `dst` (as wide as `X_TEXTURE_WIDTH`): the whole rows
/// in one copy, the last part-row in another.
fn copy_texels(enc: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, dst: &wgpu::Texture, texels: u64) {
    let w = super::x_texture::X_TEXTURE_WIDTH as u64;
    let (rows, rest) = (texels / w, texels % w);
    let part = |enc: &mut wgpu::CommandEncoder, row: u64, width: u64, height: u64| {
        enc.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: src,
                layout: wgpu::TexelCopyBufferLayout { offset: row * w * 16, bytes_per_row: Some((w * 16) as u32), rows_per_image: None },
            },
            wgpu::TexelCopyTextureInfo { texture: dst, mip_level: 0, origin: wgpu::Origin3d { x: 0, y: row as u32, z: 0 }, aspect: wgpu::TextureAspect::All },
            wgpu::Extent3d { width: width as u32, height: height as u32, depth_or_array_layers: 1 },
        );
    };
    if rows > 0 {
        part(enc, 0, w, rows);
    }
    if rest > 0 {
        part(enc, rows, rest, 1);
    }
}
