// Decode products: y = x W^T (+ bias) for at most a few rows of x, as in matmul.wgsl (which
// describes the product); `Params`, the bindings and the row helpers are in matmul_common.wgsl,
// the block decoders in weight_blocks.wgsl (both prepended at build). The register-blocking
// notes in matmul.wgsl apply here too.

// At most MATVEC_MAX_ROWS = 8 rows (decode, and batched decode of a group): each thread MV_N =
// 4 columns (strided by MV_WG) over the whole of k, so a workgroup covers MV_N * MV_WG columns
// (MATVEC_COLS in kernels.rs). One row takes dot products; 2..4 rows one transposed group of
// four (rows clamped), 5..8 two. Small workgroups keep both cores busy on narrow products.
const MV_N: u32 = 4u;
const MV_WG: u32 = 16u; // = @workgroup_size of matvec_f / _q / _f_shared / _q_shared
const RED_WG: u32 = 64u; // reduce.wgsl / reduce_subgroup.wgsl (lanes8; matvec_general's size)

// Every decode entry point: the parameters, and the thread's first output column n0 (its
// columns are n0 + j * MV_WG); their first weight elements (float) or blocks (quantized).
fn mv_setup(ln: Lane) -> u32 {
    q = opaque_params(p, ln.wg.z);
    return (ln.wg.y * ln.nwg.x + ln.wg.x) * (MV_N * MV_WG) + ln.lid;
}
fn mv_cols(n0: u32) -> array<u32, MV_N> {
    return array<u32, MV_N>(row_elem(n0), row_elem(n0 + MV_WG), row_elem(n0 + 2u * MV_WG),
                            row_elem(n0 + 3u * MV_WG));
}
fn mv_blocks(n0: u32) -> array<u32, MV_N> {
    return array<u32, MV_N>(row_block(n0), row_block(n0 + MV_WG), row_block(n0 + 2u * MV_WG),
                            row_block(n0 + 3u * MV_WG));
}

// The loops of matvec_f (every invocation reads its own x rows).
fn matvec_f_loops(acc: ptr<function, array<vec4<f32>, 8>>, e: array<u32, MV_N>) {
    if (q.t == 1u) {
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            var u: array<vec4<u32>, MV_N>;
            u[0u] = wf_u(e[0u] + k0);
            u[1u] = wf_u(e[1u] + k0);
            u[2u] = wf_u(e[2u] + k0);
            u[3u] = wf_u(e[3u] + k0);
            let xl = xv[k0 >> 2u];
            let xh = xv[(k0 >> 2u) + 1u];
            (*acc)[0u].x += dot(xl, wf_lo(e[0u] + k0, u[0u])) + dot(xh, wf_hi(e[0u] + k0, u[0u]));
            (*acc)[1u].x += dot(xl, wf_lo(e[1u] + k0, u[1u])) + dot(xh, wf_hi(e[1u] + k0, u[1u]));
            (*acc)[2u].x += dot(xl, wf_lo(e[2u] + k0, u[2u])) + dot(xh, wf_hi(e[2u] + k0, u[2u]));
            (*acc)[3u].x += dot(xl, wf_lo(e[3u] + k0, u[3u])) + dot(xh, wf_hi(e[3u] + k0, u[3u]));
        }
    } else if (q.t <= 4u) {
        let r = rows4(0u);
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            var u: array<vec4<u32>, MV_N>;
            u[0u] = wf_u(e[0u] + k0);
            u[1u] = wf_u(e[1u] + k0);
            u[2u] = wf_u(e[2u] + k0);
            u[3u] = wf_u(e[3u] + k0);
            let xl = xt4(r, k0);
            let xh = xt4(r, k0 + 4u);
            (*acc)[0u] += xl * wf_lo(e[0u] + k0, u[0u]) + xh * wf_hi(e[0u] + k0, u[0u]);
            (*acc)[1u] += xl * wf_lo(e[1u] + k0, u[1u]) + xh * wf_hi(e[1u] + k0, u[1u]);
            (*acc)[2u] += xl * wf_lo(e[2u] + k0, u[2u]) + xh * wf_hi(e[2u] + k0, u[2u]);
            (*acc)[3u] += xl * wf_lo(e[3u] + k0, u[3u]) + xh * wf_hi(e[3u] + k0, u[3u]);
        }
    } else {
        let r0 = rows4(0u);
        let r1 = rows4(4u);
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            var u: array<vec4<u32>, MV_N>;
            var wl: array<vec4<f32>, MV_N>;
            var wh: array<vec4<f32>, MV_N>;
            {
                u[0u] = wf_u(e[0u] + k0);
                wl[0u] = wf_lo(e[0u] + k0, u[0u]);
                wh[0u] = wf_hi(e[0u] + k0, u[0u]);
            }
            {
                u[1u] = wf_u(e[1u] + k0);
                wl[1u] = wf_lo(e[1u] + k0, u[1u]);
                wh[1u] = wf_hi(e[1u] + k0, u[1u]);
            }
            {
                u[2u] = wf_u(e[2u] + k0);
                wl[2u] = wf_lo(e[2u] + k0, u[2u]);
                wh[2u] = wf_hi(e[2u] + k0, u[2u]);
            }
            {
                u[3u] = wf_u(e[3u] + k0);
                wl[3u] = wf_lo(e[3u] + k0, u[3u]);
                wh[3u] = wf_hi(e[3u] + k0, u[3u]);
            }
            let xl0 = xt4(r0, k0);
            let xh0 = xt4(r0, k0 + 4u);
            (*acc)[0u] += xl0 * wl[0u] + xh0 * wh[0u];
            (*acc)[1u] += xl0 * wl[1u] + xh0 * wh[1u];
            (*acc)[2u] += xl0 * wl[2u] + xh0 * wh[2u];
            (*acc)[3u] += xl0 * wl[3u] + xh0 * wh[3u];
            let xl1 = xt4(r1, k0);
            let xh1 = xt4(r1, k0 + 4u);
            (*acc)[MV_N + 0u] += xl1 * wl[0u] + xh1 * wh[0u];
            (*acc)[MV_N + 1u] += xl1 * wl[1u] + xh1 * wh[1u];
            (*acc)[MV_N + 2u] += xl1 * wl[2u] + xh1 * wh[2u];
            (*acc)[MV_N + 3u] += xl1 * wl[3u] + xh1 * wh[3u];
        }
    }
}

