//! edgerl's CPU reference dequantizers (src/model/gguf/blocks.rs) against gguf-py's
//! `gguf.quants.dequantize` on random blocks (tests/fixtures/gguf/make_quant_fixture.py).
//! Both compute in f32 in ggml's order without fused multiply-adds, so the check is bit-exact.

use edgerl::model::gguf::GgmlType;
use edgerl::model::gguf::blocks::{TYPES, dequantize};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    id: u32,
    bytes: String,
    bits: Vec<u32>,
}

#[derive(Deserialize)]
struct Fixture {
    types: Vec<Case>,
}

fn fixture() -> Vec<(GgmlType, Vec<u8>, Vec<u32>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gguf/quant_blocks.json"
    );
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f.types
        .into_iter()
        .map(|c| {
            let ty = GgmlType::from_id(c.id).unwrap();
            assert_eq!(format!("{ty:?}"), c.name);
            let hex = c.bytes.as_bytes();
            let bytes = (0..hex.len() / 2)
                .map(|i| {
                    u8::from_str_radix(std::str::from_utf8(&hex[2 * i..2 * i + 2]).unwrap(), 16)
                        .unwrap()
                })
                .collect();
            (ty, bytes, c.bits)
        })
        .collect()
}

/// Index and values of the first element whose bits differ, if any.
fn first_mismatch(got: &[f32], want: &[u32]) -> Option<(usize, f32, f32)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g.to_bits() != **w)
        .map(|(i, (g, w))| (i, *g, f32::from_bits(*w)))
}

#[test]
fn every_type_matches_gguf_py_bit_exactly() {
    let cases = fixture();
    // Every type blocks.rs claims is covered, on an awkward block count.
    assert_eq!(
        cases.iter().map(|c| c.0).collect::<Vec<_>>(),
        TYPES.to_vec()
    );
    for (ty, bytes, bits) in &cases {
        let blocks = bytes.len() / ty.block_bytes() as usize;
        assert!(blocks == 3 || blocks == 7, "{ty:?}: {blocks} blocks");
        let got = dequantize(*ty, bytes).unwrap();
        assert_eq!(got.len(), bits.len(), "{ty:?}");
        assert_eq!(
            first_mismatch(&got, bits),
            None,
            "{ty:?}: (index, ours, gguf-py)"
        );
        // Random bytes must give varied values, or a broken reader could pass on zeros.
        let distinct: std::collections::HashSet<u32> = bits.iter().copied().collect();
        assert!(
            distinct.len() > bits.len() / 8,
            "{ty:?}: fixture too uniform"
        );
    }
}

#[test]
fn flipping_a_scale_bit_changes_the_values() {
    // The comparison can fail: one flipped bit in the first block's scale field (the f16 d
    // for most types, the packed 6-bit scales for Q4_K/Q5_K, an i8 scale for Q6_K) must change
    // some values of that block only.
    for (ty, mut bytes, bits) in fixture() {
        let at = match ty {
            GgmlType::Q4_K | GgmlType::Q5_K => 4, // scale byte 0 (sub-block 0)
            GgmlType::Q6_K => 192,                // i8 scale of elements 0..16
            GgmlType::Q2_K => 81,                 // f16 d, high byte
            GgmlType::Q3_K => 109,                // f16 d, high byte
            _ => 1,                               // f16 d at 0, high byte
        };
        bytes[at] ^= 0x02;
        let got = dequantize(ty, &bytes).unwrap();
        let (i, ..) = first_mismatch(&got, &bits).unwrap_or_else(|| panic!("{ty:?} unchanged"));
        assert!(i < ty.block_size() as usize, "{ty:?}: first change at {i}");
    }
}

#[test]
fn partial_blocks_are_errors_not_panics() {
    for (ty, bytes, _) in fixture() {
        for cut in [1, ty.block_bytes() as usize - 1] {
            let err = dequantize(ty, &bytes[..bytes.len() - cut])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not whole") && err.contains(&format!("{ty:?}")),
                "{err}"
            );
        }
    }
    assert!(dequantize(GgmlType::Q8_K, &[0; 292]).is_err());
}

/// edgerl's GPU-side CPU reference for Q4_K agrees with blocks.rs and gguf-py bit for bit, and
/// its GPU layout is the file's (36 words a super-block).
#[test]
fn gpu_quant_q4_k_matches_gguf_py() {
    use edgerl::gpu::{DType, quant};
    let (_, bytes, bits) = fixture()
        .into_iter()
        .find(|c| c.0 == GgmlType::Q4_K)
        .unwrap();
    let got = quant::dequantize(DType::Q4_K, &bytes).unwrap();
    assert_eq!(got.len(), bits.len());
    assert_eq!(first_mismatch(&got, &bits), None, "(index, ours, gguf-py)");
    assert_eq!(quant::repack(DType::Q4_K, &bytes).unwrap(), bytes);
}

