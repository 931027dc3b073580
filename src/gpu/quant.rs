//! llama.cpp block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL: 32 elements a block; the
//! K-quants Q2_K..Q6_K and IQ4_XS: 256) on the CPU side: the
//! file ↔ GPU block layouts, a reference dequantizer for every `DType`, and quantizers that
//! follow ggml's reference ones (for random benchmark weights and tests).
//!
//! File blocks (little-endian): Q8_0 = f16 d, 32 × i8 q (34 bytes), value d·q; Q4_0 = f16 d,
//! 16 nibble bytes (18 bytes), value d·(q − 8); Q4_1 = f16 d, f16 m, 16 nibble bytes
//! (20 bytes), value d·q + m; Q5_0 = f16 d, u32 qh, 16 nibble bytes (22 bytes), value
//! d·(q − 16) with bit j of qh as element j's fifth bit. Element j < 16 is the low nibble of
//! byte j, j + 16 the high one. On the GPU each block starts on a u32 word: the scales fill
//! word 0 (d low half, m high half, zero otherwise), then Q5_0's qh (word 1), and the quant
//! bytes follow in file order.
//!
//! Q4_K: super-blocks of 256 (144 bytes, already 36 words, stored as they are): f16 d, f16
//! dmin, 12 bytes of 6-bit sub-block scales and mins (ggml's get_scale_min_k4), 128 quant
//! bytes; element 64c + 32s + l is nibble s of byte 32c + l, value d·sc·q − dmin·m of its
//! sub-block 2c + s.
//!
//! Q6_K: super-blocks of 256 (210 bytes): 128 ql, 64 qh, 16 i8 scales, f16 d; element
//! 128h + 32k + l has low 4 bits nibble k / 2 of ql[64h + 32(k % 2) + l] and top 2 bits
//! 2k..2k+1 of qh[32h + l], value d·scale[e / 16]·(q − 32). On the GPU (53 words): d and two
//! zero bytes first, then ql, qh and the scales in file order.
//!
//! Q5_1: f16 d, f16 m, u32 qh, 16 nibble bytes (24 bytes, 6 words as they are), value d·q + m
//! with q as Q5_0's.
//!
//! Q5_K: super-blocks of 256 (176 bytes, 44 words as they are): Q4_K's d, dmin and 12 scale
//! bytes, then 32 qh bytes (bit g of qh[l] is the fifth bit of element 32g + l), then Q4_K's
//! 128 quant bytes; value d·sc·q − dmin·m.
//!
//! Q2_K: super-blocks of 256 (84 bytes, 21 words as they are): 16 scale bytes (low nibble the
//! scale, high the min of each 16 elements), 64 qs, f16 d, f16 dmin; element 128h + 32k + l is
//! bits 2k..2k+1 of qs[32h + l], value (d·sc)·q − dmin·m.
//!
//! Q3_K: super-blocks of 256 (110 bytes): 32 hmask, 64 qs, 12 bytes of 6-bit signed scales, f16
//! d; element e = 128h + 32k + l has low bits 2k..2k+1 of qs[32h + l] and a third bit, bit e / 32
//! of hmask[l] (clear: subtract 4), value d·(s − 32)·(q − 4) with scale s of e / 16 (low 4 bits
//! nibble s / 8 of byte s % 8, top 2 bits 2(s / 4).. of byte 8 + s % 4). On the GPU (28
//! words): d and two zero bytes first, then hmask, qs and the scales in file order.
//!
//! IQ4_NL: f16 d, 16 nibble bytes (18 bytes) as Q4_0, value d·kvalues[q] (`IQ4_VALUES`); on the
//! GPU as Q4_0 (d, two zero bytes, quants). IQ4_XS: super-blocks of 256 (136 bytes, 34 words as
//! they are): f16 d, u16 scales_h, 4 scales_l bytes, then 8 sub-blocks of 32 as IQ4_NL's
//! quants; sub-block g's scale is d·(ls − 32), ls = nibble g % 2 of scales_l[g / 2] | bits
//! 2g..2g+1 of scales_h << 4.

use half::{bf16, f16};

use super::tensor::DType;
use crate::error::{Error, Result};

const QK: usize = 32;

/// IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl); the kernels hold it as four words of i8s.
pub(crate) const IQ4_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Number of blocks in `bytes` of file-layout `dtype` data, or an error if it is not whole.
fn whole_blocks(dtype: DType, bytes: usize) -> Result<usize> {
    let b = dtype.file_block_bytes();
    if !bytes.is_multiple_of(b) {
        return Err(Error::Invalid(format!(
            "{bytes} bytes are not whole {dtype:?} blocks of {b} bytes"
        )));
    }
    Ok(bytes / b)
}