@compute @workgroup_size(16)
fn matvec_f(ln: Lane) {
    let n0 = mv_setup(ln);
    let e = mv_cols(n0);
    var acc: array<vec4<f32>, 8>; // [j]: rows 0..3, [MV_N + j]: rows 4..7
    matvec_f_loops(&acc, e);
    mv_store(acc, n0);
}

// matvec_f with the x rows shared across runs of 8 lanes (below), dispatched instead on devices
// with subgroups for 2..8 rows (one row of float weights measured no faster: two x loads
// against four weight vec4s): its own entry point, so that the shared loops' code does not
// slow {name}'s (measured on lavapipe: one-row f32 decode 20 % slower in one entry).
@compute @workgroup_size(16)
fn matvec_f_shared(ln: Lane) {
    let n0 = mv_setup(ln);
    let e = mv_cols(n0);
    var acc: array<vec4<f32>, 8>;
    if (q.t > 1u && lanes8(ln)) {
        mv_f_shared_loops(ln, &acc, e);
    } else {
        matvec_f_loops(&acc, e);
    }
    mv_store(acc, n0);
}

// The loops of matvec_q (every invocation reads its own x rows).
fn matvec_q_loops(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>) {
    let r0 = rows4(0u);
    let r1 = rows4(4u);
    // One copy of the loop per row class rather than a branch inside it: lavapipe runs both
    // sides of a branch under a lane mask.
    if (q.t == 1u) {
        for (var kb = 0u; kb < (q.k >> 5u); kb++) {
            let k0 = kb * 32u;
            if (WDTYPE == 3u) {
                var sd: vec4<f32>;
                for (var i = 0u; i < 8u; i++) {
                    sd += q8_word_dots(b0, kb, i, xv[(k0 >> 2u) + i]);
                }
                q8_add_scaled(acc, b0, kb, sd);
            } else if (WDTYPE != 11u && WDTYPE != 13u && WDTYPE != 14u) {
                mv_q_sums_block_own(acc, b0, kb);
            } else {
                let c = mv_q4_scales(b0, kb);
                for (var i = 0u; i < 4u; i++) {
                    let xl = xv[(k0 >> 2u) + i];
                    let xh = xv[(k0 >> 2u) + 4u + i];
                    {
                        let u = q4w(b0[0u] + wk(kb), i);
                        (*acc)[0u].x += dot(xl, q4lo(u, c[0u])) + dot(xh, q4hi(u, c[0u]));
                    }
                    {
                        let u = q4w(b0[1u] + wk(kb), i);
                        (*acc)[1u].x += dot(xl, q4lo(u, c[1u])) + dot(xh, q4hi(u, c[1u]));
                    }
                    {
                        let u = q4w(b0[2u] + wk(kb), i);
                        (*acc)[2u].x += dot(xl, q4lo(u, c[2u])) + dot(xh, q4hi(u, c[2u]));
                    }
                    {
                        let u = q4w(b0[3u] + wk(kb), i);
                        (*acc)[3u].x += dot(xl, q4lo(u, c[3u])) + dot(xh, q4hi(u, c[3u]));
                    }
                }
            }
        }
    } else if (q.t <= 4u) {
        for (var kb = 0u; kb < (q.k >> 5u); kb++) {
            let k0 = kb * 32u;
            if (WDTYPE == 3u) {
                let d = mv_q8_scales(b0, kb);
                for (var i = 0u; i < 8u; i++) {
                    let xi = xt4(r0, k0 + 4u * i);
                    (*acc)[0u] += xi * (q8w4(wword((b0[0u] + wk(kb)) * 9u + 1u + i)) * d[0u]);
                    (*acc)[1u] += xi * (q8w4(wword((b0[1u] + wk(kb)) * 9u + 1u + i)) * d[1u]);
                    (*acc)[2u] += xi * (q8w4(wword((b0[2u] + wk(kb)) * 9u + 1u + i)) * d[2u]);
                    (*acc)[3u] += xi * (q8w4(wword((b0[3u] + wk(kb)) * 9u + 1u + i)) * d[3u]);
                }
            } else {
                let c = mv_q4_scales(b0, kb);
                for (var i = 0u; i < 4u; i++) {
                    let xl = xt4(r0, k0 + 4u * i);
                    let xh = xt4(r0, k0 + 16u + 4u * i);
                    {
                        let u = q4w(b0[0u] + wk(kb), i);
                        (*acc)[0u] += xl * q4lo(u, c[0u]) + xh * q4hi(u, c[0u]);
                    }
                    {
                        let u = q4w(b0[1u] + wk(kb), i);
                        (*acc)[1u] += xl * q4lo(u, c[1u]) + xh * q4hi(u, c[1u]);
                    }
                    {
                        let u = q4w(b0[2u] + wk(kb), i);
                        (*acc)[2u] += xl * q4lo(u, c[2u]) + xh * q4hi(u, c[2u]);
                    }
                    {
                        let u = q4w(b0[3u] + wk(kb), i);
                        (*acc)[3u] += xl * q4lo(u, c[3u]) + xh * q4hi(u, c[3u]);
                    }
                }
            }
        }
    } else {
        for (var kb = 0u; kb < (q.k >> 5u); kb++) {
            let k0 = kb * 32u;
            if (WDTYPE == 3u) {
                let d = mv_q8_scales(b0, kb);
                for (var i = 0u; i < 8u; i++) {
                    let x0 = xt4(r0, k0 + 4u * i);
                    let x1 = xt4(r1, k0 + 4u * i);
                    {
                        let wj = q8w4(wword((b0[0u] + wk(kb)) * 9u + 1u + i)) * d[0u];
                        (*acc)[0u] += x0 * wj;
                        (*acc)[MV_N + 0u] += x1 * wj;
                    }
                    {
                        let wj = q8w4(wword((b0[1u] + wk(kb)) * 9u + 1u + i)) * d[1u];
                        (*acc)[1u] += x0 * wj;
                        (*acc)[MV_N + 1u] += x1 * wj;
                    }
                    {
                        let wj = q8w4(wword((b0[2u] + wk(kb)) * 9u + 1u + i)) * d[2u];
                        (*acc)[2u] += x0 * wj;
                        (*acc)[MV_N + 2u] += x1 * wj;
                    }
                    {
                        let wj = q8w4(wword((b0[3u] + wk(kb)) * 9u + 1u + i)) * d[3u];
                        (*acc)[3u] += x0 * wj;
                        (*acc)[MV_N + 3u] += x1 * wj;
                    }
                }
            } else {
                let c = mv_q4_scales(b0, kb);
                for (var i = 0u; i < 4u; i++) {
                    var u: array<vec2<u32>, MV_N>;
                    u[0u] = q4w(b0[0u] + wk(kb), i);
                    u[1u] = q4w(b0[1u] + wk(kb), i);
                    u[2u] = q4w(b0[2u] + wk(kb), i);
                    u[3u] = q4w(b0[3u] + wk(kb), i);
                    let xl0 = xt4(r0, k0 + 4u * i);
                    let xl1 = xt4(r1, k0 + 4u * i);
                    {
                        let wj = q4lo(u[0u], c[0u]);
                        (*acc)[0u] += xl0 * wj;
                        (*acc)[MV_N + 0u] += xl1 * wj;
                    }
                    {
                        let wj = q4lo(u[1u], c[1u]);
                        (*acc)[1u] += xl0 * wj;
                        (*acc)[MV_N + 1u] += xl1 * wj;
                    }
                    {
                        let wj = q4lo(u[2u], c[2u]);
                        (*acc)[2u] += xl0 * wj;
                        (*acc)[MV_N + 2u] += xl1 * wj;
                    }
                    {
                        let wj = q4lo(u[3u], c[3u]);
                        (*acc)[3u] += xl0 * wj;
                        (*acc)[MV_N + 3u] += xl1 * wj;
                    }
                    let xh0 = xt4(r0, k0 + 16u + 4u * i);
                    let xh1 = xt4(r1, k0 + 16u + 4u * i);
                    {
                        let wj = q4hi(u[0u], c[0u]);
                        (*acc)[0u] += xh0 * wj;
                        (*acc)[MV_N + 0u] += xh1 * wj;
                    }
                    {
                        let wj = q4hi(u[1u], c[1u]);
                        (*acc)[1u] += xh0 * wj;
                        (*acc)[MV_N + 1u] += xh1 * wj;
                    }
                    {
                        let wj = q4hi(u[2u], c[2u]);
                        (*acc)[2u] += xh0 * wj;
                        (*acc)[MV_N + 2u] += xh1 * wj;
                    }
                    {
                        let wj = q4hi(u[3u], c[3u]);
                        (*acc)[3u] += xh0 * wj;
                        (*acc)[MV_N + 3u] += xh1 * wj;
                    }
                }
            }
        }
    }
}

