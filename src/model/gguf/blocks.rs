//! CPU reference dequantizers for the llama.cpp block formats Q5_0, Q5_1, the K-quants
//! Q2_K..Q6_K (256-element super-blocks) and IQ4_NL / IQ4_XS, written from ggml independently
//! of the GPU side's (`gpu::quant::dequantize`, which the kernels match): both are checked
//! bit-exactly against gguf-py's `gguf.quants.dequantize` (tests/quant_blocks.rs). Arithmetic
//! is f32 in ggml's order: a sub-block scale `d·sc` (and min `dmin·m`) is formed first, then
//! `scale·q − min`.
//!
//! Layouts (little-endian, `GgmlType::block_bytes` bytes a block):
//! - Q5_0: f16 d, u32 qh, 16 nibble bytes; value d·(q − 16) where q = nibble | bit j of qh << 4.
//! - Q5_1: f16 d, f16 m, u32 qh, 16 nibble bytes; value d·q + m.
//!   (Element j < 16 is the low nibble of byte j, j + 16 the high one.)
//! - Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 qs, f16 d, f16 dmin.
//! - Q3_K: 32 hmask, 64 qs, 12 packed 6-bit signed scales, f16 d.
//! - Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins (`scale_min_k4`), 128 qs.
//! - Q5_K: as Q4_K plus 32 qh bytes before the qs (bit g of qh[l] is element 32g + l's 5th bit).
//! - Q6_K: 128 ql, 64 qh, 16 i8 scales, f16 d; value d·scale·(q − 32).
//! - IQ4_NL: f16 d, 16 nibble bytes indexing a non-linear table; IQ4_XS: f16 d, u16 scales_h,
//!   4 scales_l bytes, 128 nibble bytes, 8 sub-blocks of 32 with 6-bit signed scales.

use half::f16;

use super::GgmlType;
use crate::error::{Error, Result};

// IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl): one definition, the GPU packing's.
use crate::gpu::quant::IQ4_VALUES;

/// The types `dequantize` handles.
pub const TYPES: [GgmlType; 9] = {
    use GgmlType::*;
    [Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS]
};

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

// The 6-bit scale and min of sub-block j (0..8) of a Q4_K / Q5_K block: one definition, the
// GPU packing's (the floor below).
use crate::gpu::quant::q4k_scale_min as scale_min_k4;

