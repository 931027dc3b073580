// The block-sum products' entry points (`matmul_q_sums` and its runs), `q_sums` and its store:
// appended to matmul.wgsl (gpu/pipeline.rs), whose block dots they use; `q_sums16` is in
// matmul_rows16.wgsl.

// A 64-thread workgroup computes a 64 × 64 tile (MATMUL_SUMS_TILE_T in kernels.rs): each
// thread 8 rows × RB_N columns strided by RB_WN.
@compute @workgroup_size(64)
fn matmul_q_sums(ln: Lane) {
    q_sums(ln, 64u, false, false);
}
// The blocks read as vec4s, 16 rows a thread (q_sums16): a run of 8 lanes covers 16 rows ×
// 64 columns, four runs the 64 × 64 tile.
@compute @workgroup_size(32)
fn matmul_q_sums_v4(ln: Lane) {
    q_sums16(ln, 64u, false);
}
// Few rows on CPU devices (decode, short prefills): one run of 8 lanes a workgroup, 8 rows ×
// 64 columns. In a 64-lane workgroup the runs past the rows still cost (measured on lavapipe:
// a lone run took 1.6× a run of a full workgroup).
@compute @workgroup_size(8)
fn matmul_q_sums_run(ln: Lane) {
    q_sums(ln, 8u, false, false);
}
@compute @workgroup_size(8)
fn matmul_q_sums_run_v4(ln: Lane) {
    q_sums(ln, 8u, true, false);
}
// 8 rows × 128 columns a workgroup (each thread 16 columns, its 8 and the 8 64 on): each x
// block loaded serves twice the FMAs, as in q_sums16's wide form.
@compute @workgroup_size(8)
fn matmul_q_sums_runw_v4(ln: Lane) {
    q_sums(ln, 8u, true, true);
}
// From 16 rows: 16 rows × 64 columns a workgroup.
@compute @workgroup_size(8)
fn matmul_q_sums_run16_v4(ln: Lane) {
    q_sums16(ln, 16u, false);
}
// 16 rows × 128 columns a workgroup (each thread 16 columns).
@compute @workgroup_size(8)
fn matmul_q_sums_run16w_v4(ln: Lane) {
    q_sums16(ln, 16u, true);
}
// `wg_rows`: rows of x a workgroup covers (8 per run of 8 lanes); `v4`: block_dot_v4; `wide` (a
// constant, so the other form folds away; with v4): also the 8 columns 64 on.
fn q_sums(ln: Lane, wg_rows: u32, v4: bool, wide: bool) {
    let s = run_sums(ln, wg_rows, v4, wide);
    if (s.t0 >= q.t) {
        return;
    }
    var acc = s.acc;
    var acc1 = s.acc1;
    if (glu()) {
        var g = array<mat2x4<f32>, 8>(glu2x4(acc[0u], acc1[0u]), glu2x4(acc[1u], acc1[1u]), glu2x4(acc[2u], acc1[2u]),
                                      glu2x4(acc[3u], acc1[3u]), glu2x4(acc[4u], acc1[4u]), glu2x4(acc[5u], acc1[5u]),
                                      glu2x4(acc[6u], acc1[6u]), glu2x4(acc[7u], acc1[7u]));
        store_rows8(&g, s.t0, s.n0);
        return;
    }
    store_rows8(&acc, s.t0, s.n0);
    if (wide) {
        store_rows8(&acc1, s.t0, s.n0 + RB_N * RB_WN);
    }
}
// A thread's run before its store: its first row and column, its 8 rows × RB_N columns (acc),
// and with `wide` or glu() its second column set (acc1). t0 past q.t: the whole run of 8 is
// past the last tile's end and skips the work (nothing else set).
struct RunSums {
    t0: u32,
    n0: u32,
    acc: array<mat2x4<f32>, 8>,
    acc1: array<mat2x4<f32>, 8>,
}
fn run_sums(ln: Lane, wg_rows: u32, v4: bool, wide: bool) -> RunSums {
    q = opaque_params(p, ln.wg.z);
    let lid = ln.lid;
    let n0 = run_col0(ln.wg.y, lid % RB_WN, select(1u, 2u, wide && !glu()));
    let t0 = ln.wg.x * wg_rows + (lid / RB_WN) * 8u;
    var out: RunSums;
    out.t0 = t0;
    out.n0 = n0;
    if (t0 >= q.t) {
        return out;
    }
    let ra = rows4(t0);
    let rc = rows4(t0 + 4u);
    let b0 = col_blocks(n0);
    var b1 = col_blocks(n0 + RB_N * RB_WN);
    if (glu()) {
        b1 = up_blocks(b0);
    }
    var acc: array<mat2x4<f32>, 8>;
    var acc1: array<mat2x4<f32>, 8>;
    let nb = q.k >> 5u;
    if (lanes8(ln)) {
        // Invocation j of the run loads row j of the 8.
        let j = lid % RB_WN;
        let xi = select(rc[j & 3u], ra[j & 3u], j < 4u) * (q.k >> 2u);
        for (var kb = 0u; kb < nb; kb++) {
            let v = x_row_block(xi, kb);
            var xa = x_block_shared(ln, v, 0u);
            var xc = x_block_shared(ln, v, 1u);
            if (GROUPED) {
                group_dots_v4(&acc, b0[0u] + wk(kb), &xa, &xc);
                if (wide) {
                    group_dots_v4(&acc1, b1[0u] + wk(kb), &xa, &xc);
                }
            } else if (v4) {
                block_dots_v4(&acc, b0, kb, &xa, &xc);
                if (wide) {
                    block_dots_v4(&acc1, b1, kb, &xa, &xc);
                }
            } else {
                block_dots(&acc, b0, kb, &xa, &xc);
            }
        }
    } else {
        // Each invocation reads its rows itself: the column sets one after the other.
        for (var cs = 0u; cs < select(1u, 2u, wide); cs++) {
            var bs = b0;
            if (cs != 0u) {
                bs = b1;
            }
            var a: array<mat2x4<f32>, 8>;
            for (var kb = 0u; kb < nb; kb++) {
                var xa = x_block(ra, kb);
                var xc = x_block(rc, kb);
                if (v4) {
                    block_dots_v4(&a, bs, kb, &xa, &xc);
                } else {
                    block_dots(&a, bs, kb, &xa, &xc);
                }
            }
            if (cs == 0u) {
                acc = a;
            } else {
                acc1 = a;
            }
        }
    }
    out.acc = acc;
    out.acc1 = acc1;
    return out;
}
// A thread's 8 rows × RB_N columns (acc[j]: column j, rows 0..3 and 4..7) with their LoRA
// term, stored.
fn store_rows8(acc: ptr<function, array<mat2x4<f32>, 8>>, t0: u32, n0: u32) {
    if (q.lora_r != 0u) {
        lora_block8(acc, t0, n0);
    }
    let a = *acc;
    let lo = array<vec4<f32>, 8>(a[0u][0u], a[1u][0u], a[2u][0u], a[3u][0u], a[4u][0u], a[5u][0u], a[6u][0u], a[7u][0u]);
    let hi = array<vec4<f32>, 8>(a[0u][1u], a[1u][1u], a[2u][1u], a[3u][1u], a[4u][1u], a[5u][1u], a[6u][1u], a[7u][1u]);
    store_block(lo, t0, n0, col_step(), false);
    store_block(hi, t0 + 4u, n0, col_step(), false);
}