/// Q6_K likewise; its GPU layout moves d to the front (d, two zero bytes, ql, qh, scales).
#[test]
fn gpu_quant_q6_k_matches_gguf_py() {
    use edgerl::gpu::{DType, quant};
    let (_, bytes, bits) = fixture()
        .into_iter()
        .find(|c| c.0 == GgmlType::Q6_K)
        .unwrap();
    let got = quant::dequantize(DType::Q6_K, &bytes).unwrap();
    assert_eq!(got.len(), bits.len());
    assert_eq!(first_mismatch(&got, &bits), None, "(index, ours, gguf-py)");
    let g = quant::repack(DType::Q6_K, &bytes).unwrap();
    assert_eq!(g.len(), bytes.len() / 210 * 212);
    for (f, g) in bytes.chunks(210).zip(g.chunks(212)) {
        assert_eq!(
            (&g[..2], &g[2..4], &g[4..]),
            (&f[208..], &[0u8, 0][..], &f[..208])
        );
    }
}

/// The rest of the types kept packed on the GPU (Q5_1, Q5_K, Q2_K, Q3_K, IQ4_NL, IQ4_XS): the
/// GPU-side CPU reference agrees with gguf-py (and so with blocks.rs) bit for bit, and the GPU
/// layout is the file's, but for Q3_K (d moved to the front, as Q6_K) and IQ4_NL (d, two zero
/// bytes, then the quants, as Q4_0).
#[test]
fn gpu_quant_other_types_match_gguf_py() {
    use edgerl::gpu::{DType, quant};
    let types = [
        (GgmlType::Q5_1, DType::Q5_1),
        (GgmlType::Q5_K, DType::Q5_K),
        (GgmlType::Q2_K, DType::Q2_K),
        (GgmlType::Q3_K, DType::Q3_K),
        (GgmlType::IQ4_NL, DType::IQ4_NL),
        (GgmlType::IQ4_XS, DType::IQ4_XS),
    ];
    let cases = fixture();
    for (ty, dtype) in types {
        let (_, bytes, bits) = cases.iter().find(|c| c.0 == ty).unwrap();
        assert_eq!(dtype.file_block_bytes() as u64, ty.block_bytes(), "{ty:?}");
        assert_eq!(dtype.block() as u64, ty.block_size(), "{ty:?}");
        let got = quant::dequantize(dtype, bytes).unwrap();
        assert_eq!(got.len(), bits.len(), "{ty:?}");
        assert_eq!(
            first_mismatch(&got, bits),
            None,
            "{ty:?}: (index, ours, gguf-py)"
        );
        let (fb, gb) = (dtype.file_block_bytes(), dtype.gpu_block_bytes());
        assert_eq!(gb % 4, 0, "{ty:?}: whole words");
        let g = quant::repack(dtype, bytes).unwrap();
        assert_eq!(g.len(), bytes.len() / fb * gb, "{ty:?}");
        for (f, g) in bytes.chunks(fb).zip(g.chunks(gb)) {
            match dtype {
                DType::Q3_K => assert_eq!(
                    (&g[..2], &g[2..4], &g[4..]),
                    (&f[108..], &[0u8, 0][..], &f[..108])
                ),
                DType::IQ4_NL => assert_eq!(
                    (&g[..2], &g[2..4], &g[4..]),
                    (&f[..2], &[0u8, 0][..], &f[2..])
                ),
                _ => assert_eq!(g, f, "{ty:?}"),
            }
        }
    }
}

/// edgerl's GPU-side CPU reference for Q5_0 (`gpu::quant::dequantize`, the values the kernels
/// compute) agrees with blocks.rs and gguf-py bit for bit.
#[test]
fn gpu_quant_q5_0_matches_gguf_py() {
    use edgerl::gpu::{DType, quant};
    let (_, bytes, bits) = fixture()
        .into_iter()
        .find(|c| c.0 == GgmlType::Q5_0)
        .unwrap();
    let got = quant::dequantize(DType::Q5_0, &bytes).unwrap();
    assert_eq!(got.len(), bits.len());
    assert_eq!(first_mismatch(&got, &bits), None, "(index, ours, gguf-py)");
    assert_eq!(
        dequantize(GgmlType::Q5_0, &bytes)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // The GPU layout: d, two zero bytes, then qh and the quant bytes unchanged.
    let g = quant::repack(DType::Q5_0, &bytes).unwrap();
    assert_eq!(g.len(), bytes.len() / 22 * 24);
    for (f, g) in bytes.chunks(22).zip(g.chunks(24)) {
        assert_eq!(
            (&g[..2], &g[2..4], &g[4..]),
            (&f[..2], &[0u8, 0][..], &f[2..])
        );
    }
}