/// Values of one block of `ty` (`b` is exactly one block) appended to `out`.
fn block(ty: GgmlType, b: &[u8], out: &mut Vec<f32>) {
    use GgmlType::*;
    // Nibble j of a 32-element group whose 16 bytes start at `qs`.
    let nib = |qs: &[u8], j: usize| (qs[j % 16] >> (4 * (j / 16))) & 15;
    match ty {
        Q5_0 | Q5_1 => {
            let d = f16_at(b, 0);
            let at = if ty == Q5_1 { 4 } else { 2 };
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let qs = &b[at + 4..];
            let q = |j: usize| nib(qs, j) | ((((qh >> j) & 1) as u8) << 4);
            if ty == Q5_1 {
                let m = f16_at(b, 2);
                out.extend((0..32).map(|j| d * q(j) as f32 + m));
            } else {
                out.extend((0..32).map(|j| d * (q(j) as i32 - 16) as f32));
            }
        }
        Q2_K => {
            let (sc, qs) = (&b[..16], &b[16..80]);
            let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
            // Element 128h + 32k + l: bits 2k..2k+2 of qs[32h + l]; scale index = element / 16.
            out.extend((0..256).map(|e| {
                let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                let q = (qs[32 * h + l] >> (2 * k)) & 3;
                let s = sc[e / 16];
                (d * (s & 15) as f32) * q as f32 - dmin * (s >> 4) as f32
            }));
        }
        Q3_K => {
            let (hmask, qs, sc) = (&b[..32], &b[32..96], &b[96..108]);
            let d = f16_at(b, 108);
            // Scale i: low 4 bits from nibble i / 8 of byte i % 8, top 2 from byte 8 + i % 4.
            let scale = |i: usize| {
                let lo = (sc[i % 8] >> (4 * (i / 8))) & 15;
                let hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
                ((lo | (hi << 4)) as i32 - 32) as f32
            };
            out.extend((0..256).map(|e| {
                let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                let low = ((qs[32 * h + l] >> (2 * k)) & 3) as i32;
                // A clear hmask bit (bit e / 32 of byte l) subtracts 4.
                let sub = if (hmask[l] >> (e / 32)) & 1 == 1 {
                    0
                } else {
                    4
                };
                (d * scale(e / 16)) * (low - sub) as f32
            }));
        }
        Q4_K | Q5_K => {
            let (d, dmin, sc) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
            let (qh, qs) = if ty == Q5_K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            // Element 64c + 32s + l: nibble s of qs[32c + l]; sub-block 2c + s.
            for g in 0..8 {
                let (s, m) = scale_min_k4(sc, g);
                let (dl, ml) = (d * s as f32, dmin * m as f32);
                out.extend((0..32).map(|l| {
                    let low = (qs[32 * (g / 2) + l] >> (4 * (g % 2))) & 15;
                    let high = qh.map_or(0, |qh| ((qh[l] >> g) & 1) << 4);
                    dl * (low | high) as f32 - ml
                }));
            }
        }
        Q6_K => {
            let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
            let d = f16_at(b, 208);
            // Element 128h + 32k + l: nibble k / 2 of ql[64h + 32(k % 2) + l], top 2 bits from
            // bits 2k..2k+2 of qh[32h + l]; scale index = element / 16.
            out.extend((0..256).map(|e| {
                let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
                let low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
                let high = (qh[32 * h + l] >> (2 * k)) & 3;
                let q = (low | (high << 4)) as i32 - 32;
                (d * sc[e / 16] as i8 as f32) * q as f32
            }));
        }
        IQ4_NL => {
            let d = f16_at(b, 0);
            out.extend((0..32).map(|j| d * IQ4_VALUES[nib(&b[2..], j) as usize] as f32));
        }
        IQ4_XS => {
            let d = f16_at(b, 0);
            let sh = u16::from_le_bytes([b[2], b[3]]);
            let (sl, qs) = (&b[4..8], &b[8..136]);
            for g in 0..8 {
                let lo = (sl[g / 2] >> (4 * (g % 2))) & 15;
                let hi = ((sh >> (2 * g)) & 3) as u8;
                let dl = d * ((lo | (hi << 4)) as i32 - 32) as f32;
                let qg = &qs[16 * g..16 * g + 16];
                out.extend((0..32).map(|j| dl * IQ4_VALUES[nib(qg, j) as usize] as f32));
            }
        }
        _ => unreachable!("checked by dequantize"),
    }
}

/// The values of file-layout `ty` data (whole blocks only), as ggml's dequantize_row_* gives
/// them. Errors on a type not in `TYPES` or on a partial block.
pub fn dequantize(ty: GgmlType, file_bytes: &[u8]) -> Result<Vec<f32>> {
    if !TYPES.contains(&ty) {
        return Err(Error::Invalid(format!(
            "no reference dequantizer for {ty:?}"
        )));
    }
    let (bs, bb) = (ty.block_size() as usize, ty.block_bytes() as usize);
    if !file_bytes.len().is_multiple_of(bb) {
        return Err(Error::Invalid(format!(
            "{} bytes are not whole {ty:?} blocks of {bb} bytes",
            file_bytes.len()
        )));
    }
    let mut out = Vec::with_capacity(file_bytes.len() / bb * bs);
    for b in file_bytes.chunks_exact(bb) {
        block(ty, b, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_unknown_blocks_are_errors() {
        for ty in TYPES {
            let bb = ty.block_bytes() as usize;
            assert_eq!(
                dequantize(ty, &vec![0; 2 * bb]).unwrap().len(),
                2 * ty.block_size() as usize
            );
            assert!(dequantize(ty, &vec![0; 2 * bb - 1]).is_err(), "{ty:?}");
            assert!(dequantize(ty, &vec![0; bb + 1]).is_err(), "{ty:?}");
        }
        assert!(dequantize(GgmlType::IQ2_XXS, &[0; 66]).is_err());
    }

    #[test]
    fn scale_min_k4_unpacks_the_high_bits() {
        // Sub-block 5: low 4 bits of scale/min in byte 9, top 2 bits in bytes 1 and 5.
        let mut s = [0u8; 12];
        s[9] = 0xA7;
        s[1] = 0b1100_0000;
        s[5] = 0b0100_0000;
        assert_eq!(scale_min_k4(&s, 5), (0x37, 0x1A));
        assert_eq!(scale_min_k4(&s, 1), (0, 0));
    }
}
