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

/// The range [min(0, lo), hi] of `s` over `steps` steps: (step, −min(0, lo)).
fn range_of(s: &[f32], steps: f32) -> (f32, f32) {
    let lo = s.iter().fold(0f32, |a, &v| a.min(v));
    let hi = s.iter().fold(lo, |a, &v| a.max(v));
    ((hi - lo) / steps, -lo)
}

/// `v` as a count of `by`'s (rounded up or to nearest) in 0..=max; 0 when `by` is 0.
fn steps_of(v: f32, by: f16, up: bool, max: u8) -> u8 {
    if by.to_f32() > 0.0 {
        let r = v / by.to_f32();
        let r = if up { r.ceil() } else { r.round() };
        r.clamp(0.0, max as f32) as u8
    } else {
        0
    }
}

/// Q4_K / Q5_K (`nmax` 15 or 31): a simple reference (not ggml's make_qkx2_quants search). Per
/// sub-block of 32 the range [min(0, lo), hi] over `nmax` steps, its scale (rounded up, so the
/// range stays covered) and −min over 63 steps of the super-block's d and dmin; then the
/// quants against the rounded scales. Returns d, dmin and the 12 packed scale bytes, and the
/// 256 quants.
fn kquant_scale_min(x: &[f32], nmax: u8) -> (Vec<u8>, Vec<u8>) {
    let subs: Vec<(f32, f32)> = x
        .chunks_exact(QK)
        .map(|s| range_of(s, nmax as f32))
        .collect();
    let smax = subs.iter().fold(0f32, |a, s| a.max(s.0));
    let mmax = subs.iter().fold(0f32, |a, s| a.max(s.1));
    let (d, dmin) = (f16::from_f32(smax / 63.0), f16::from_f32(mmax / 63.0));
    let sc: Vec<u8> = subs.iter().map(|s| steps_of(s.0, d, true, 63)).collect();
    let mn: Vec<u8> = subs
        .iter()
        .map(|s| steps_of(s.1, dmin, false, 63))
        .collect();
    let mut head = Vec::with_capacity(16);
    head.extend(d.to_le_bytes());
    head.extend(dmin.to_le_bytes());
    head.extend((0..4).map(|j| sc[j] | ((sc[j + 4] >> 4) << 6)));
    head.extend((0..4).map(|j| mn[j] | ((mn[j + 4] >> 4) << 6)));
    head.extend((0..4).map(|j| (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4)));
    let q = (0..256)
        .map(|e| {
            let g = e / QK;
            let dl = d.to_f32() * sc[g] as f32;
            let ml = dmin.to_f32() * mn[g] as f32;
            if dl > 0.0 {
                ((x[e] + ml) / dl).round().clamp(0.0, nmax as f32) as u8
            } else {
                0
            }
        })
        .collect();
    (head, q)
}

/// The IQ4 code (0..16) whose value times `d` is nearest `v` (0 when `d` is 0: every code's
/// value is then 0).
fn iq4_code(v: f32, d: f32) -> u8 {
    if d == 0.0 {
        return 0;
    }
    let t = v / d;
    (0..16u8)
        .min_by(|&a, &b| {
            let (ea, eb) = (
                (IQ4_VALUES[a as usize] as f32 - t).abs(),
                (IQ4_VALUES[b as usize] as f32 - t).abs(),
            );
            ea.total_cmp(&eb)
        })
        .unwrap_or(0)
}