@compute @workgroup_size(16)
fn matvec_q(ln: Lane) {
    let n0 = mv_setup(ln);
    let b0 = mv_blocks(n0);
    var acc: array<vec4<f32>, 8>; // [j]: rows 0..3, [MV_N + j]: rows 4..7
    matvec_q_loops(&acc, b0);
    mv_store(acc, n0);
}

// matvec_q with the x rows shared across runs of 8 lanes (below), dispatched instead on devices
// with subgroups: its own entry point, so that the shared loops' code does not
// slow {name}'s (measured on lavapipe: one-row f32 decode 20 % slower in one entry).
@compute @workgroup_size(16)
fn matvec_q_shared(ln: Lane) {
    let n0 = mv_setup(ln);
    let b0 = mv_blocks(n0);
    var acc: array<vec4<f32>, 8>;
    if (lanes8(ln)) {
        mv_q_shared_loops(ln, &acc, b0);
    } else {
        matvec_q_loops(&acc, b0);
    }
    mv_store(acc, n0);
}

// ---- decode with the x rows shared across runs of 8 lanes (lanes8) ----
// The loops above read every x row in every invocation: at 5..8 rows four times as many x
// vec4s as weight words. Here invocation j of a run loads row j (5..8 rows) or row j % 4, half
// j / 4 (2..4 rows), or (quantized, one row) vec4 j of the block, and the rest come by
// shuffles (xt4_shared, reduce_common.wgsl).

