// Reading one weight element, shared by every kernel that reads weight pieces; prepended to
// those kernel files at pipeline build, after weight_buffer.wgsl or weight_texture.wgsl, whose
// `wword(i)` gives the piece's word i.
// Float types: f32, or f16 / bf16 two per u32. Quantized types (llama.cpp blocks of 32, each
// padded to whole u32 words, see src/gpu/quant.rs): word 0 holds the f16 scale d (low half)
// and, for Q4_1 / Q5_1, the f16 minimum m (high half); Q5_0's and Q5_1's qh is word 1; the
// quant bytes follow in file order. The K-quants and IQ4_XS: super-blocks of 256, layouts
// below and in src/gpu/quant.rs.
// unpack2x16float is core WGSL, so nothing here needs `shader-f16`.

override WDTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8_0, 4 q4_0, 5 q4_1, 6 q5_0, 7 q4_k, 8 q6_k,
                           // 9 q5_1, 10 q5_k, 11 q2_k, 12 q3_k, 13 iq4_nl, 14 iq4_xs

// Block kb (of 32) of weight row `row` (nb blocks a row) where the blocks of each g rows are
// stored side by side (`Tensor::group` in src/gpu/tensor.rs: 8 on CPU devices, else 1, which is
// plain row order): block kb of rows g·r .. g·r + g − 1, then kb + 1. The super-block types
// interleave whole super-blocks (wunit() = 8 blocks of 32).
fn wunit() -> u32 {
    return select(1u, 8u, WDTYPE == 7u || WDTYPE == 8u || WDTYPE == 10u || WDTYPE == 11u || WDTYPE == 12u ||
                          WDTYPE == 14u);
}
fn wblock(row: u32, kb: u32, nb: u32, g: u32) -> u32 {
    let u = wunit();
    return (row & ~(g - 1u)) * nb + (kb & ~(u - 1u)) * g + (row & (g - 1u)) * u + (kb & (u - 1u));
}
// The index `load_w` takes for element `col` of weight row `row` (k columns).
fn welem(row: u32, col: u32, k: u32, g: u32) -> u32 {
    return select(row * k + col, wblock(row, col >> 5u, k >> 5u, g) * 32u + (col & 31u), g > 1u);
}

// IQ4_NL / IQ4_XS: the values of 4-bit codes n (ggml's kvalues_iq4nl, i8s four a word, picked
// by selects rather than an indexed table).
fn iq4_values(n: vec4<u32>) -> vec4<f32> {
    let a = select(vec4<u32>(0xbfad9881u), vec4<u32>(0xf6eaddcfu), n >= vec4<u32>(4u));
    let b = select(vec4<u32>(0x26190d01u), vec4<u32>(0x71594535u), n >= vec4<u32>(12u));
    let word = select(a, b, n >= vec4<u32>(8u));
    let sh = vec4<u32>(24u) - 8u * (n & vec4<u32>(3u));
    return vec4<f32>(bitcast<vec4<i32>>(word << sh) >> vec4<u32>(24u));
}
// IQ4_XS (34 words a super-block at `base`: d | scales_h, scales_l, then 8 × 4 words of
// quants): sub-block g's scale d·(ls − 32).
fn iq4xs_scale(base: u32, g: u32) -> f32 {
    let w0 = wword(base);
    let ls = ((wword(base + 1u) >> (4u * g)) & 15u) | (((w0 >> (16u + 2u * g)) & 3u) << 4u);
    return unpack2x16float(w0).x * f32(i32(ls) - 32);
}
// Q3_K (28 words a super-block at `base`: d, hmask (words 1..9), qs (9..25), 12 scale bytes
// (25..28)): scale i (0..16) as s − 32, low 4 bits nibble i / 8 of scale byte i % 8, top 2 bits
// 2(i / 4).. of byte 8 + i % 4.
fn q3k_scale(base: u32, i: u32) -> f32 {
    let lo = (wword(base + 25u + (i % 8u) / 4u) >> (8u * (i % 4u) + 4u * (i / 8u))) & 15u;
    let hi = (wword(base + 27u) >> (8u * (i % 4u) + 2u * (i / 4u))) & 3u;
    return f32(i32(lo | (hi << 4u)) - 32);
}

