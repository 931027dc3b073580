// The forward products' 16-rows-a-thread form (`matmul_q_sums_v4`, `matmul_q_sums_run16_v4`,
// `matmul_q_sums_run16w_v4` in matmul.wgsl), appended to matmul.wgsl as one module
// (gpu/pipeline.rs): it uses that file's XBlock, x_block*, lora_block8, store_rows8 and RB_*
// constants.

// ---- q_sums with 16 rows a thread, for the blocks read as vec4s (Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K). On lavapipe a load from a buffer is a loop over the 8 lanes (an exec-mask
// test, a bounds check and a branch per lane), and at 8 rows those loops, not the FMAs, took
// about half the time (perf on the JIT code, Zen 4): a block's two vec4 loads now serve 16
// rows. Measured on lavapipe (bench --matmul, Q4_1 k 576 n 1536): 50 -> 59 GFLOP/s.
// Rows 0..15 in quads a, c, e, g (XBlocks, on the stack on CPU devices).
struct X16 {
    a: XBlock,
    c: XBlock,
    e: XBlock,
    g: XBlock,
}
// acc + m v as four multiply-adds (lavapipe lowers fma to a multiply and an add anyway).
fn fma_mv(m: mat4x4<f32>, v: vec4<f32>, acc: vec4<f32>) -> vec4<f32> {
    return fma(m[3u], vec4<f32>(v.w), fma(m[2u], vec4<f32>(v.z), fma(m[1u], vec4<f32>(v.y), fma(m[0u], vec4<f32>(v.x), acc))));
}
// The 16 rows dotted with word i of a block (quants lo at k = 4i.., hi at 16 + 4i..) into s.
fn sums16_word(s: ptr<function, mat4x4<f32>>, u: vec2<u32>, i: u32, x: ptr<function, X16>) {
    let lo = q4_int(u, false);
    let hi = q4_int(u, true);
    (*s)[0u] = fma_mv((*x).a.m[4u + i], hi, fma_mv((*x).a.m[i], lo, (*s)[0u]));
    (*s)[1u] = fma_mv((*x).c.m[4u + i], hi, fma_mv((*x).c.m[i], lo, (*s)[1u]));
    (*s)[2u] = fma_mv((*x).e.m[4u + i], hi, fma_mv((*x).e.m[i], lo, (*s)[2u]));
    (*s)[3u] = fma_mv((*x).g.m[4u + i], hi, fma_mv((*x).g.m[i], lo, (*s)[3u]));
}
// The 16 rows dotted with the Q8_0 quants q at k = 4i..4i+3, into s.
fn q8_sums16(s: ptr<function, mat4x4<f32>>, q: vec4<f32>, i: u32, x: ptr<function, X16>) {
    (*s)[0u] = fma_mv((*x).a.m[i], q, (*s)[0u]);
    (*s)[1u] = fma_mv((*x).c.m[i], q, (*s)[1u]);
    (*s)[2u] = fma_mv((*x).e.m[i], q, (*s)[2u]);
    (*s)[3u] = fma_mv((*x).g.m[i], q, (*s)[3u]);
}
// Block b dotted with the 16 rows, added to a (column j: rows 4j..4j+3).
fn block_dot16(a: mat4x4<f32>, b: u32, x: ptr<function, X16>) -> mat4x4<f32> {
    if (WDTYPE == 3u) {
        return q8_block_dot16(a, q8_block_v4(b), x);
    }
    return q4_block_dot16(a, q4x_block_v4(b), x);
}
// Q8_0 block k dotted with the 16 rows, added to a.
fn q8_block_dot16(a: mat4x4<f32>, k: Q8Block, x: ptr<function, X16>) -> mat4x4<f32> {
    var s: mat4x4<f32>;
    q8_sums16(&s, q8w4(k.lo.x), 0u, x);
    q8_sums16(&s, q8w4(k.lo.y), 1u, x);
    q8_sums16(&s, q8w4(k.lo.z), 2u, x);
    q8_sums16(&s, q8w4(k.lo.w), 3u, x);
    q8_sums16(&s, q8w4(k.hi.x), 4u, x);
    q8_sums16(&s, q8w4(k.hi.y), 5u, x);
    q8_sums16(&s, q8w4(k.hi.z), 6u, x);
    q8_sums16(&s, q8w4(k.hi.w), 7u, x);
    let d = vec4<f32>(k.d);
    return mat4x4<f32>(fma(d, s[0u], a[0u]), fma(d, s[1u], a[1u]), fma(d, s[2u], a[2u]), fma(d, s[3u], a[3u]));
}
// Block k (a Q4Block) dotted with the 16 rows, added to a.
fn q4_block_dot16(a: mat4x4<f32>, k: Q4Block, x: ptr<function, X16>) -> mat4x4<f32> {
    var s: mat4x4<f32>;
    sums16_word(&s, vec2<u32>(k.u.x, k.u2.x), 0u, x);
    sums16_word(&s, vec2<u32>(k.u.y, k.u2.y), 1u, x);
    sums16_word(&s, vec2<u32>(k.u.z, k.u2.z), 2u, x);
    sums16_word(&s, vec2<u32>(k.u.w, k.u2.w), 3u, x);
    let c = vec4<f32>(k.c.x);
    let o = vec4<f32>(k.c.y);
    return mat4x4<f32>(fma(c, s[0u], fma(o, (*x).a.sum, a[0u])), fma(c, s[1u], fma(o, (*x).c.sum, a[1u])),
                       fma(c, s[2u], fma(o, (*x).e.sum, a[2u])), fma(c, s[3u], fma(o, (*x).g.sum, a[3u])));
}
// x as 32-bit words in a texture, XTEX_W texels (vec4s) a texture row, row-major as in the
// buffer (`Recorder::x_texture`): the run forms' lanes read their x rows from it. On lavapipe
// a load from a storage buffer is a loop over the 8 lanes while a texel fetch is vectorized
// (a throwaway kernel of vec4 loads: ~0.55× the time).
@group(0) @binding(8) var x_tex: texture_2d<u32>;
const XTEX_W: u32 = 2048u; // kernels.rs: X_TEXTURE_WIDTH
fn x_texel(i: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(textureLoad(x_tex, vec2<u32>(i % XTEX_W, i / XTEX_W), 0));
}
// x_row_block from the texture, or from the buffer (`tex`, a constant once inlined).
fn x_row_block16(xi: u32, kb: u32, tex: bool) -> array<vec4<f32>, 8> {
    if (!tex) {
        return x_row_block(xi, kb);
    }
    let i = xi + kb * 8u;
    return array<vec4<f32>, 8>(x_texel(i), x_texel(i + 1u), x_texel(i + 2u), x_texel(i + 3u), x_texel(i + 4u),
                               x_texel(i + 5u), x_texel(i + 6u), x_texel(i + 7u));
}
// `wg_rows`: rows of x a workgroup covers (16 per run of 8 lanes); `wide` (a constant, so the
// other form folds away): each thread also the 8 columns 64 on, a run 16 rows × 128 columns;
// `tex` (a constant): the lanes read x from x_tex (every entry binds one; the tiled form, a
// texture of one texel).
// Wide, each x block loaded serves twice the FMAs: on lavapipe, where x's loads (lane by lane)
// took about a quarter of the time, a Q4_1 1024 × 1536 × 1536 product ran 63 -> 72 GFLOP/s,
// 64 × 576 × 1536 55 -> 61 (k 1536 n 576: +2 %). The host takes it on devices with subgroups
// only: its JIT build is long (~7 s on lavapipe; Mesa's disk cache keeps it after), and GL's
// (llvmpipe) would hold wgpu's GL context lock past its timeout.
fn q_sums16(ln: Lane, wg_rows: u32, wide: bool, tex: bool) {
    q = opaque_params(p, ln.wg.z);
    let lid = ln.lid;
    let n0 = run_col0(ln.wg.y, lid % RB_WN, select(1u, 2u, wide && !glu()));
    let t0 = ln.wg.x * wg_rows + (lid / RB_WN) * 16u;
    if (t0 >= q.t) {
        return; // the whole run of 8 (rows past the last tile's end): skips the work
    }
    let b0 = col_blocks(n0);
    var b1 = col_blocks(n0 + RB_N * RB_WN);
    if (glu()) {
        b1 = up_blocks(b0);
    }
    var acc: array<mat4x4<f32>, 8>;
    var acc1: array<mat4x4<f32>, 8>;
    let nb = q.k >> 5u;
    if (lanes8(ln)) {
        // Invocation j of the run loads rows j and 8 + j. The branch stays outside the loop:
        // lavapipe runs both sides of a branch it cannot prove uniform, masked, and a loop
        // whose lanes are all masked off ends at once, a loop body's branch does not.
        let j = lid % RB_WN;
        let last = q.t - 1u;
        let xi = min(t0 + j, last) * (q.k >> 2u);
        let xj = min(t0 + 8u + j, last) * (q.k >> 2u);
        for (var kb = 0u; kb < nb; kb++) {
            var x: X16;
            let v = x_row_block16(xi, kb, tex);
            x.a = x_block_shared(ln, v, 0u);
            x.c = x_block_shared(ln, v, 1u);
            let v2 = x_row_block16(xj, kb, tex);
            x.e = x_block_shared(ln, v2, 0u);
            x.g = x_block_shared(ln, v2, 1u);
            if (GROUPED) {
                group_dots16(&acc, b0[0u] + wk(kb), &x);
                if (wide) {
                    group_dots16(&acc1, b1[0u] + wk(kb), &x);
                }
            } else {
                block_dots16(&acc, b0, kb, &x);
                if (wide) {
                    block_dots16(&acc1, b1, kb, &x);
                }
            }
        }
    } else {
        // Each invocation reads its rows itself, so the column sets share no loads: one after
        // the other (the wide form's code, and its JIT build, stay smaller).
        for (var cs = 0u; cs < select(1u, 2u, wide); cs++) {
            var bs = b0;
            if (cs != 0u) {
                bs = b1;
            }
            var a: array<mat4x4<f32>, 8>;
            for (var kb = 0u; kb < nb; kb++) {
                var x: X16;
                x.a = x_block(rows4(t0), kb);
                x.c = x_block(rows4(t0 + 4u), kb);
                x.e = x_block(rows4(t0 + 8u), kb);
                x.g = x_block(rows4(t0 + 12u), kb);
                block_dots16(&a, bs, kb, &x);
            }
            if (cs == 0u) {
                acc = a;
            } else {
                acc1 = a;
            }
        }
    }
    if (glu()) {
        if (q.lora_r != 0u) {
            lora_rows16(&acc, t0, n0, 0u);
            lora_rows16(&acc1, t0, n0, q.n);
        }
        acc = array<mat4x4<f32>, 8>(glu4x4(acc[0u], acc1[0u]), glu4x4(acc[1u], acc1[1u]), glu4x4(acc[2u], acc1[2u]),
                                    glu4x4(acc[3u], acc1[3u]), glu4x4(acc[4u], acc1[4u]), glu4x4(acc[5u], acc1[5u]),
                                    glu4x4(acc[6u], acc1[6u]), glu4x4(acc[7u], acc1[7u]));
    }
    store_rows16_half(acc, 0u, t0, n0);
    store_rows16_half(acc, 2u, t0 + 8u, n0);
    if (wide && !glu()) {
        store_rows16_half(acc1, 0u, t0, n0 + RB_N * RB_WN);
        store_rows16_half(acc1, 2u, t0 + 8u, n0 + RB_N * RB_WN);
    }
}
// GROUPED: block_dots16 over the thread's 8 columns, one weight group's rows, from the group's
// block b (as matmul.wgsl's group_dots_v4).
fn group_dots16(acc: ptr<function, array<mat4x4<f32>, 8>>, b: u32, x: ptr<function, X16>) {
    if (WDTYPE == 3u) {
        let lo = q8_quad(b & ~7u);
        let hi = q8_quad((b & ~7u) + 4u);
        (*acc)[0u] = q8_block_dot16((*acc)[0u], lo[0u], x);
        (*acc)[1u] = q8_block_dot16((*acc)[1u], lo[1u], x);
        (*acc)[2u] = q8_block_dot16((*acc)[2u], lo[2u], x);
        (*acc)[3u] = q8_block_dot16((*acc)[3u], lo[3u], x);
        (*acc)[4u] = q8_block_dot16((*acc)[4u], hi[0u], x);
        (*acc)[5u] = q8_block_dot16((*acc)[5u], hi[1u], x);
        (*acc)[6u] = q8_block_dot16((*acc)[6u], hi[2u], x);
        (*acc)[7u] = q8_block_dot16((*acc)[7u], hi[3u], x);
        return;
    }
    let g = group_blocks8(b);
    (*acc)[0u] = q4_block_dot16((*acc)[0u], g[0u], x);
    (*acc)[1u] = q4_block_dot16((*acc)[1u], g[1u], x);
    (*acc)[2u] = q4_block_dot16((*acc)[2u], g[2u], x);
    (*acc)[3u] = q4_block_dot16((*acc)[3u], g[3u], x);
    (*acc)[4u] = q4_block_dot16((*acc)[4u], g[4u], x);
    (*acc)[5u] = q4_block_dot16((*acc)[5u], g[5u], x);
    (*acc)[6u] = q4_block_dot16((*acc)[6u], g[6u], x);
    (*acc)[7u] = q4_block_dot16((*acc)[7u], g[7u], x);
}
// Block kb of the thread's 8 columns against the 16 rows.
fn block_dots16(acc: ptr<function, array<mat4x4<f32>, 8>>, b0: array<u32, RB_N>, kb: u32, x: ptr<function, X16>) {
    (*acc)[0u] = block_dot16((*acc)[0u], b0[0u] + wk(kb), x);
    (*acc)[1u] = block_dot16((*acc)[1u], b0[1u] + wk(kb), x);
    (*acc)[2u] = block_dot16((*acc)[2u], b0[2u] + wk(kb), x);
    (*acc)[3u] = block_dot16((*acc)[3u], b0[3u] + wk(kb), x);
    (*acc)[4u] = block_dot16((*acc)[4u], b0[4u] + wk(kb), x);
    (*acc)[5u] = block_dot16((*acc)[5u], b0[5u] + wk(kb), x);
    (*acc)[6u] = block_dot16((*acc)[6u], b0[6u] + wk(kb), x);
    (*acc)[7u] = block_dot16((*acc)[7u], b0[7u] + wk(kb), x);
}
// Rows t0..t0+7 of q_sums16's accumulators (acc[j] columns h, h + 1), stored.
fn store_rows16_half(acc: array<mat4x4<f32>, 8>, h: u32, t0: u32, n0: u32) {
    if (t0 >= q.t) {
        return;
    }
    var a8 = array<mat2x4<f32>, 8>(mat2x4<f32>(acc[0u][h], acc[0u][h + 1u]), mat2x4<f32>(acc[1u][h], acc[1u][h + 1u]),
                                   mat2x4<f32>(acc[2u][h], acc[2u][h + 1u]), mat2x4<f32>(acc[3u][h], acc[3u][h + 1u]),
                                   mat2x4<f32>(acc[4u][h], acc[4u][h + 1u]), mat2x4<f32>(acc[5u][h], acc[5u][h + 1u]),
                                   mat2x4<f32>(acc[6u][h], acc[6u][h + 1u]), mat2x4<f32>(acc[7u][h], acc[7u][h + 1u]));
    store_rows8(&a8, t0, n0);
}