fn mv_f_words(e: array<u32, MV_N>, k0: u32) -> array<vec4<u32>, MV_N> {
    var u: array<vec4<u32>, MV_N>;
    u[0u] = wf_u(e[0u] + k0);
    u[1u] = wf_u(e[1u] + k0);
    u[2u] = wf_u(e[2u] + k0);
    u[3u] = wf_u(e[3u] + k0);
    return u;
}
// acc[o + j] += x · column j's k0..k0+3 (hi: k0+4..k0+7).
fn mv_f_fma(acc: ptr<function, array<vec4<f32>, 8>>, o: u32, e: array<u32, MV_N>, k0: u32,
            u: array<vec4<u32>, MV_N>, hi: bool, x: mat4x4<f32>) {
    if (hi) {
        (*acc)[o] += x * wf_hi(e[0u] + k0, u[0u]);
        (*acc)[o + 1u] += x * wf_hi(e[1u] + k0, u[1u]);
        (*acc)[o + 2u] += x * wf_hi(e[2u] + k0, u[2u]);
        (*acc)[o + 3u] += x * wf_hi(e[3u] + k0, u[3u]);
    } else {
        (*acc)[o] += x * wf_lo(e[0u] + k0, u[0u]);
        (*acc)[o + 1u] += x * wf_lo(e[1u] + k0, u[1u]);
        (*acc)[o + 2u] += x * wf_lo(e[2u] + k0, u[2u]);
        (*acc)[o + 3u] += x * wf_lo(e[3u] + k0, u[3u]);
    }
}