// `i` is the element's flat index in the piece: row * cols + col.
fn load_w(i: u32) -> f32 {
    if (WDTYPE == 0u) {
        return bitcast<f32>(wword(i));
    }
    if (WDTYPE <= 2u) {
        let bits = (wword(i >> 1u) >> ((i & 1u) * 16u)) & 0xffffu;
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
        let low = (wword(base + 1u + lb / 4u) >> (8u * (lb % 4u) + 4u * (k / 2u))) & 15u;
        let hb = 32u * h + l;
        let high = (wword(base + 33u + hb / 4u) >> (8u * (hb % 4u) + 2u * k)) & 3u;
        let s = e / 16u;
        let sc = bitcast<i32>(wword(base + 49u + s / 4u) << (24u - 8u * (s % 4u))) >> 24u;
        let d = unpack2x16float(wword(base)).x;
        return (d * f32(sc)) * f32(i32(low | (high << 4u)) - 32);
    }
    if (WDTYPE == 7u || WDTYPE == 10u) {
        // Q4_K, 36 words per 256 (see weight_blocks.wgsl): d | dmin, 12 scale bytes, then
        // element 64c + 32s + l is nibble s of quant byte 32c + l. Q5_K, 44 words: the same with
        // 8 words of qh before the quants, bit g of qh byte l the fifth bit of 32g + l.
        let q5 = WDTYPE == 10u;
        let base = (i / 256u) * select(36u, 44u, q5);
        let e = i % 256u;
        let g = e / 32u;
        let qbyte = 32u * (g / 2u) + e % 32u;
        var qi = (wword(base + select(4u, 12u, q5) + qbyte / 4u) >> (8u * (qbyte % 4u) + 4u * (g % 2u))) & 0xfu;
        if (q5) {
            let l = e % 32u;
            qi |= ((wword(base + 4u + l / 4u) >> (8u * (l % 4u) + g)) & 1u) << 4u;
        }
        let dm = unpack2x16float(wword(base));
        let sb = g % 4u;
        let s0 = (wword(base + 1u) >> (8u * sb)) & 0xffu;  // scale byte sb
        let s4 = (wword(base + 2u) >> (8u * sb)) & 0xffu;  // byte sb + 4
        var sc = s0 & 63u;
        var mn = s4 & 63u;
        if (g >= 4u) {
            let s8 = (wword(base + 3u) >> (8u * sb)) & 0xffu; // byte sb + 8 = g + 4
            sc = (s8 & 15u) | ((s0 >> 6u) << 4u);
            mn = (s8 >> 4u) | ((s4 >> 6u) << 4u);
        }
        return (dm.x * f32(sc)) * f32(qi) - dm.y * f32(mn);
    }
    if (WDTYPE == 11u) {
        // Q2_K, 21 words per 256: 16 scale bytes (words 0..4), qs (4..20), d | dmin (20).
        // Element 128h + 32k + l: bits 2k..2k+1 of qs byte 32h + l; scale byte e / 16.
        let base = (i / 256u) * 21u;
        let e = i % 256u;
        let qb = 32u * (e / 128u) + e % 32u;
        let q = (wword(base + 4u + qb / 4u) >> (8u * (qb % 4u) + 2u * ((e / 32u) % 4u))) & 3u;
        let s = e / 16u;
        let sc = (wword(base + s / 4u) >> (8u * (s % 4u))) & 0xffu;
        let dm = unpack2x16float(wword(base + 20u));
        return (dm.x * f32(sc & 15u)) * f32(q) - dm.y * f32(sc >> 4u);
    }
    if (WDTYPE == 12u) {
        // Q3_K, 28 words per 256 (d moved to the front, see q3k_scale). Element e = 128h + 32k + l:
        // bits 2k..2k+1 of qs byte 32h + l, third bit bit e / 32 of hmask byte l.
        let base = (i / 256u) * 28u;
        let e = i % 256u;
        let l = e % 32u;
        let qb = 32u * (e / 128u) + l;
        let low = (wword(base + 9u + qb / 4u) >> (8u * (qb % 4u) + 2u * ((e / 32u) % 4u))) & 3u;
        let high = (wword(base + 1u + l / 4u) >> (8u * (l % 4u) + e / 32u)) & 1u;
        let d = unpack2x16float(wword(base)).x;
        return (d * q3k_scale(base, e / 16u)) * f32(i32(low | (high << 2u)) - 4);
    }
    if (WDTYPE == 14u) {
        // IQ4_XS, 34 words per 256: sub-block g = e / 32 as an IQ4_NL block's quants (words
        // 2 + 4g..), with its own scale.
        let base = (i / 256u) * 34u;
        let e = i % 256u;
        let g = e / 32u;
        let j = e % 32u;
        let jj = j & 15u;
        let n = (wword(base + 2u + 4u * g + jj / 4u) >> (8u * (jj % 4u) + 4u * (j / 16u))) & 0xfu;
        return iq4xs_scale(base, g) * iq4_values(vec4<u32>(n)).x;
    }
    let b = i / 32u;
    let j = i % 32u;
    if (WDTYPE == 3u) {
        // Q8_0, 9 words a block: move byte j%4 to the top, then shift back with sign.
        let word = wword(b * 9u + 1u + j / 4u);
        let q = bitcast<i32>(word << (24u - 8u * (j % 4u))) >> 24u;
        return unpack2x16float(wword(b * 9u)).x * f32(q);
    }
    // Q4_0 / Q4_1 / IQ4_NL, 5 words a block (Q5_0 / Q5_1: 6, qh in word 1): byte j%16 holds
    // element j (low nibble) and j+16 (high).
    let q5 = WDTYPE == 6u || WDTYPE == 9u;
    let base = b * select(5u, 6u, q5);
    let jj = j & 15u;
    let byte = (wword(base + select(1u, 2u, q5) + jj / 4u) >> (8u * (jj % 4u))) & 0xffu;
    var qi = (byte >> (4u * (j / 16u))) & 0xfu;
    if (q5) {
        qi |= ((wword(base + 1u) >> j) & 1u) << 4u;
    }
    let q = f32(qi);
    let s = unpack2x16float(wword(base));
    if (WDTYPE == 4u) {
        return s.x * (q - 8.0);
    }
    if (WDTYPE == 6u) {
        return s.x * (q - 16.0);
    }
    if (WDTYPE == 13u) {
        return s.x * iq4_values(vec4<u32>(qi)).x;
    }
    return s.x * q + s.y;
}
