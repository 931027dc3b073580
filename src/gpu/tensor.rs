//! Tensors on the GPU. A weight matrix whose bytes exceed the storage-binding limit is split by
//! rows into pieces, each its own buffer; every kernel that reads weights loops over pieces.

use std::sync::Arc;

use super::device::Gpu;
use super::memory::GpuBuffer;
use super::quant;
use super::recorder::Bind;
use super::weight_texture::WeightTexture;
use crate::error::{Error, Result};

/// Element type as stored on the device. 16-bit types are packed two per u32, so no kernel
/// needs `shader-f16`. The llama.cpp block types (32 elements a block, the K-quants and IQ4_XS
/// 256) stay packed on the GPU, each block padded to whole u32 words (see `quant::repack`), and
/// are dequantized in the kernels that read weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[allow(non_camel_case_types)] // Q4_K, IQ4_NL: ggml's names
pub enum DType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q4_K,
    Q6_K,
    Q5_1,
    Q5_K,
    Q2_K,
    Q3_K,
    IQ4_NL,
    IQ4_XS,
}

impl DType {
    /// The lower-case name the command line takes (`--dtype q4_1`).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "f32" => DType::F32,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            "q8_0" => DType::Q8_0,
            "q4_0" => DType::Q4_0,
            "q4_1" => DType::Q4_1,
            "q5_0" => DType::Q5_0,
            "q4_k" => DType::Q4_K,
            "q6_k" => DType::Q6_K,
            "q5_1" => DType::Q5_1,
            "q5_k" => DType::Q5_K,
            "q2_k" => DType::Q2_K,
            "q3_k" => DType::Q3_K,
            "iq4_nl" => DType::IQ4_NL,
            "iq4_xs" => DType::IQ4_XS,
            _ => return None,
        })
    }

    /// The code the WGSL kernels switch on (`override WDTYPE` in weights.wgsl).
    pub fn code(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::Q8_0 => 3,
            DType::Q4_0 => 4,
            DType::Q4_1 => 5,
            DType::Q5_0 => 6,
            DType::Q4_K => 7,
            DType::Q6_K => 8,
            DType::Q5_1 => 9,
            DType::Q5_K => 10,
            DType::Q2_K => 11,
            DType::Q3_K => 12,
            DType::IQ4_NL => 13,
            DType::IQ4_XS => 14,
        }
    }
    pub fn is_quantized(self) -> bool {
        self.block() > 1
    }
    /// Elements per block: 32 for the legacy quantized types and IQ4_NL, 256 for the K-quants'
    /// and IQ4_XS's super-blocks, 1 for the float types.
    pub fn block(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::IQ4_NL => {
                32
            }
            DType::Q4_K | DType::Q6_K | DType::Q5_K | DType::Q2_K | DType::Q3_K | DType::IQ4_XS => {
                256
            }
        }
    }
    /// Bytes of one block in the file (GGUF / safetensors) layout.
    pub fn file_block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q5_0 => 22,
            DType::Q4_K => 144,
            DType::Q6_K => 210,
            DType::Q5_1 => 24,
            DType::Q5_K => 176,
            DType::Q2_K => 84,
            DType::Q3_K => 110,
            DType::IQ4_NL => 18,
            DType::IQ4_XS => 136,
        }
    }
    /// Bytes of one block on the GPU: quantized blocks are padded to whole u32 words.
    pub fn gpu_block_bytes(self) -> usize {
        match self {
            DType::Q8_0 => 36,
            DType::Q4_0 | DType::IQ4_NL => 20,
            DType::Q5_0 => 24,
            DType::Q6_K => 212,
            DType::Q3_K => 112,
            d => d.file_block_bytes(),
        }
    }
    /// Blocks in a row of `cols` elements; quantized rows must be whole blocks.
    fn row_blocks(self, cols: usize) -> Result<usize> {
        if !cols.is_multiple_of(self.block()) {
            return Err(Error::Invalid(format!(
                "a {self:?} row needs a multiple of {} columns, not {cols}",
                self.block()
            )));
        }
        Ok(cols / self.block())
    }
    /// Storage bytes of one row of `cols` elements on the GPU.
    pub fn row_bytes(self, cols: usize) -> Result<usize> {
        Ok(self.row_blocks(cols)? * self.gpu_block_bytes())
    }
    /// Bytes of one row of `cols` elements in the file layout.
    pub fn file_row_bytes(self, cols: usize) -> Result<usize> {
        Ok(self.row_blocks(cols)? * self.file_block_bytes())
    }
}

/// Rows `row_start .. row_start + rows` of a tensor, in one buffer (or texture) from its row
/// `buf_row0` (0 but for a row view of a stacked tensor, `Tensor::row_view`, which shares it).
#[derive(Debug)]
pub struct Piece {
    pub buf: Arc<PieceStore>,
    pub row_start: usize,
    pub rows: usize,
    pub buf_row0: usize,
}