fn mv_f_shared_loops(ln: Lane, acc: ptr<function, array<vec4<f32>, 8>>, e: array<u32, MV_N>) {
    let j = ln.lid % 8u;
    if (q.t <= 4u) {
        let xi = row_vec4(rows4(0u), j & 3u, 0u) + (j >> 2u);
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            let mine = xv[xi + (k0 >> 2u)];
            let xl = xt4_shared(ln, mine, 0u, 1u);
            let xh = xt4_shared(ln, mine, 4u, 1u);
            let u = mv_f_words(e, k0);
            mv_f_fma(acc, 0u, e, k0, u, false, xl);
            mv_f_fma(acc, 0u, e, k0, u, true, xh);
        }
    } else {
        let xi = row_vec4(select(rows4(0u), rows4(4u), j >= 4u), j & 3u, 0u);
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            let lo = xv[xi + (k0 >> 2u)];
            let hi = xv[xi + (k0 >> 2u) + 1u];
            let u = mv_f_words(e, k0);
            mv_f_fma(acc, 0u, e, k0, u, false, xt4_shared(ln, lo, 0u, 1u));
            mv_f_fma(acc, MV_N, e, k0, u, false, xt4_shared(ln, lo, 4u, 1u));
            mv_f_fma(acc, 0u, e, k0, u, true, xt4_shared(ln, hi, 0u, 1u));
            mv_f_fma(acc, MV_N, e, k0, u, true, xt4_shared(ln, hi, 4u, 1u));
        }
    }
}

fn mv_q8_fma(acc: ptr<function, array<vec4<f32>, 8>>, o: u32, b0: array<u32, MV_N>, kb: u32,
             i: u32, d: array<f32, MV_N>, x: mat4x4<f32>) {
    (*acc)[o] += x * (q8w4(wword((b0[0u] + wk(kb)) * 9u + 1u + i)) * d[0u]);
    (*acc)[o + 1u] += x * (q8w4(wword((b0[1u] + wk(kb)) * 9u + 1u + i)) * d[1u]);
    (*acc)[o + 2u] += x * (q8w4(wword((b0[2u] + wk(kb)) * 9u + 1u + i)) * d[2u]);
    (*acc)[o + 3u] += x * (q8w4(wword((b0[3u] + wk(kb)) * 9u + 1u + i)) * d[3u]);
}
fn mv_q4_fma(acc: ptr<function, array<vec4<f32>, 8>>, o: u32, u: array<vec2<u32>, MV_N>,
             c: array<vec2<f32>, MV_N>, hi: bool, x: mat4x4<f32>) {
    if (hi) {
        (*acc)[o] += x * q4hi(u[0u], c[0u]);
        (*acc)[o + 1u] += x * q4hi(u[1u], c[1u]);
        (*acc)[o + 2u] += x * q4hi(u[2u], c[2u]);
        (*acc)[o + 3u] += x * q4hi(u[3u], c[3u]);
    } else {
        (*acc)[o] += x * q4lo(u[0u], c[0u]);
        (*acc)[o + 1u] += x * q4lo(u[1u], c[1u]);
        (*acc)[o + 2u] += x * q4lo(u[2u], c[2u]);
        (*acc)[o + 3u] += x * q4lo(u[3u], c[3u]);
    }
}