// `q_sums`' LoRA term into its 8 rows × RB_N columns (col_step() apart): each rank step reads
// u's 8 rows and B's 8 columns once for 64 FMAs (`lora_col4` reads 5 values for 4).
fn lora_block8(acc: ptr<function, array<mat2x4<f32>, 8>>, t0: u32, n0: u32) {
    let r = q.lora_r;
    let ua = rows4(t0) * r;
    let uc = rows4(t0 + 4u) * r;
    let last = q.n - 1u;
    let c = col_step();
    let b0 = (q.b_row0 + min(n0, last)) * r;
    let b1 = (q.b_row0 + min(n0 + c, last)) * r;
    let b2 = (q.b_row0 + min(n0 + 2u * c, last)) * r;
    let b3 = (q.b_row0 + min(n0 + 3u * c, last)) * r;
    let b4 = (q.b_row0 + min(n0 + 4u * c, last)) * r;
    let b5 = (q.b_row0 + min(n0 + 5u * c, last)) * r;
    let b6 = (q.b_row0 + min(n0 + 6u * c, last)) * r;
    let b7 = (q.b_row0 + min(n0 + 7u * c, last)) * r;
    for (var i = 0u; i < r; i++) {
        let ul = q.lora_scale * vec4<f32>(lora_u[ua.x + i], lora_u[ua.y + i], lora_u[ua.z + i], lora_u[ua.w + i]);
        let uh = q.lora_scale * vec4<f32>(lora_u[uc.x + i], lora_u[uc.y + i], lora_u[uc.z + i], lora_u[uc.w + i]);
        (*acc)[0u] += mat2x4<f32>(ul * lora_b[b0 + i], uh * lora_b[b0 + i]);
        (*acc)[1u] += mat2x4<f32>(ul * lora_b[b1 + i], uh * lora_b[b1 + i]);
        (*acc)[2u] += mat2x4<f32>(ul * lora_b[b2 + i], uh * lora_b[b2 + i]);
        (*acc)[3u] += mat2x4<f32>(ul * lora_b[b3 + i], uh * lora_b[b3 + i]);
        (*acc)[4u] += mat2x4<f32>(ul * lora_b[b4 + i], uh * lora_b[b4 + i]);
        (*acc)[5u] += mat2x4<f32>(ul * lora_b[b5 + i], uh * lora_b[b5 + i]);
        (*acc)[6u] += mat2x4<f32>(ul * lora_b[b6 + i], uh * lora_b[b6 + i]);
        (*acc)[7u] += mat2x4<f32>(ul * lora_b[b7 + i], uh * lora_b[b7 + i]);
    }
}