/// `vals` in the file layout of `dtype`: little-endian floats, or blocks quantized the way
/// ggml's `quantize_row_*_ref` do it (the K-quants and IQ4 types: simpler searches, same
/// layouts). Quantized types need whole blocks (32 values, or 256 for the super-blocks).
pub fn quantize(dtype: DType, vals: &[f32]) -> Result<Vec<u8>> {
    if !vals.len().is_multiple_of(dtype.block()) {
        return Err(Error::Invalid(format!(
            "{} values are not whole {dtype:?} blocks of {}",
            vals.len(),
            dtype.block()
        )));
    }
    let mut out = Vec::with_capacity(vals.len() / dtype.block() * dtype.file_block_bytes());
    match dtype {
        DType::F32 => out.extend(vals.iter().flat_map(|v| v.to_le_bytes())),
        DType::F16 => out.extend(vals.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes())),
        DType::BF16 => out.extend(vals.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes())),
        DType::Q8_0 => {
            for x in vals.chunks_exact(QK) {
                let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        DType::Q4_0 => {
            for x in vals.chunks_exact(QK) {
                // The value of largest magnitude maps to −8, so its sign sets d's.
                let max = x
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
                out.extend((0..QK / 2).map(|j| q(x[j]) | (q(x[j + QK / 2]) << 4)));
            }
        }
        DType::Q5_0 => {
            for x in vals.chunks_exact(QK) {
                // As Q4_0, with the largest magnitude mapping to −16 (quantize_row_q5_0_ref).
                let max = x
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -16.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
                let qh = (0..QK).fold(0u32, |h, j| h | ((q(x[j]) as u32 >> 4) << j));
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(qh.to_le_bytes());
                out.extend((0..QK / 2).map(|j| (q(x[j]) & 15) | (q(x[j + QK / 2]) << 4)));
            }
        }
        DType::Q6_K => {
            for x in vals.chunks_exact(256) {
                // A simple reference (not ggml's make_qx_quants search): each group of 16 maps
                // its largest magnitude to ±31 steps; the steps are i8 multiples of d.
                let steps: Vec<f32> = x
                    .chunks_exact(16)
                    .map(|s| s.iter().fold(0f32, |a, v| a.max(v.abs())) / 31.0)
                    .collect();
                let d = f16::from_f32(steps.iter().fold(0f32, |a, &s| a.max(s)) / 127.0);
                let sc: Vec<i8> = steps
                    .iter()
                    .map(|&s| {
                        if d.to_f32() > 0.0 {
                            (s / d.to_f32()).ceil().min(127.0) as i8
                        } else {
                            0
                        }
                    })
                    .collect();
                let q: Vec<u8> = (0..256)
                    .map(|e| {
                        let step = d.to_f32() * sc[e / 16] as f32;
                        let q = if step > 0.0 {
                            (x[e] / step).round()
                        } else {
                            0.0
                        };
                        (q.clamp(-32.0, 31.0) + 32.0) as u8
                    })
                    .collect();
                let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
                for (e, &v) in q.iter().enumerate() {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    ql[64 * h + 32 * (k % 2) + l] |= (v & 15) << (4 * (k / 2));
                    qh[32 * h + l] |= (v >> 4) << (2 * k);
                }
                out.extend(ql);
                out.extend(qh);
                out.extend(sc.iter().map(|&s| s as u8));
                out.extend(d.to_le_bytes());
            }
        }
        DType::Q4_K | DType::Q5_K => {
            let q5 = dtype == DType::Q5_K;
            for x in vals.chunks_exact(256) {
                let (head, q) = kquant_scale_min(x, if q5 { 31 } else { 15 });
                out.extend(head);
                if q5 {
                    // Bit g of qh[l]: the fifth bit of element 32g + l.
                    out.extend(
                        (0..QK).map(|l| (0..8).fold(0u8, |h, g| h | ((q[QK * g + l] >> 4) << g))),
                    );
                }
                for c in 0..4 {
                    out.extend(
                        (0..QK).map(|l| (q[64 * c + l] & 15) | ((q[64 * c + QK + l] & 15) << 4)),
                    );
                }
            }
        }
        DType::Q5_1 => {
            for x in vals.chunks_exact(QK) {
                // As Q4_1 over 31 steps (quantize_row_q5_1_ref).
                let min = x.iter().fold(f32::MAX, |a, &v| a.min(v));
                let max = x.iter().fold(-f32::MAX, |a, &v| a.max(v));
                let d = (max - min) / 31.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q = |v: f32| (((v - min) * id + 0.5) as i8).min(31) as u8;
                let qh = (0..QK).fold(0u32, |h, j| h | ((q(x[j]) as u32 >> 4) << j));
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                out.extend(qh.to_le_bytes());
                out.extend((0..QK / 2).map(|j| (q(x[j]) & 15) | (q(x[j + QK / 2]) << 4)));
            }
        }
        DType::Q2_K => {
            for x in vals.chunks_exact(256) {
                // A simple reference (not ggml's make_qkx2_quants search): per group of 16 the
                // range [min(0, lo), hi] over 3 steps; its scale (rounded up) and −min (rounded
                // to nearest) as 4-bit multiples of the super-block's d and dmin.
                let groups: Vec<(f32, f32)> =
                    x.chunks_exact(16).map(|s| range_of(s, 3.0)).collect();
                let smax = groups.iter().fold(0f32, |a, s| a.max(s.0));
                let mmax = groups.iter().fold(0f32, |a, s| a.max(s.1));
                let (d, dmin) = (f16::from_f32(smax / 15.0), f16::from_f32(mmax / 15.0));
                let sc: Vec<u8> = groups.iter().map(|g| steps_of(g.0, d, true, 15)).collect();
                let mn: Vec<u8> = groups
                    .iter()
                    .map(|g| steps_of(g.1, dmin, false, 15))
                    .collect();
                let mut qs = [0u8; 64];
                for (e, &v) in x.iter().enumerate() {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    let dl = d.to_f32() * sc[e / 16] as f32;
                    let ml = dmin.to_f32() * mn[e / 16] as f32;
                    let q = if dl > 0.0 {
                        ((v + ml) / dl).round().clamp(0.0, 3.0) as u8
                    } else {
                        0
                    };
                    qs[32 * h + l] |= q << (2 * k);
                }
                out.extend(sc.iter().zip(&mn).map(|(s, m)| s | (m << 4)));
                out.extend(qs);
                out.extend(d.to_le_bytes());
                out.extend(dmin.to_le_bytes());
            }
        }
        DType::Q3_K => {
            for x in vals.chunks_exact(256) {
                // A simple reference (not ggml's make_q3_quants search): each group of 16 maps
                // its largest magnitude to ±3 steps (of −4..3); the steps are 6-bit multiples
                // (0..31) of d, rounded up.
                let steps: Vec<f32> = x
                    .chunks_exact(16)
                    .map(|s| s.iter().fold(0f32, |a, v| a.max(v.abs())) / 3.0)
                    .collect();
                let d = f16::from_f32(steps.iter().fold(0f32, |a, &s| a.max(s)) / 31.0);
                let sc: Vec<u8> = steps.iter().map(|&s| steps_of(s, d, true, 31)).collect();
                let (mut hmask, mut qs, mut scales) = ([0u8; 32], [0u8; 64], [0u8; 12]);
                for (e, &v) in x.iter().enumerate() {
                    let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                    let step = d.to_f32() * sc[e / 16] as f32;
                    let q = if step > 0.0 {
                        (v / step).round().clamp(-4.0, 3.0)
                    } else {
                        0.0
                    };
                    let u = (q + 4.0) as u8; // low 2 bits in qs, the third in hmask
                    qs[32 * h + l] |= (u & 3) << (2 * k);
                    hmask[l] |= (u >> 2) << (e / 32);
                }
                for (i, &s) in sc.iter().enumerate() {
                    let s6 = s + 32;
                    scales[i % 8] |= (s6 & 15) << (4 * (i / 8));
                    scales[8 + i % 4] |= (s6 >> 4) << (2 * (i / 4));
                }
                out.extend(hmask);
                out.extend(qs);
                out.extend(scales);
                out.extend(d.to_le_bytes());
            }
        }
        DType::IQ4_NL => {
            for x in vals.chunks_exact(QK) {
                // The value of largest magnitude maps to −127, the first code (as ggml's d).
                let max = x
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = f16::from_f32(max / -127.0);
                out.extend(d.to_le_bytes());
                let q: Vec<u8> = x.iter().map(|&v| iq4_code(v, d.to_f32())).collect();
                out.extend((0..QK / 2).map(|j| q[j] | (q[j + QK / 2] << 4)));
            }
        }
        DType::IQ4_XS => {
            for x in vals.chunks_exact(256) {
                // Per sub-block of 32, the value of largest magnitude maps to −127 at its own
                // scale; the scales are 6-bit signed multiples of d (−31..31).
                let subs: Vec<f32> = x
                    .chunks_exact(QK)
                    .map(|s| {
                        s.iter()
                            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m })
                            / -127.0
                    })
                    .collect();
                let d = f16::from_f32(subs.iter().fold(0f32, |a, s| a.max(s.abs())) / 31.0);
                let ls: Vec<i32> = subs
                    .iter()
                    .map(|&s| {
                        if d.to_f32() > 0.0 {
                            (s / d.to_f32()).round().clamp(-31.0, 31.0) as i32
                        } else {
                            0
                        }
                    })
                    .collect();
                let (mut sh, mut sl) = (0u16, [0u8; 4]);
                for (g, &l) in ls.iter().enumerate() {
                    let u = (l + 32) as u8;
                    sl[g / 2] |= (u & 15) << (4 * (g % 2));
                    sh |= ((u >> 4) as u16) << (2 * g);
                }
                out.extend(d.to_le_bytes());
                out.extend(sh.to_le_bytes());
                out.extend(sl);
                for (g, s) in x.chunks_exact(QK).enumerate() {
                    let dl = d.to_f32() * ls[g] as f32;
                    let q: Vec<u8> = s.iter().map(|&v| iq4_code(v, dl)).collect();
                    out.extend((0..QK / 2).map(|j| q[j] | (q[j + QK / 2] << 4)));
                }
            }
        }
        DType::Q4_1 => {
            for x in vals.chunks_exact(QK) {
                let min = x.iter().fold(f32::MAX, |a, &v| a.min(v));
                let max = x.iter().fold(-f32::MAX, |a, &v| a.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
                out.extend((0..QK / 2).map(|j| q(x[j]) | (q(x[j + QK / 2]) << 4)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUANT: [DType; 12] = [
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q4_K,
        DType::Q6_K,
        DType::Q5_1,
        DType::Q5_K,
        DType::Q2_K,
        DType::Q3_K,
        DType::IQ4_NL,
        DType::IQ4_XS,
    ];

    fn values(n: usize) -> Vec<f32> {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Blocks of varied scale, one all-zero block (d = 0).
                let scale = if i / QK == 2 {
                    0.0
                } else {
                    (1 + i / QK) as f32 * 0.3
                };
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn round_trip_is_close() {
        let x = values(8 * QK);
        for dtype in QUANT.into_iter().filter(|d| d.block() == QK) {
            let bytes = quantize(dtype, &x).unwrap();
            assert_eq!(bytes.len(), 8 * dtype.file_block_bytes());
            let y = dequantize(dtype, &bytes).unwrap();
            for (b, (xb, yb)) in x.chunks(QK).zip(y.chunks(QK)).enumerate() {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                // Half a quantization step, plus the f16 rounding of d and m. Q4_0 maps the
                // largest magnitude to −8, so the other end clamps at 7: a whole step.
                let tol = match dtype {
                    DType::Q8_0 => 0.5 * amax / 127.0,
                    DType::Q4_0 => amax / 8.0,
                    DType::Q5_0 => amax / 16.0,
                    DType::Q5_1 => amax / 31.0,
                    // −amax is exact; the widest gap is 113..127 (and half of 89..113).
                    DType::IQ4_NL => 14.0 * amax / 127.0,
                    _ => amax / 15.0,
                } + 2e-3 * amax;
                for (v, w) in xb.iter().zip(yb) {
                    assert!(
                        (v - w).abs() <= tol,
                        "{dtype:?} block {b}: {v} came back as {w}"
                    );
                }
            }
        }
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let y = dequantize(dtype, &quantize(dtype, &x).unwrap()).unwrap();
            assert_eq!(y.len(), x.len());
            assert!(
                x.iter()
                    .zip(&y)
                    .all(|(v, w)| (v - w).abs() <= 4e-3 * v.abs())
            );
        }
    }

    #[test]
    fn q4_k_round_trip_is_close() {
        let x = values(16 * QK);
        let bytes = quantize(DType::Q4_K, &x).unwrap();
        assert_eq!(bytes.len(), 2 * 144);
        assert_eq!(repack(DType::Q4_K, &bytes).unwrap(), bytes); // 36 words already
        let y = dequantize(DType::Q4_K, &bytes).unwrap();
        assert_eq!(y.len(), x.len());
        for (xs, ys) in x.chunks(256).zip(y.chunks(256)) {
            // Per sub-block: half its step, plus the 6-bit rounding of its scale and min
            // against the super-block's largest (d, dmin steps).
            let range = |s: &[f32]| {
                let lo = s.iter().fold(0f32, |a, &v| a.min(v));
                (s.iter().fold(lo, |a, &v| a.max(v)) - lo, -lo)
            };
            let smax = xs.chunks(QK).fold(0f32, |a, s| a.max(range(s).0 / 15.0));
            let mmax = xs.chunks(QK).fold(0f32, |a, s| a.max(range(s).1));
            for (g, (xb, yb)) in xs.chunks(QK).zip(ys.chunks(QK)).enumerate() {
                let tol = range(xb).0 / 30.0 + (smax * 15.0 + mmax) / 63.0 + 1e-6;
                for (v, w) in xb.iter().zip(yb) {
                    assert!((v - w).abs() <= tol, "sub-block {g}: {v} came back as {w}");
                }
            }
        }
    }

    #[test]
    fn q6_k_round_trip_is_close() {
        let x = values(16 * QK);
        let bytes = quantize(DType::Q6_K, &x).unwrap();
        assert_eq!(bytes.len(), 2 * 210);
        let y = dequantize(DType::Q6_K, &bytes).unwrap();
        assert_eq!(y.len(), x.len());
        for (xs, ys) in x.chunks(256).zip(y.chunks(256)) {
            // Half a step of each group of 16: its largest magnitude / 31, rounded up to a
            // multiple of d (the largest step / 127).
            let amax = |s: &[f32]| s.iter().fold(0f32, |a, v| a.max(v.abs()));
            let dmax = xs.chunks(16).fold(0f32, |a, s| a.max(amax(s) / 31.0)) / 127.0;
            for (g, (xb, yb)) in xs.chunks(16).zip(ys.chunks(16)).enumerate() {
                let tol = 0.5 * (amax(xb) / 31.0 + dmax) * 1.01 + 1e-6;
                for (v, w) in xb.iter().zip(yb) {
                    assert!((v - w).abs() <= tol, "group {g}: {v} came back as {w}");
                }
            }
        }
    }

    /// Q5_K, Q2_K, Q3_K and IQ4_XS round trips, each within its own bound: half a step of
    /// its (sub-)block plus the rounding of the scales to multiples of the super-block's.
    #[test]
    fn super_block_round_trips_are_close() {
        let x = values(16 * QK);
        let amax = |s: &[f32]| s.iter().fold(0f32, |a, v| a.max(v.abs()));
        let range = |s: &[f32]| range_of(s, 1.0);
        type Bound = Box<dyn Fn(&[f32]) -> f32>;
        for dtype in [DType::Q5_K, DType::Q2_K, DType::Q3_K, DType::IQ4_XS] {
            let bytes = quantize(dtype, &x).unwrap();
            assert_eq!(bytes.len(), 2 * dtype.file_block_bytes(), "{dtype:?}");
            let y = dequantize(dtype, &bytes).unwrap();
            assert_eq!(y.len(), x.len());
            for (xs, ys) in x.chunks(256).zip(y.chunks(256)) {
                // (group size, bound of a group)
                let (n, bound): (usize, Bound) = match dtype {
                    DType::Q5_K => {
                        let smax = xs.chunks(QK).fold(0f32, |a, s| a.max(range(s).0 / 31.0));
                        let mmax = xs.chunks(QK).fold(0f32, |a, s| a.max(range(s).1));
                        (
                            QK,
                            Box::new(move |s| range(s).0 / 62.0 + (smax * 31.0 + mmax) / 63.0),
                        )
                    }
                    DType::Q2_K => {
                        let smax = xs.chunks(16).fold(0f32, |a, s| a.max(range(s).0 / 3.0));
                        let mmax = xs.chunks(16).fold(0f32, |a, s| a.max(range(s).1));
                        (
                            16,
                            Box::new(move |s| range(s).0 / 6.0 + (smax * 3.0 + mmax) / 15.0),
                        )
                    }
                    DType::Q3_K => {
                        let dmax = xs.chunks(16).fold(0f32, |a, s| a.max(amax(s) / 3.0)) / 31.0;
                        (16, Box::new(move |s| 0.5 * (amax(s) / 3.0 + dmax) * 1.01))
                    }
                    _ => {
                        // IQ4_XS: the sub-block's step |s| = amax / 127 within half a step of d
                        // (the largest / 31); the widest code gap 14 steps, and up to 127 steps
                        // of the scale's rounding.
                        let d = xs.chunks(QK).fold(0f32, |a, s| a.max(amax(s) / 127.0)) / 31.0;
                        (
                            QK,
                            Box::new(move |s| (14.0 * amax(s) / 127.0 + 71.0 * d) * 1.01),
                        )
                    }
                };
                for (g, (xb, yb)) in xs.chunks(n).zip(ys.chunks(n)).enumerate() {
                    let tol = bound(xb) + 1e-6;
                    for (v, w) in xb.iter().zip(yb) {
                        assert!(
                            (v - w).abs() <= tol,
                            "{dtype:?} group {g}: {v} came back as {w} (bound {tol})"
                        );
                    }
                }
            }
            // An all-zero super-block stays zero; whole super-blocks only.
            let z = dequantize(dtype, &quantize(dtype, &[0.0; 256]).unwrap()).unwrap();
            assert!(z.iter().all(|v| *v == 0.0), "{dtype:?}");
            assert!(matches!(
                quantize(dtype, &[0.0; 255]),
                Err(Error::Invalid(_))
            ));
        }
    }

    #[test]
    fn new_layouts_by_hand() {
        // Q5_1: Q4_1's d = 0.5, m = −1 and nibbles, fifth bits on the odd elements.
        let mut b = vec![0x00, 0x38, 0x00, 0xBC];
        b.extend(0xAAAA_AAAAu32.to_le_bytes());
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        assert_eq!(repack(DType::Q5_1, &b).unwrap(), b);
        let v = dequantize(DType::Q5_1, &b).unwrap();
        let nib = |j: usize| if j < 16 { j } else { 31 - j } as f32;
        assert!((0..32).all(|j| v[j] == 0.5 * (nib(j) + 16.0 * (j % 2) as f32) - 1.0));
        // IQ4_NL: d = 0.5, element j ↦ code nib(j); on the GPU as Q4_0 (d, two zero bytes).
        let mut b = vec![0x00, 0x38];
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let g = repack(DType::IQ4_NL, &b).unwrap();
        assert_eq!((&g[..4], &g[4..]), (&[0x00, 0x38, 0, 0][..], &b[2..]));
        let v = dequantize(DType::IQ4_NL, &b).unwrap();
        assert!((0..32).all(|j| v[j] == 0.5 * IQ4_VALUES[nib(j) as usize] as f32));
        // Q3_K on the GPU: d moves to the front.
        let b: Vec<u8> = (0..110u8).collect();
        let g = repack(DType::Q3_K, &b).unwrap();
        assert_eq!((&g[..4], &g[4..]), (&[108, 109, 0, 0][..], &b[..108]));
        // Q3_K scales: s = 0 has low nibble 0 of byte 0, top bits 0..1 of byte 8; s = 13 nibble
        // 1 of byte 5 and bits 6..7 of byte 9.
        let mut sc = [0u8; 12];
        sc[5] = 0x90;
        sc[9] = 0b1100_0000;
        sc[0] = 0x0F;
        sc[8] = 0b10;
        assert_eq!((q3k_scale(&sc, 13), q3k_scale(&sc, 0)), (0x39, 0x2F));
        assert_eq!(q3k_scale(&sc, 5), 0);
        // IQ4_XS scales: sub-block 3 from nibble 1 of scales_l[1] and bits 6..7 of scales_h.
        let mut b = vec![0u8; 136];
        b[5] = 0xA0;
        b[2] = 0b0100_0000;
        assert_eq!((iq4xs_scale(&b, 3), iq4xs_scale(&b, 2)), (0x1A, 0));
        for dtype in [DType::Q5_K, DType::Q2_K, DType::IQ4_XS, DType::Q5_1] {
            assert_eq!(dtype.gpu_block_bytes(), dtype.file_block_bytes());
        }
    }

    #[test]
    fn q6_k_layout_by_hand() {
        // ql bytes 0x21 (nibbles 1, 2), qh bytes 0xE4 (2-bit fields 0, 1, 2, 3): element
        // 128h + 32k + l has q = (k < 2 ? 1 : 2) | k << 4; scales 16 − 3s (i8, some negative);
        // d = 0.5 at the end.
        let mut b = vec![0x21u8; 128];
        b.extend([0xE4u8; 64]);
        b.extend((0..16).map(|s| (16 - 3 * s) as i8 as u8));
        b.extend([0x00, 0x38]);
        // Exceptions: ql[64 + 32 + 5] = 0 (elements 165 and 229 lose their low bits), qh[32 + 7]
        // = 0 (elements 135, 167, 199, 231 lose their top bits).
        b[64 + 32 + 5] = 0;
        b[128 + 32 + 7] = 0;
        let g = repack(DType::Q6_K, &b).unwrap();
        assert_eq!(g.len(), 212);
        assert_eq!(&g[..4], &[0x00, 0x38, 0, 0]);
        assert_eq!(&g[4..], &b[..208]);
        let v = dequantize(DType::Q6_K, &b).unwrap();
        for (e, got) in v.iter().enumerate() {
            let k = (e / 32) % 4;
            let low = if e == 165 || e == 229 {
                0
            } else if k < 2 {
                1
            } else {
                2
            };
            let high = if [135, 167, 199, 231].contains(&e) {
                0
            } else {
                k
            };
            let sc = 16 - 3 * (e / 16) as i32;
            let want = 0.5 * sc as f32 * ((low | high << 4) as i32 - 32) as f32;
            assert_eq!(*got, want, "element {e}");
        }
        // A quantized group of 16 with one value: q = ±31 steps, the rest 32 (zero).
        let mut x = vec![0f32; 256];
        x[40] = -6.2;
        let q = quantize(DType::Q6_K, &x).unwrap();
        let y = dequantize(DType::Q6_K, &q).unwrap();
        assert!((y[40] + 6.2).abs() < 0.01, "{}", y[40]);
        assert!(y.iter().enumerate().all(|(e, v)| e == 40 || *v == 0.0));
        assert!(matches!(
            quantize(DType::Q6_K, &[0.0; 255]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn q4_k_layout_by_hand() {
        // d = 0.5, dmin = 1; sub-block scales 1, 2, 3, 4, 40, 50, 60, 63 and mins 0, 5, 10, 63,
        // 17, 33, 48, 1 in ggml's 12-byte packing (6 bits of j < 4 and the low 4 of j ≥ 4, whose
        // top 2 bits ride in bits 6..7 of bytes j − 4 (scale) and j (min)).
        let sc = [1u8, 2, 3, 4, 40, 50, 60, 63];
        let mn = [0u8, 5, 10, 63, 17, 33, 48, 1];
        let mut b = vec![0x00, 0x38, 0x00, 0x3C];
        b.extend([
            0x81, 0xC2, 0xC3, 0xC4, 0x40, 0x85, 0xCA, 0x3F, 0x18, 0x12, 0x0C, 0x1F,
        ]);
        for j in 0..8 {
            assert_eq!(q4k_scale_min(&b[4..16], j), (sc[j], mn[j]));
        }
        // Quant byte 32c + l: low nibble l % 16 (element 64c + l), high 15 − l % 16 (64c + 32 + l).
        for _ in 0..4 {
            b.extend((0..32u8).map(|l| (l % 16) | ((15 - l % 16) << 4)));
        }
        assert_eq!(b.len(), 144);
        assert_eq!(repack(DType::Q4_K, &b).unwrap(), b);
        let v = dequantize(DType::Q4_K, &b).unwrap();
        for (e, got) in v.iter().enumerate() {
            let (g, l) = (e / 32, e % 32);
            let q = if g % 2 == 0 { l % 16 } else { 15 - l % 16 } as f32;
            assert_eq!(*got, 0.5 * sc[g] as f32 * q - mn[g] as f32, "element {e}");
        }
        // Whole super-blocks only.
        assert!(matches!(
            quantize(DType::Q4_K, &[0.0; 255]),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            dequantize(DType::Q4_K, &b[..143]),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            repack(DType::Q4_K, &b[..72]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn block_layouts_by_hand() {
        // d = 0.5 (f16 0x3800), m = −1 (f16 0xBC00); element j ↦ quant j.
        let d = [0x00, 0x38];
        let m = [0x00, 0xBC];
        let mut q8 = d.to_vec();
        q8.extend((0..32).map(|j| (j as i8 - 16) as u8));
        let mut q4_0 = d.to_vec();
        q4_0.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let mut q4_1 = [d, m].concat();
        q4_1.extend_from_slice(&q4_0[2..]);

        let g8 = repack(DType::Q8_0, &q8).unwrap();
        assert_eq!(&g8[..4], &[0x00, 0x38, 0, 0]);
        assert_eq!(&g8[4..], &q8[2..]);
        let g4 = repack(DType::Q4_0, &q4_0).unwrap();
        assert_eq!(&g4[..4], &[0x00, 0x38, 0, 0]);
        assert_eq!(&g4[4..], &q4_0[2..]);
        assert_eq!(repack(DType::Q4_1, &q4_1).unwrap(), q4_1);

        let v8 = dequantize(DType::Q8_0, &q8).unwrap();
        assert!((0..32).all(|j| v8[j] == 0.5 * (j as f32 - 16.0)));
        let v4 = dequantize(DType::Q4_0, &q4_0).unwrap();
        let nib = |j: usize| if j < 16 { j } else { 31 - j } as f32;
        assert!((0..32).all(|j| v4[j] == 0.5 * (nib(j) - 8.0)));
        let v41 = dequantize(DType::Q4_1, &q4_1).unwrap();
        assert!((0..32).all(|j| v41[j] == 0.5 * nib(j) - 1.0));

        // Q5_0: the Q4_0 nibbles, fifth bits set for the odd elements (qh = 0xAAAAAAAA).
        let mut q5 = d.to_vec();
        q5.extend(0xAAAA_AAAAu32.to_le_bytes());
        q5.extend_from_slice(&q4_0[2..]);
        let g5 = repack(DType::Q5_0, &q5).unwrap();
        assert_eq!(&g5[..8], &[0x00, 0x38, 0, 0, 0xAA, 0xAA, 0xAA, 0xAA]);
        assert_eq!(&g5[8..], &q4_0[2..]);
        let v5 = dequantize(DType::Q5_0, &q5).unwrap();
        assert!((0..32).all(|j| v5[j] == 0.5 * (nib(j) + 16.0 * (j % 2) as f32 - 16.0)));
    }

    #[test]
    fn ggml_reference_quants() {
        // Q8_0: amax/127 scale, round half away from zero.
        let mut x = vec![0f32; 32];
        x[0] = 127.0;
        x[1] = -63.5;
        x[2] = 0.49;
        let b = quantize(DType::Q8_0, &x).unwrap();
        assert_eq!(f16_at(&b, 0), 1.0);
        assert_eq!(&b[2..5], &[127, (-64i8) as u8, 0]);
        // Q4_0: the largest-magnitude value (−4) gets d = 0.5 and quant 0.
        let mut x = vec![0f32; 32];
        x[0] = -4.0;
        x[17] = 3.5;
        let b = quantize(DType::Q4_0, &x).unwrap();
        assert_eq!(f16_at(&b, 0), 0.5);
        assert_eq!(b[2], 0x80); // element 0 → 0, element 16 → 8 (zero)
        assert_eq!(b[3], 0xF8); // element 1 → 8, element 17 → min(15, 15)
        // Q4_1: m = min, d = (max − min)/15.
        let x: Vec<f32> = (0..32).map(|j| (j % 16) as f32 - 1.0).collect();
        let b = quantize(DType::Q4_1, &x).unwrap();
        assert_eq!((f16_at(&b, 0), f16_at(&b, 2)), (1.0, -1.0));
        assert!((0..16).all(|j| b[4 + j] == (j as u8) * 0x11));
        // Q5_0: the largest-magnitude value (8) gets d = −0.5 and quant 0; the other end
        // clamps at 31.
        let mut x = vec![0f32; 32];
        x[0] = 8.0;
        x[1] = -7.9;
        x[17] = 0.2;
        let b = quantize(DType::Q5_0, &x).unwrap();
        assert_eq!(b.len(), 22);
        assert_eq!(f16_at(&b, 0), -0.5);
        // Quants: element 0 → 0, 1 → min(31, 32) = 31, 17 → 16 (0.2/−0.5 + 16.5 = 16.1),
        // the zeros → 16: every fifth bit but element 0's.
        assert_eq!(u32::from_le_bytes([b[2], b[3], b[4], b[5]]), !1);
        assert_eq!(b[6], 0x00); // element 0 → 0, element 16 → 16 (nibble 0)
        assert_eq!(b[7], 0x0F); // element 1 → 31 (nibble 15), element 17 → 16
    }

    #[test]
    fn partial_blocks_are_errors() {
        for dtype in QUANT {
            let fb = dtype.file_block_bytes();
            for bad in [1, fb - 1, fb + 1, 3 * fb + 2] {
                let bytes = vec![0u8; bad];
                assert!(matches!(repack(dtype, &bytes), Err(Error::Invalid(_))));
                assert!(matches!(dequantize(dtype, &bytes), Err(Error::Invalid(_))));
            }
            assert!(matches!(
                quantize(dtype, &[0.0; 33]),
                Err(Error::Invalid(_))
            ));
            assert!(repack(dtype, &[]).unwrap().is_empty());
        }
        assert!(matches!(
            dequantize(DType::F16, &[0; 3]),
            Err(Error::Invalid(_))
        ));
    }
}