fn mv_q_shared_loops(ln: Lane, acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, MV_N>) {
    let j = ln.lid % 8u;
    let nb = q.k >> 5u;
    let two = q.t > 4u; // two groups of four rows
    let xi = row_vec4(select(rows4(0u), rows4(4u), two && j >= 4u), j & 3u, 0u);
    if (q.t == 1u) {
        // One row: invocation j holds vec4 j of the block's 32 k's.
        for (var kb = 0u; kb < nb; kb++) {
            let mine = xv[kb * 8u + j];
            if (WDTYPE == 3u) {
                var sd: vec4<f32>;
                for (var i = 0u; i < 8u; i++) {
                    sd += q8_word_dots(b0, kb, i, from_lane8(ln, mine, i));
                }
                q8_add_scaled(acc, b0, kb, sd);
            } else if (WDTYPE != 11u && WDTYPE != 13u && WDTYPE != 14u) {
                mv_q_sums_block(ln, acc, b0, kb, mine);
            } else {
                let c = mv_q4_scales(b0, kb);
                for (var i = 0u; i < 4u; i++) {
                    let xl = from_lane8(ln, mine, i);
                    let xh = from_lane8(ln, mine, 4u + i);
                    let u0 = q4w(b0[0u] + wk(kb), i);
                    let u1 = q4w(b0[1u] + wk(kb), i);
                    let u2 = q4w(b0[2u] + wk(kb), i);
                    let u3 = q4w(b0[3u] + wk(kb), i);
                    (*acc)[0u].x += dot(xl, q4lo(u0, c[0u])) + dot(xh, q4hi(u0, c[0u]));
                    (*acc)[1u].x += dot(xl, q4lo(u1, c[1u])) + dot(xh, q4hi(u1, c[1u]));
                    (*acc)[2u].x += dot(xl, q4lo(u2, c[2u])) + dot(xh, q4hi(u2, c[2u]));
                    (*acc)[3u].x += dot(xl, q4lo(u3, c[3u])) + dot(xh, q4hi(u3, c[3u]));
                }
            }
        }
    } else if (WDTYPE == 3u) {
        for (var kb = 0u; kb < nb; kb++) {
            let d = mv_q8_scales(b0, kb);
            if (two) {
                for (var i = 0u; i < 8u; i++) {
                    let mine = xv[xi + kb * 8u + i];
                    mv_q8_fma(acc, 0u, b0, kb, i, d, xt4_shared(ln, mine, 0u, 1u));
                    mv_q8_fma(acc, MV_N, b0, kb, i, d, xt4_shared(ln, mine, 4u, 1u));
                }
            } else {
                for (var i = 0u; i < 8u; i++) {
                    let mine = xv[xi + kb * 8u + i];
                    mv_q8_fma(acc, 0u, b0, kb, i, d, xt4_shared(ln, mine, 0u, 1u));
                }
            }
        }
    } else {
        for (var kb = 0u; kb < nb; kb++) {
            let c = mv_q4_scales(b0, kb);
            if (two) {
                for (var i = 0u; i < 4u; i++) {
                    let lo = xv[xi + kb * 8u + i];
                    let hi = xv[xi + kb * 8u + 4u + i];
                    var u: array<vec2<u32>, MV_N>;
                    u[0u] = q4w(b0[0u] + wk(kb), i);
                    u[1u] = q4w(b0[1u] + wk(kb), i);
                    u[2u] = q4w(b0[2u] + wk(kb), i);
                    u[3u] = q4w(b0[3u] + wk(kb), i);
                    mv_q4_fma(acc, 0u, u, c, false, xt4_shared(ln, lo, 0u, 1u));
                    mv_q4_fma(acc, MV_N, u, c, false, xt4_shared(ln, lo, 4u, 1u));
                    mv_q4_fma(acc, 0u, u, c, true, xt4_shared(ln, hi, 0u, 1u));
                    mv_q4_fma(acc, MV_N, u, c, true, xt4_shared(ln, hi, 4u, 1u));
                }
            } else {
                let half = 4u * (j >> 2u);
                for (var i = 0u; i < 4u; i++) {
                    let mine = xv[xi + kb * 8u + half + i];
                    var u: array<vec2<u32>, MV_N>;
                    u[0u] = q4w(b0[0u] + wk(kb), i);
                    u[1u] = q4w(b0[1u] + wk(kb), i);
                    u[2u] = q4w(b0[2u] + wk(kb), i);
                    u[3u] = q4w(b0[3u] + wk(kb), i);
                    mv_q4_fma(acc, 0u, u, c, false, xt4_shared(ln, mine, 0u, 1u));
                    mv_q4_fma(acc, 0u, u, c, true, xt4_shared(ln, mine, 4u, 1u));
                }
            }
        }
    }
}