/// Where a piece's bytes live: a storage buffer, or a texture (`Gpu::weight_textures`).
#[derive(Debug)]
pub enum PieceStore {
    Buffer(GpuBuffer),
    Texture(WeightTexture),
}

impl PieceStore {
    pub fn bytes(&self) -> u64 {
        match self {
            PieceStore::Buffer(b) => b.bytes,
            PieceStore::Texture(t) => t.bytes,
        }
    }
    /// What a kernel binds for it.
    pub fn bind(&self) -> Bind<'_> {
        match self {
            PieceStore::Buffer(b) => Bind::Buf(&b.buffer),
            PieceStore::Texture(t) => Bind::Tex(&t.view),
        }
    }
}

/// A 2-D (or 1-D, as one row) tensor: `rows × cols`, stored in row pieces.
#[derive(Debug)]
pub struct Tensor {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    pub pieces: Vec<Piece>,
    /// Rows whose blocks are stored side by side (`WEIGHT_GROUP` or 1): block kb of rows
    /// g·r .. g·r + g − 1 adjacent, then block kb + 1 (`wblock` in shaders/weights.wgsl).
    pub group: usize,
}

/// Rows interleaved block by block in quantized weights on CPU devices (`Tensor::group`). On
/// lavapipe a product's run of 8 lanes reads the blocks of 64 rows at a time, lane by lane;
/// with the rows' blocks apart the hardware prefetchers do not keep up once the weights are
/// out of cache (a decoding step reads them all): measured on a Zen 4 VM, an 8-row 576 × 1536
/// Q4_1 product over weights out of cache 0.49 ms plain, 0.38 ms in groups of 8 (0.34 in cache).
pub const WEIGHT_GROUP: usize = 8;

/// `Tensor::group` for a `rows`-row tensor in pieces of `per` rows on `gpu`: WEIGHT_GROUP for
/// the quantized types on CPU devices where the groups fill every piece, else 1. The unit
/// interleaved is the type's block (the super-block of the K-quants and IQ4_XS).
pub fn weight_group(gpu: &Gpu, dtype: DType, rows: usize, per: usize) -> usize {
    let cpu = gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
    let grouped = cpu
        && dtype.is_quantized()
        && std::env::var_os("EDGERL_WEIGHT_GROUP_OFF").is_none()
        && rows.is_multiple_of(WEIGHT_GROUP)
        && per.is_multiple_of(WEIGHT_GROUP);
    if grouped { WEIGHT_GROUP } else { 1 }
}

/// The device blocks of `rows` rows (`block_bytes` each, `nb` a row) reordered for group `g`.
fn group_blocks(bytes: &[u8], rows: usize, nb: usize, block_bytes: usize, g: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len()];
    for row in 0..rows {
        for kb in 0..nb {
            let src = (row * nb + kb) * block_bytes;
            let dst = ((row / g * g) * nb + kb * g + row % g) * block_bytes;
            out[dst..dst + block_bytes].copy_from_slice(&bytes[src..src + block_bytes]);
        }
    }
    out
}

impl Tensor {
    /// Rows per piece so that one piece's bytes fit in `max_binding`.
    pub fn rows_per_piece(cols: usize, dtype: DType, max_binding: u64) -> Result<usize> {
        let row_bytes = dtype.row_bytes(cols)? as u64;
        let rows = max_binding / row_bytes.max(1);
        if rows == 0 {
            return Err(Error::Invalid(format!(
                "one row of {cols} {dtype:?} values ({row_bytes} bytes) exceeds the storage binding limit ({max_binding} bytes)"
            )));
        }
        // Whole groups of rows a piece where one fits (`Tensor::group`).
        let g = WEIGHT_GROUP as u64;
        Ok((if rows >= g { rows / g * g } else { rows }) as usize)
    }

