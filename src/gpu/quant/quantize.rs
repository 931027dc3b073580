//! Quantizers following ggml's reference ones (for random benchmark weights and tests): simple
//! range-based scales, not ggml's search.

use half::f16;

use super::*;

/// The range [min(0, lo), hi] of `s` over `steps` steps: (step, −min(0, lo)).
pub(super) fn range_of(s: &[f32], steps: f32) -> (f32, f32) {
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