// Block kb's scales of the four columns' rows b0: Q8_0's d, Q4's (d, m).
fn mv_q8_scales(b0: array<u32, MV_N>, kb: u32) -> array<f32, MV_N> {
    var d: array<f32, MV_N>;
    d[0u] = unpack2x16float(wword((b0[0u] + wk(kb)) * 9u)).x;
    d[1u] = unpack2x16float(wword((b0[1u] + wk(kb)) * 9u)).x;
    d[2u] = unpack2x16float(wword((b0[2u] + wk(kb)) * 9u)).x;
    d[3u] = unpack2x16float(wword((b0[3u] + wk(kb)) * 9u)).x;
    return d;
}
fn mv_q4_scales(b0: array<u32, MV_N>, kb: u32) -> array<vec2<f32>, MV_N> {
    var c: array<vec2<f32>, MV_N>;
    c[0u] = q4s(b0[0u] + wk(kb));
    c[1u] = q4s(b0[1u] + wk(kb));
    c[2u] = q4s(b0[2u] + wk(kb));
    c[3u] = q4s(b0[3u] + wk(kb));
    return c;
}

fn mv_store(acc: array<vec4<f32>, 8>, n0: u32) {
    mv_store_at(acc, n0, MV_WG);
}
// mv_store for columns n0 + j * step; each value with the bias and the LoRA term (`lora_dot`).
fn mv_store_at(acc: array<vec4<f32>, 8>, n0: u32, step: u32) {
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + j * step;
        if (n >= q.n) {
            break;
        }
        var b = 0.0;
        if (q.has_bias != 0u) {
            b = bias[q.b_row0 + n];
        }
        for (var t = 0u; t < q.t; t++) {
            let idx = t * q.ldy + q.n_off + n;
            var v = acc[(t >> 2u) * MV_N + j][t & 3u] + b;
            if (q.lora_r != 0u) {
                v += lora_dot(t, q.b_row0 + n);
            }
            y[idx] = stored(v, idx);
        }
    }
}

// Any k, at most MV_ROWS rows of x (decode): one workgroup per output column; its 64 threads
// stride over k, so neighbouring threads read neighbouring weights, then reduce.
const MV_ROWS: u32 = 4u;
var<workgroup> red: array<array<f32, 64>, 4>;

@compute @workgroup_size(64)
fn matvec_general(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    q = opaque_params(p, wg.z);
    let n = wg.y * nwg.x + wg.x;
    if (n >= q.n) {
        return; // uniform per workgroup
    }
    let wrow = q.w_row0 + n;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var k = lid; k < q.k; k += 64u) {
        let wv = load_w(welem(wrow, k, q.k, q.wgroup));
        for (var t = 0u; t < q.t; t++) {
            acc[t] += x[t * q.k + k] * wv;
        }
    }
    for (var t = 0u; t < MV_ROWS; t++) {
        red[t][lid] = acc[t];
    }
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var t = 0u; t < MV_ROWS; t++) {
                red[t][lid] += red[t][lid + s];
            }
        }
        workgroupBarrier();
    }
    if (lid < q.t) {
        var v = red[lid][0];
        if (q.has_bias != 0u) {
            v += bias[q.b_row0 + n];
        }
        let idx = lid * q.ldy + q.n_off + n;
        y[idx] = stored(v, idx);
    }
}

// ---- decode split over k: the GPU shape ----
// On a GPU the kernels above leave most of the chip idle at decode: a thread walks the whole of
// k for its four columns, so a 576 × 1536 product is 24 workgroups of 16 threads (measured on an
// H200: 43 µs, 13 GB/s). Here a workgroup of 64 takes SPLIT_COLS columns, SPLIT_LANES threads
// each; a column's threads take its 32-element chunks in turn (neighbouring threads read
// neighbouring chunks) and add up through workgroup memory. Above 8 rows, each group of 8 rows
// has its own workgroups (the weights then come from cache). Chosen on GPUs (kernels.rs).
const SPLIT_LANES: u32 = 16u;
const SPLIT_COLS: u32 = 4u; // RED_WG / SPLIT_LANES = MATVEC_SPLIT_COLS in kernels.rs
var<workgroup> split_red: array<vec4<f32>, 128>; // [lid]: rows t0..t0+3, [64 + lid]: t0+4..t0+7
var<private> split_t0: u32; // the workgroup's first row

// (a0, a1) += rows t0..t0+3 / t0+4..t0+7 of x at k0..k0+7 times the column's weights there.
// One row takes dot products; the branch is uniform.
fn split_fma(a0: ptr<function, vec4<f32>>, a1: ptr<function, vec4<f32>>, r0: vec4<u32>,
             r1: vec4<u32>, k0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (q.t == 1u) {
        (*a0).x += dot(xv[k0 >> 2u], lo) + dot(xv[(k0 >> 2u) + 1u], hi);
        return;
    }
    *a0 += xt4(r0, k0) * lo + xt4(r0, k0 + 4u) * hi;
    if (q.t > split_t0 + 4u) {
        *a1 += xt4(r1, k0) * lo + xt4(r1, k0 + 4u) * hi;
    }
}

