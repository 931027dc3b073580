//! Tensors on the GPU. A weight matrix whose bytes exceed the storage-binding limit is split by
//! rows into pieces, each its own buffer; every kernel that reads weights loops over pieces.

use super::device::Gpu;
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

/// Element type as stored on the device. 16-bit types are packed two per u32, so no kernel
/// needs `shader-f16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DType {
    F32,
    F16,
    BF16,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }
    /// The code the WGSL kernels switch on (`override WDTYPE`).
    pub fn code(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
        }
    }
}

/// Rows `row_start .. row_start + rows` of a tensor, in one buffer.
#[derive(Debug)]
pub struct Piece {
    pub buf: GpuBuffer,
    pub row_start: usize,
    pub rows: usize,
}

/// A 2-D (or 1-D, as one row) tensor: `rows × cols`, stored in row pieces.
#[derive(Debug)]
pub struct Tensor {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    pub pieces: Vec<Piece>,
}

impl Tensor {
    /// Rows per piece so that one piece's bytes fit in `max_binding`.
    pub fn rows_per_piece(cols: usize, dtype: DType, max_binding: u64) -> Result<usize> {
        let row_bytes = (cols * dtype.size()) as u64;
        let rows = max_binding / row_bytes.max(1);
        if rows == 0 {
            return Err(Error::Invalid(format!(
                "one row of {cols} {dtype:?} values ({row_bytes} bytes) exceeds the storage binding limit ({max_binding} bytes)"
            )));
        }
        Ok(rows as usize)
    }

    /// Uploads little-endian bytes of a `rows × cols` tensor of `dtype`, split as needed.
    pub fn from_bytes(
        gpu: &Gpu,
        name: &str,
        dtype: DType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Tensor> {
        let row_bytes = cols * dtype.size();
        if data.len() != rows * row_bytes {
            return Err(Error::Invalid(format!(
                "{name}: {} bytes given for {rows}×{cols} {dtype:?}",
                data.len()
            )));
        }
        let per = Tensor::rows_per_piece(cols, dtype, gpu.max_binding)?;
        let mut pieces = Vec::new();
        let mut r = 0;
        while r < rows.max(1) {
            let n = per.min(rows - r);
            let buf = gpu.upload(&data[r * row_bytes..(r + n) * row_bytes], name)?;
            pieces.push(Piece {
                buf,
                row_start: r,
                rows: n,
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

    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.buf.bytes).sum()
    }
}