    /// Uploads a `rows × cols` tensor of `dtype` from its file-layout bytes (little-endian;
    /// quantized types as GGUF blocks), split as needed; quantized pieces are repacked.
    pub fn from_bytes(
        gpu: &Gpu,
        name: &str,
        dtype: DType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Tensor> {
        let row_bytes = dtype
            .file_row_bytes(cols)
            .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        if data.len() != rows * row_bytes {
            return Err(Error::Invalid(format!(
                "{name}: {} bytes given for {rows}×{cols} {dtype:?}",
                data.len()
            )));
        }
        let per = Tensor::rows_per_piece(cols, dtype, gpu.max_binding)?;
        let group = weight_group(gpu, dtype, rows, per);
        let mut pieces = Vec::new();
        let mut r = 0;
        while r < rows.max(1) {
            let n = per.min(rows - r);
            let bytes = &data[r * row_bytes..(r + n) * row_bytes];
            let buf = if dtype.is_quantized() {
                let mut packed = quant::repack(dtype, bytes)?;
                if group > 1 {
                    let nb = cols / dtype.block();
                    let block_bytes = dtype.row_bytes(cols)? / nb.max(1);
                    packed = group_blocks(&packed, n, nb, block_bytes, group);
                }
                if gpu.weight_textures(dtype) {
                    PieceStore::Texture(gpu.upload_weight_texture(&packed, name)?)
                } else {
                    PieceStore::Buffer(gpu.upload(&packed, name)?)
                }
            } else {
                PieceStore::Buffer(gpu.upload(bytes, name)?)
            };
            pieces.push(Piece {
                buf: Arc::new(buf),
                row_start: r,
                rows: n,
                buf_row0: 0,
            });
            r += n;
            if rows == 0 {
                break;
            }
        }
        Ok(Tensor {
            dtype,
            rows,
            cols,
            pieces,
            group,
        })
    }

    pub fn from_f32(
        gpu: &Gpu,
        name: &str,
        rows: usize,
        cols: usize,
        data: &[f32],
    ) -> Result<Tensor> {
        Tensor::from_bytes(
            gpu,
            name,
            DType::F32,
            rows,
            cols,
            bytemuck::cast_slice(data),
        )
    }

    /// Bytes of its buffers; a row view counts its own rows only (its stack counts each
    /// once, `Tensor::stack` stacking rows whose bytes are whole words).
    pub fn bytes(&self) -> u64 {
        let row = self.dtype.row_bytes(self.cols).unwrap_or(0) as u64;
        let own = |p: &Piece| p.rows as u64 * row;
        // A whole buffer is its rows rounded up to a word (at least one); a view is less.
        let view = |p: &Piece| p.buf.bytes() > own(p).max(1).div_ceil(4) * 4;
        self.pieces.iter().map(|p| if view(p) { own(p) } else { p.buf.bytes() }).sum()
    }

    /// One tensor of `parts` (each `(rows, file-layout bytes)`) stacked by rows, and a row view
    /// of each part sharing its buffer: one product computes all parts (q, k and v;
    /// `Layer::qkv`). Only where `Tensor::stacks` says they can share one buffer.
    pub fn stack<const N: usize>(
        gpu: &Gpu,
        name: &str,
        dtype: DType,
        cols: usize,
        parts: [(usize, &[u8]); N],
    ) -> Result<(Tensor, [Tensor; N])> {
        let rows = parts.map(|p| p.0);
        if !Tensor::stacks(dtype, &rows, cols, gpu.max_binding) {
            return Err(Error::Invalid(format!("{name}: parts of {rows:?} rows × {cols} {dtype:?} cannot share a buffer")));
        }
        let data: Vec<u8> = parts.iter().flat_map(|p| p.1.iter().copied()).collect();
        let whole = Tensor::from_bytes(gpu, name, dtype, rows.iter().sum(), cols, &data)?;
        let starts: Vec<usize> = rows.iter().scan(0, |r0, n| Some(std::mem::replace(r0, *r0 + n))).collect();
        let views = std::array::from_fn(|i| whole.row_view(starts[i], rows[i]));
        Ok((whole, views))
    }

    /// Whether parts of `rows` rows can share one buffer (`Tensor::stack`; the plan's sizer
    /// asks too): rows of whole words, parts of whole weight groups (`WEIGHT_GROUP`), all in
    /// one binding; `EDGERL_STACK_OFF=1` keeps every matrix apart (to measure against).
    pub fn stacks(dtype: DType, rows: &[usize], cols: usize, max_binding: u64) -> bool {
        let Ok(row) = dtype.row_bytes(cols) else { return false };
        let total: usize = rows.iter().sum();
        let off = std::env::var("EDGERL_STACK_OFF").is_ok_and(|v| !v.is_empty() && v != "0");
        !off && row.is_multiple_of(4)
            && rows.iter().all(|r| r.is_multiple_of(WEIGHT_GROUP))
            && Tensor::rows_per_piece(cols, dtype, max_binding).is_ok_and(|per| per >= total)
    }

    /// Rows `r0 .. r0 + n` of a one-piece tensor, sharing its buffer.
    fn row_view(&self, r0: usize, n: usize) -> Tensor {
        let p = &self.pieces[0];
        Tensor {
            dtype: self.dtype,
            rows: n,
            cols: self.cols,
            pieces: vec![Piece { buf: p.buf.clone(), row_start: 0, rows: n, buf_row0: p.buf_row0 + r0 }],
            group: self.group,
        }
    }
}