// The thread's column c within the workgroup, its lane s within the column, and its output
// column n; sets split_t0. Workgroup g takes column group g % groups, row group g / groups.
fn split_setup(ln: Lane) -> vec3<u32> {
    q = opaque_params(p, ln.wg.z);
    let c = ln.lid / SPLIT_LANES;
    let g = ln.wg.y * ln.nwg.x + ln.wg.x;
    let groups = (q.n + SPLIT_COLS - 1u) / SPLIT_COLS;
    split_t0 = (g / groups) * 8u;
    return vec3<u32>(c, ln.lid % SPLIT_LANES, (g % groups) * SPLIT_COLS + c);
}

// Float weights (`wv`) and quantized ones (`w`) need their own entry points: the two views of
// binding 2 may not meet in one.
@compute @workgroup_size(64)
fn matvec_split_f(ln: Lane) {
    let csn = split_setup(ln);
    let r0 = rows4(split_t0);
    let r1 = rows4(split_t0 + 4u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    let e = row_elem(csn.z);
    for (var kb = csn.y; kb < (q.k >> 5u); kb += SPLIT_LANES) {
        for (var i = 0u; i < 4u; i++) {
            let k0 = kb * 32u + 8u * i;
            let u = wf_u(e + k0);
            split_fma(&a0, &a1, r0, r1, k0, wf_lo(e + k0, u), wf_hi(e + k0, u));
        }
    }
    split_store(ln, csn, a0, a1);
}

@compute @workgroup_size(64)
fn matvec_split_q(ln: Lane) {
    let csn = split_setup(ln);
    let r0 = rows4(split_t0);
    let r1 = rows4(split_t0 + 4u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    let b0 = row_block(csn.z);
    for (var kb = csn.y; kb < (q.k >> 5u); kb += SPLIT_LANES) {
        if (WDTYPE == 3u) {
            let d = unpack2x16float(wword((b0 + wk(kb)) * 9u)).x;
            for (var i = 0u; i < 4u; i++) {
                let word = (b0 + wk(kb)) * 9u + 1u + 2u * i;
                split_fma(&a0, &a1, r0, r1, kb * 32u + 8u * i, q8w4(wword(word)) * d, q8w4(wword(word + 1u)) * d);
            }
        } else {
            let sc = q4s(b0 + wk(kb));
            // Word i holds k = 4i..4i+3 (lo) and 4i+16..4i+19 (hi): two words make steps of 8.
            for (var i = 0u; i < 4u; i += 2u) {
                let u0 = q4w(b0 + wk(kb), i);
                let u1 = q4w(b0 + wk(kb), i + 1u);
                let k0 = kb * 32u + 4u * i;
                split_fma(&a0, &a1, r0, r1, k0, q4lo(u0, sc), q4lo(u1, sc));
                split_fma(&a0, &a1, r0, r1, k0 + 16u, q4hi(u0, sc), q4hi(u1, sc));
            }
        }
    }
    split_store(ln, csn, a0, a1);
}

// Adds up the column's SPLIT_LANES partial sums; thread s of the column stores row t0 + s.
fn split_store(ln: Lane, csn: vec3<u32>, a0: vec4<f32>, a1: vec4<f32>) {
    let s = csn.y;
    split_red[ln.lid] = a0;
    split_red[64u + ln.lid] = a1;
    workgroupBarrier();
    for (var h = SPLIT_LANES / 2u; h > 0u; h >>= 1u) {
        if (s < h) {
            split_red[ln.lid] += split_red[ln.lid + h];
            split_red[64u + ln.lid] += split_red[64u + ln.lid + h];
        }
        workgroupBarrier();
    }
    let n = csn.z;
    let t = split_t0 + s;
    if (n < q.n && s < 8u && t < q.t) {
        var v = split_red[(s >> 2u) * 64u + csn.x * SPLIT_LANES][s & 3u];
        if (q.has_bias != 0u) {
            v += bias[q.b_row0 + n];
        }
        let idx = t * q.ldy + q.n_off + n;
        y[idx] = stored(v, idx);
    }
}