/// Q4_K: the 6-bit (scale, min) of sub-block j (0..8) from the 12 scale bytes (ggml's
/// get_scale_min_k4): j < 4 in the low 6 bits of bytes j and j + 4; j ≥ 4 take their low 4 bits
/// from byte j + 4 and their top 2 from the spare bits of bytes j − 4 and j.
pub(crate) fn q4k_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Block types whose every value is c·q + o with an integer q and one (c, o) per 32 elements
/// (Q8_0 with o = 0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K), or c·q with one c per 16 (Q6_K,
/// Q3_K: q centred, o = 0): their products take `matmul_q_sums` (shaders/matmul.wgsl), which
/// moves c and o out of the sums over each block. Not Q2_K (a 4-bit min per 16 riding in the
/// quant word) nor the IQ4 types (q a table entry).
pub fn scales_factor_out(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Q8_0
            | DType::Q4_0
            | DType::Q4_1
            | DType::Q5_0
            | DType::Q5_1
            | DType::Q4_K
            | DType::Q5_K
            | DType::Q6_K
            | DType::Q3_K
    )
}

/// File-layout blocks → the GPU layout (each block padded to whole u32 words). Float types
/// are stored as they are.
pub fn repack(dtype: DType, file_bytes: &[u8]) -> Result<Vec<u8>> {
    let n = whole_blocks(dtype, file_bytes.len())?;
    let (fb, gb) = (dtype.file_block_bytes(), dtype.gpu_block_bytes());
    if matches!(dtype, DType::Q6_K | DType::Q3_K) {
        // d (the last two bytes) moves to the front: d, two zero bytes, the rest.
        let t = fb - 2;
        let mut out = vec![0u8; n * gb];
        for (src, dst) in file_bytes.chunks_exact(fb).zip(out.chunks_exact_mut(gb)) {
            dst[..2].copy_from_slice(&src[t..]);
            dst[4..].copy_from_slice(&src[..t]);
        }
        return Ok(out);
    }
    if fb == gb {
        // Q4_1, Q5_1, Q4_K, Q5_K, Q2_K and IQ4_XS blocks are already word-aligned.
        return Ok(file_bytes.to_vec());
    }
    // Q8_0, Q4_0, IQ4_NL and Q5_0: the f16 scale, two zero bytes, then the rest (Q5_0: qh,
    // quants).
    let mut out = vec![0u8; n * gb];
    for (src, dst) in file_bytes.chunks_exact(fb).zip(out.chunks_exact_mut(gb)) {
        dst[..2].copy_from_slice(&src[..2]);
        dst[4..].copy_from_slice(&src[2..]);
    }
    Ok(out)
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Nibble j of a 32-element group whose 16 bytes start at `qs` (j < 16 low, else high).
fn nibble(qs: &[u8], j: usize) -> usize {
    ((qs[j % 16] >> (4 * (j / 16))) & 15) as usize
}

/// Q3_K: the unsigned 6-bit scale i (0..16, value s − 32) from the 12 scale bytes: low 4 bits
/// nibble i / 8 of byte i % 8, top 2 bits 2(i / 4)..2(i / 4) + 1 of byte 8 + i % 4.
fn q3k_scale(sc: &[u8], i: usize) -> u8 {
    ((sc[i % 8] >> (4 * (i / 8))) & 15) | (((sc[8 + i % 4] >> (2 * (i / 4))) & 3) << 4)
}

/// IQ4_XS: sub-block g's unsigned 6-bit scale (value ls − 32) of the super-block `b`.
fn iq4xs_scale(b: &[u8], g: usize) -> u8 {
    let sh = u16::from_le_bytes([b[2], b[3]]);
    ((b[4 + g / 2] >> (4 * (g % 2))) & 15) | ((((sh >> (2 * g)) & 3) as u8) << 4)
}

/// The values of file-layout `dtype` data, exactly as the GPU kernels compute them.
pub fn dequantize(dtype: DType, file_bytes: &[u8]) -> Result<Vec<f32>> {
    let fb = dtype.file_block_bytes();
    let n = whole_blocks(dtype, file_bytes.len())?;
    let blocks = file_bytes.chunks_exact(fb);
    let mut out = Vec::with_capacity(n * dtype.block());
    match dtype {
        DType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        DType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        DType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        DType::Q8_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                out.extend(b[2..].iter().map(|&q| d * q as i8 as f32));
            }
        }
        DType::Q5_0 | DType::Q5_1 => {
            let at = if dtype == DType::Q5_1 { 4 } else { 2 };
            for b in blocks {
                let d = f16_at(b, 0);
                let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                let q = |j: usize| {
                    ((b[at + 4 + j % 16] >> (4 * (j / 16))) & 15) as u32 | ((qh >> j) & 1) << 4
                };
                if dtype == DType::Q5_1 {
                    let m = f16_at(b, 2);
                    out.extend((0..QK).map(|j| d * q(j) as f32 + m));
                } else {
                    out.extend((0..QK).map(|j| d * (q(j) as f32 - 16.0)));
                }
            }
        }
        DType::Q2_K => {
            for b in blocks {
                let (sc, qs) = (&b[..16], &b[16..80]);
                let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
                out.extend((0..256).map(|e| {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    let q = (qs[32 * h + l] >> (2 * k)) & 3;
                    let s = sc[e / 16];
                    (d * (s & 15) as f32) * q as f32 - dmin * (s >> 4) as f32
                }));
            }
        }
        DType::Q3_K => {
            for b in blocks {
                let (hmask, qs) = (&b[..32], &b[32..96]);
                let d = f16_at(b, 108);
                out.extend((0..256).map(|e| {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    let low = (qs[32 * h + l] >> (2 * k)) & 3;
                    let high = (hmask[l] >> (e / 32)) & 1;
                    let s = q3k_scale(&b[96..108], e / 16);
                    (d * (s as i32 - 32) as f32) * ((low | (high << 2)) as i32 - 4) as f32
                }));
            }
        }
        DType::IQ4_NL => {
            for b in blocks {
                let d = f16_at(b, 0);
                out.extend((0..QK).map(|j| d * IQ4_VALUES[nibble(&b[2..], j)] as f32));
            }
        }
        DType::IQ4_XS => {
            for b in blocks {
                let d = f16_at(b, 0);
                for g in 0..8 {
                    let dl = d * (iq4xs_scale(b, g) as i32 - 32) as f32;
                    let qs = &b[8 + 16 * g..][..16];
                    out.extend((0..QK).map(|j| dl * IQ4_VALUES[nibble(qs, j)] as f32));
                }
            }
        }
        DType::Q6_K => {
            for b in blocks {
                let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                out.extend((0..256).map(|e| {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    let low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
                    let high = (qh[32 * h + l] >> (2 * k)) & 3;
                    (d * sc[e / 16] as i8 as f32) * ((low | (high << 4)) as i32 - 32) as f32
                }));
            }
        }
        DType::Q4_K | DType::Q5_K => {
            let q5 = dtype == DType::Q5_K;
            for b in blocks {
                let (d, dmin, sc) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
                let at = if q5 { 48 } else { 16 };
                // Element 64c + 32s + l: nibble s of quant byte 32c + l; sub-block g = 2c + s
                // (Q5_K: its fifth bit is bit g of qh[l]).
                for g in 0..8 {
                    let (s, m) = q4k_scale_min(sc, g);
                    let (dl, ml) = (d * s as f32, dmin * m as f32);
                    let qs = &b[at + 32 * (g / 2)..][..32];
                    out.extend(qs.iter().enumerate().map(|(l, &q)| {
                        let high = if q5 { ((b[16 + l] >> g) & 1) << 4 } else { 0 };
                        dl * (((q >> (4 * (g % 2))) & 15) | high) as f32 - ml
                    }));
                }
            }
        }
        DType::Q4_0 | DType::Q4_1 => {
            let q4_1 = dtype == DType::Q4_1;
            for b in blocks {
                let d = f16_at(b, 0);
                let (m, qs) = if q4_1 {
                    (f16_at(b, 2), &b[4..])
                } else {
                    (0.0, &b[2..])
                };
                let nibble = |j: usize| ((qs[j % 16] >> (4 * (j / 16))) & 15) as f32;
                out.extend((0..QK).map(|j| {
                    if q4_1 {
                        d * nibble(j) + m
                    } else {
                        d * (nibble(j) - 8.0)
                    }
                }));
            }
        }
    }
    Ok(out)
}

mod quantize;
pub use quantize::quantize;

#[cfg(test)]
mod tests;
