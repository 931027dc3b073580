// The one-row decode products' block arithmetic (prepended to shaders/matvec.wgsl at pipeline
// build, after matmul_common.wgsl; it uses matvec.wgsl's MV_N, mv_setup, mv_blocks and
// mv_store): the block sums of the types whose scales factor out, for matvec_q / _q_shared,
// and `matvec_q_one_v4`, which reads Q8_0 / Q4_0 / Q4_1 blocks a vec4 at a time.

// One row, block kb, for the types whose scales factor out of the block sums (as matmul.wgsl's
// q_sums): Σ x·(c.x q + c.y) = c.x·Σ x q + c.y·Σ x, so per element only the integer decode
// and one FMA; the scale and offset come once per block and column (Q6_K / Q3_K: a scale per
// half of 16, no offset). Invocation j holds vec4 j of the block's x (`mine`).
fn mv_q_sums_block(ln: Lane, acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>, kb: u32,
                   mine: vec4<f32>) {
    let xl = array<vec4<f32>, 4>(from_lane8_const(ln, mine, 0u), from_lane8_const(ln, mine, 1u),
                                 from_lane8_const(ln, mine, 2u), from_lane8_const(ln, mine, 3u));
    let xh = array<vec4<f32>, 4>(from_lane8_const(ln, mine, 4u), from_lane8_const(ln, mine, 5u),
                                 from_lane8_const(ln, mine, 6u), from_lane8_const(ln, mine, 7u));
    mv_q_sums_cols(acc, b0, kb, xl, xh);
}
// The same with the block's x read by every invocation (no subgroups).
fn mv_q_sums_block_own(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>, kb: u32) {
    let i = kb * 8u;
    let xl = array<vec4<f32>, 4>(xv[i], xv[i + 1u], xv[i + 2u], xv[i + 3u]);
    let xh = array<vec4<f32>, 4>(xv[i + 4u], xv[i + 5u], xv[i + 6u], xv[i + 7u]);
    mv_q_sums_cols(acc, b0, kb, xl, xh);
}
// The thread's 4 columns of block kb against the row's x (xl: k = 4i.., xh: k = 16 + 4i..).
fn mv_q_sums_cols(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>, kb: u32,
                  xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>) {
    let t = xl[0u] + xl[1u] + xl[2u] + xl[3u] + xh[0u] + xh[1u] + xh[2u] + xh[3u];
    let xsum = t.x + t.y + t.z + t.w;
    (*acc)[0u].x += mv_sums_col(b0[0u] + wk(kb), xl, xh, xsum);
    (*acc)[1u].x += mv_sums_col(b0[1u] + wk(kb), xl, xh, xsum);
    (*acc)[2u].x += mv_sums_col(b0[2u] + wk(kb), xl, xh, xsum);
    (*acc)[3u].x += mv_sums_col(b0[3u] + wk(kb), xl, xh, xsum);
}
// Block b of one column against the row's x, words written out (a rolled loop would index xl /
// xh dynamically: select ladders on lavapipe).
fn mv_sums_col(b: u32, xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>, xsum: f32) -> f32 {
    return mv_sums_words(q4w(b, 0u), q4w(b, 1u), q4w(b, 2u), q4w(b, 3u), q4s(b), xl, xh, xsum);
}
fn mv_sums_words(u0: vec2<u32>, u1: vec2<u32>, u2: vec2<u32>, u3: vec2<u32>, c: vec2<f32>,
                 xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>, xsum: f32) -> f32 {
    let lo = xl[0u] * q4_int(u0, false) + xl[1u] * q4_int(u1, false) + xl[2u] * q4_int(u2, false)
        + xl[3u] * q4_int(u3, false);
    let hi = xh[0u] * q4_int(u0, true) + xh[1u] * q4_int(u1, true) + xh[2u] * q4_int(u2, true)
        + xh[3u] * q4_int(u3, true);
    let sl = lo.x + lo.y + lo.z + lo.w;
    let sh = hi.x + hi.y + hi.z + hi.w;
    if (halves_scaled()) {
        return c.x * sl + c.y * sh;
    }
    return c.x * (sl + sh) + c.y * xsum;
}
// One row of Q8_0 read a word at a time: word i of block kb of the four columns against x's
// k = 4i..4i+3 (x), summed over the block before its scale (`q8_add_scaled`).
fn q8_word_dots(b0: array<u32, MV_N>, kb: u32, i: u32, x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(x, q8w4(wword((b0[0u] + wk(kb)) * 9u + 1u + i))), dot(x, q8w4(wword((b0[1u] + wk(kb)) * 9u + 1u + i))),
                     dot(x, q8w4(wword((b0[2u] + wk(kb)) * 9u + 1u + i))), dot(x, q8w4(wword((b0[3u] + wk(kb)) * 9u + 1u + i))));
}
// The block's scale once per column, on its sum sd.
fn q8_add_scaled(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>, kb: u32, sd: vec4<f32>) {
    let d = mv_q8_scales(b0, kb);
    (*acc)[0u].x += sd.x * d[0u];
    (*acc)[1u].x += sd.y * d[1u];
    (*acc)[2u].x += sd.z * d[2u];
    (*acc)[3u].x += sd.w * d[3u];
}

