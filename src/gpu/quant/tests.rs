use super::quantize::range_of;
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

/// The types whose scales factor out take the sums kernels, forward and input gradient (tile
/// heights in kernels.rs and backward.rs follow the same test), the others keep the per-element
/// decode: Q2_K's minimum rides in the quant word, the IQ4 quants are table entries.
#[test]
fn sums_kernels_take_the_factored_types() {
    use crate::gpu::pipeline::Kernel;
    for dtype in QUANT {
        let sums = !matches!(dtype, DType::Q2_K | DType::IQ4_NL | DType::IQ4_XS);
        assert_eq!(scales_factor_out(dtype), sums, "{dtype:?}");
        let (fwd, bwd) = if sums {
            ("matmul_q_sums", "matmul_backward_input_q_sums")
        } else {
            ("matmul_q", "matmul_backward_input_q")
        };
        assert_eq!(Kernel::Matmul(dtype).entry(), fwd, "{dtype:?}");
        assert_eq!(Kernel::MatmulBackwardInput(dtype).entry(), bwd, "{dtype:?}");
    }
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        assert!(!scales_factor_out(dtype), "{dtype:?}");
    }
}
