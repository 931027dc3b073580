// Reading one weight element, shared by every kernel that reads weight pieces; prepended to
// those kernel files at pipeline build. The kernel file declares the piece as
// `w: array<u32>` (module-scope declarations may come in any order).
// Float types: f32, or f16 / bf16 two per u32. Quantized types (llama.cpp blocks of 32, each
// padded to whole u32 words, see src/gpu/quant.rs): word 0 holds the f16 scale d (low half)
// and, for Q4_1, the f16 minimum m (high half); Q5_0's qh is word 1; the quant bytes follow
// in file order.
// unpack2x16float is core WGSL, so nothing here needs `shader-f16`.

override WDTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8_0, 4 q4_0, 5 q4_1, 6 q5_0, 7 q4_k, 8 q6_k

// `i` is the element's flat index in the piece: row * cols + col.
fn load_w(i: u32) -> f32 {
    if (WDTYPE == 0u) {
        return bitcast<f32>(w[i]);
    }
    if (WDTYPE <= 2u) {
        let bits = (w[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
        if (WDTYPE == 1u) {
            return unpack2x16float(bits).x;
        }
        return bitcast<f32>(bits << 16u);
    }
    if (WDTYPE == 8u) {
        // Q6_K, 53 words per 256: d, ql (words 1..33), qh (33..49), i8 scales (49..53). Element
        // 128h + 32k + l: low 4 bits nibble k / 2 of ql byte 64h + 32(k % 2) + l, top 2 bits
        // 2k..2k+1 of qh byte 32h + l; scale e / 16.
        let base = (i / 256u) * 53u;
        let e = i % 256u;
        let h = e / 128u;
        let k = (e / 32u) % 4u;
        let l = e % 32u;
        let lb = 64u * h + 32u * (k % 2u) + l;
        let low = (w[base + 1u + lb / 4u] >> (8u * (lb % 4u) + 4u * (k / 2u))) & 15u;
        let hb = 32u * h + l;
        let high = (w[base + 33u + hb / 4u] >> (8u * (hb % 4u) + 2u * k)) & 3u;
        let s = e / 16u;
        let sc = bitcast<i32>(w[base + 49u + s / 4u] << (24u - 8u * (s % 4u))) >> 24u;
        let d = unpack2x16float(w[base]).x;
        return (d * f32(sc)) * f32(i32(low | (high << 4u)) - 32);
    }
    if (WDTYPE == 7u) {
        // Q4_K, 36 words per 256 (see weight_blocks.wgsl): d | dmin, 12 scale bytes, then
        // element 64c + 32s + l is nibble s of quant byte 32c + l.
        let base = (i / 256u) * 36u;
        let e = i % 256u;
        let g = e / 32u;
        let qbyte = 32u * (g / 2u) + e % 32u;
        let qi = (w[base + 4u + qbyte / 4u] >> (8u * (qbyte % 4u) + 4u * (g % 2u))) & 0xfu;
        let dm = unpack2x16float(w[base]);
        let sb = g % 4u;
        let s0 = (w[base + 1u] >> (8u * sb)) & 0xffu;  // scale byte sb
        let s4 = (w[base + 2u] >> (8u * sb)) & 0xffu;  // byte sb + 4
        var sc = s0 & 63u;
        var mn = s4 & 63u;
        if (g >= 4u) {
            let s8 = (w[base + 3u] >> (8u * sb)) & 0xffu; // byte sb + 8 = g + 4
            sc = (s8 & 15u) | ((s0 >> 6u) << 4u);
            mn = (s8 >> 4u) | ((s4 >> 6u) << 4u);
        }
        return (dm.x * f32(sc)) * f32(qi) - dm.y * f32(mn);
    }
    let b = i / 32u;
    let j = i % 32u;
    if (WDTYPE == 3u) {
        // Q8_0, 9 words a block: move byte j%4 to the top, then shift back with sign.
        let word = w[b * 9u + 1u + j / 4u];
        let q = bitcast<i32>(word << (24u - 8u * (j % 4u))) >> 24u;
        return unpack2x16float(w[b * 9u]).x * f32(q);
    }
    // Q4_0 / Q4_1, 5 words a block (Q5_0: 6, qh in word 1): byte j%16 holds element j (low
    // nibble) and j+16 (high).
    let q5 = WDTYPE == 6u;
    let base = b * select(5u, 6u, q5);
    let jj = j & 15u;
    let byte = (w[base + select(1u, 2u, q5) + jj / 4u] >> (8u * (jj % 4u))) & 0xffu;
    var qi = (byte >> (4u * (j / 16u))) & 0xfu;
    if (q5) {
        qi |= ((w[base + 1u] >> j) & 1u) << 4u;
    }
    let q = f32(qi);
    let s = unpack2x16float(w[base]);
    if (WDTYPE == 4u) {
        return s.x * (q - 8.0);
    }
    if (q5) {
        return s.x * (q - 16.0);
    }
    return s.x * q + s.y;
}