// ---- Q8_0 / Q4_0 / Q4_1 blocks read a vec4 at a time (w4, matmul_common.wgsl) ----
// Half weight groups read whole (a pipeline constant: Q4_0 / Q4_1 weights in groups of 8 rows,
// gpu/tensor.rs, as matmul.wgsl's GROUPED): a thread's 4 columns are 4 consecutive rows of one
// group, n0 .. n0 + 3, whose blocks at one k lie side by side, 5 vec4 loads for the 4 where
// the strided columns take 8 (lavapipe loads lane by lane).
override ONE_GROUPED: bool = false;
// The thread's first column and the step between its columns.
fn one_col0(ln: Lane) -> u32 {
    let n0 = mv_setup(ln);
    return select(n0, n0 - ln.lid + ln.lid * MV_N, ONE_GROUPED);
}
fn one_col_step() -> u32 {
    return select(MV_WG, 1u, ONE_GROUPED);
}
// ONE_GROUPED: the 4 blocks from b (a multiple of 4: a group's first or fifth row) against x.
fn one_v4_group(acc: ptr<function, array<vec4<f32>, 8>>, b: u32, xl: array<vec4<f32>, 4>,
                xh: array<vec4<f32>, 4>) {
    let t = xl[0u] + xl[1u] + xl[2u] + xl[3u] + xh[0u] + xh[1u] + xh[2u] + xh[3u];
    let xsum = t.x + t.y + t.z + t.w;
    let g = q4_quad(b);
    (*acc)[0u].x += one_q4_block(g[0u], xl, xh, xsum);
    (*acc)[1u].x += one_q4_block(g[1u], xl, xh, xsum);
    (*acc)[2u].x += one_q4_block(g[2u], xl, xh, xsum);
    (*acc)[3u].x += one_q4_block(g[3u], xl, xh, xsum);
}
fn one_q4_block(k: Q4Block, xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>, xsum: f32) -> f32 {
    return mv_sums_words(vec2<u32>(k.u.x, k.u2.x), vec2<u32>(k.u.y, k.u2.y), vec2<u32>(k.u.z, k.u2.z),
                         vec2<u32>(k.u.w, k.u2.w), k.c, xl, xh, xsum);
}
// Block b of one column against the row's x (xl: k = 4i.., xh: k = 16 + 4i..).
fn one_v4_col(b: u32, xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>, xsum: f32) -> f32 {
    if (WDTYPE == 3u) {
        let k = q8_block_v4(b);
        let sd = dot(xl[0u], q8w4(k.lo.x)) + dot(xl[1u], q8w4(k.lo.y)) + dot(xl[2u], q8w4(k.lo.z))
            + dot(xl[3u], q8w4(k.lo.w)) + dot(xh[0u], q8w4(k.hi.x)) + dot(xh[1u], q8w4(k.hi.y))
            + dot(xh[2u], q8w4(k.hi.z)) + dot(xh[3u], q8w4(k.hi.w));
        return sd * k.d;
    }
    return one_q4_block(q4x_block_v4(b), xl, xh, xsum);
}
fn one_v4_cols(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>, kb: u32,
               xl: array<vec4<f32>, 4>, xh: array<vec4<f32>, 4>) {
    if (ONE_GROUPED) {
        one_v4_group(acc, b0[0u] + wk(kb), xl, xh);
        return;
    }
    var xsum = 0.0;
    if (WDTYPE != 3u) {
        let t = xl[0u] + xl[1u] + xl[2u] + xl[3u] + xh[0u] + xh[1u] + xh[2u] + xh[3u];
        xsum = t.x + t.y + t.z + t.w;
    }
    (*acc)[0u].x += one_v4_col(b0[0u] + wk(kb), xl, xh, xsum);
    (*acc)[1u].x += one_v4_col(b0[1u] + wk(kb), xl, xh, xsum);
    (*acc)[2u].x += one_v4_col(b0[2u] + wk(kb), xl, xh, xsum);
    (*acc)[3u].x += one_v4_col(b0[3u] + wk(kb), xl, xh, xsum);
}
@compute @workgroup_size(16)
fn matvec_q_one_v4(ln: Lane) {
    let n0 = one_col0(ln);
    let c = one_col_step();
    let b0 = array<u32, MV_N>(row_block(n0), row_block(n0 + c), row_block(n0 + 2u * c), row_block(n0 + 3u * c));
    var acc: array<vec4<f32>, 8>;
    let nb = q.k >> 5u;
    if (lanes8(ln)) {
        let j = ln.lid % 8u;
        for (var kb = 0u; kb < nb; kb++) {
            let mine = xv[kb * 8u + j];
            let xl = array<vec4<f32>, 4>(from_lane8_const(ln, mine, 0u), from_lane8_const(ln, mine, 1u),
                                         from_lane8_const(ln, mine, 2u), from_lane8_const(ln, mine, 3u));
            let xh = array<vec4<f32>, 4>(from_lane8_const(ln, mine, 4u), from_lane8_const(ln, mine, 5u),
                                         from_lane8_const(ln, mine, 6u), from_lane8_const(ln, mine, 7u));
            one_v4_cols(&acc, b0, kb, xl, xh);
        }
    } else {
        for (var kb = 0u; kb < nb; kb++) {
            let i = kb * 8u;
            let xl = array<vec4<f32>, 4>(xv[i], xv[i + 1u], xv[i + 2u], xv[i + 3u]);
            let xh = array<vec4<f32>, 4>(xv[i + 4u], xv[i + 5u], xv[i + 6u], xv[i + 7u]);
            one_v4_cols(&acc, b0, kb, xl, xh);
        }
    }
    mv_store_at(acc, n0, c);
}
