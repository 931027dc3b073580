// Input gradient of `matmul` (matmul.wgsl) for one row-piece of W:
// dx[t, k] (+)= Σ_j dy[t * ldy + dy_off + j] * W[w_row0 + j, k]   for j < n.
// `matmul_backward_input_f` / `_q` (register-blocked, below) when k % 32 == 0 and the dy rows
// read start on 16 bytes; otherwise `matmul_backward_input_general`: 16×16 tiles of dx, the dy
// and W tiles through workgroup memory as in `matmul_general`. weights.wgsl (`load_w`) and
// weight_blocks.wgsl (`q8w4`, `q4s`, ...) are prepended at build.
struct MatmulBackwardParams {
    t: u32,
    k: u32,          // columns of W and dx
    n: u32,          // weight rows (columns of dy) summed by this dispatch
    ldy: u32,        // row stride of dy
    dy_off: u32,     // column of dy that pairs with weight row w_row0
    w_row0: u32,     // first weight row (within this piece)
    accumulate: u32, // 1: add into dx
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> pb: MatmulBackwardParams;
// The `opaque_params` trick of matmul_common.wgsl (keeps lavapipe from re-JITting per dispatch).
var<private> qb: MatmulBackwardParams;
fn opaque_backward_params(v: MatmulBackwardParams, z: u32) -> MatmulBackwardParams {
    return MatmulBackwardParams(v.t + z, v.k + z, v.n + z, v.ldy + z, v.dy_off + z, v.w_row0 + z,
                                v.accumulate + z, z);
}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
// binding 2: the weight piece `w`, read through `load_w`
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// dy and W tiles of `matmul_backward_input_general`, as in `matmul_general`.
const TILE: u32 = 16u;
var<workgroup> xs: array<array<f32, 16>, 16>;
var<workgroup> ws: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_backward_input_general(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    qb = opaque_backward_params(pb, wg.z);
    let k = wg.x * TILE + lid.x;
    let t = wg.y * TILE + lid.y;
    var acc = 0.0;
    for (var j0 = 0u; j0 < qb.n; j0 += TILE) {
        // dy tile: row t, column j0+lx.  W tile: row j0+ly, column k (both read along rows).
        let jy = j0 + lid.x;
        xs[lid.y][lid.x] = select(0.0, dy[t * qb.ldy + qb.dy_off + jy], t < qb.t && jy < qb.n);
        let wj = j0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, load_w((qb.w_row0 + wj) * qb.k + k), wj < qb.n && k < qb.k);
        workgroupBarrier();
        for (var j = 0u; j < TILE; j++) {
            acc += xs[lid.y][j] * ws[j][lid.x];
        }
        workgroupBarrier();
    }
    if (t < qb.t && k < qb.k) {
        let idx = t * qb.k + k;
        if (qb.accumulate != 0u) {
            acc += dx[idx];
        }
        dx[idx] = acc;
    }
}

// Register-blocked input gradient for k % 32 == 0 and dy rows on 16 bytes (ldy and dy_off
// multiples of 4; `Kernel::MatmulBackwardInput`, the 16×16 kernel above otherwise). A 64-thread
// workgroup computes 32 rows × 64 columns of dx; each thread 4 rows × one "octet" of 8 columns
// of a 32-column block: k = 8o..8o+7, or for Q4 the columns of quant word o (4o..4o+3 and
// 16+4o..16+4o+3). Per 4 weight rows j: 4 vec4 loads of dy and one octet of each weight row.
@group(0) @binding(1) var<storage, read> dyv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wv: array<vec4<u32>>;

// Column m (0..8) of octet o in a 32-column block.
fn octet_col(o: u32, m: u32) -> u32 {
    if (WDTYPE >= 4u) {
        return 4u * o + m + 12u * (m >> 2u);
    }
    return 8u * o + m;
}

// Octet o of block kb of weight row `row` (within the piece): columns octet_col(o, 0..8).
fn wb_f(row: u32, kb: u32, o: u32) -> mat2x4<f32> {
    let e = row * qb.k + kb * 32u + 8u * o;
    if (WDTYPE == 0u) {
        return mat2x4<f32>(bitcast<vec4<f32>>(wv[e >> 2u]), bitcast<vec4<f32>>(wv[(e >> 2u) + 1u]));
    }
    let u = wv[e >> 3u];
    if (WDTYPE == 1u) {
        return mat2x4<f32>(vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)),
                           vec4<f32>(unpack2x16float(u.z), unpack2x16float(u.w)));
    }
    return mat2x4<f32>(
        bitcast<vec4<f32>>(vec4<u32>(u.x << 16u, u.x & 0xffff0000u, u.y << 16u, u.y & 0xffff0000u)),
        bitcast<vec4<f32>>(vec4<u32>(u.z << 16u, u.z & 0xffff0000u, u.w << 16u, u.w & 0xffff0000u)));
}
fn wb_q(row: u32, kb: u32, o: u32) -> mat2x4<f32> {
    let b = row * (qb.k >> 5u) + kb;
    if (WDTYPE == 3u) {
        let base = b * 9u;
        let d = unpack2x16float(w[base]).x;
        return mat2x4<f32>(q8w4(w[base + 1u + 2u * o]) * d, q8w4(w[base + 2u + 2u * o]) * d);
    }
    let c = q4s(b);
    let u = q4w(b, o);
    return mat2x4<f32>(q4lo(u, c), q4hi(u, c));
}

// dy[r][j0..j0+3] for the four rows r (clamped), transposed: column jj holds weight row j0 + jj
// for the four rows, zero past n.
fn dyt4(r: vec4<u32>, j0: u32) -> mat4x4<f32> {
    let live = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(qb.n);
    let c = (qb.dy_off + j0) >> 2u;
    let l = qb.ldy >> 2u;
    let z = vec4<f32>(0.0);
    return transpose(mat4x4<f32>(select(z, dyv[r.x * l + c], live), select(z, dyv[r.y * l + c], live),
                                 select(z, dyv[r.z * l + c], live), select(z, dyv[r.w * l + c], live)));
}

fn bwd_store(acc: array<vec4<f32>, 8>, t0: u32, kb: u32, o: u32) {
    if (kb >= (qb.k >> 5u)) {
        return;
    }
    for (var m = 0u; m < 8u; m++) {
        let col = kb * 32u + octet_col(o, m);
        for (var i = 0u; i < 4u; i++) {
            let t = t0 + i;
            if (t < qb.t) {
                let idx = t * qb.k + col;
                var v = acc[m][i];
                if (qb.accumulate != 0u) {
                    v += dx[idx];
                }
                dx[idx] = v;
            }
        }
    }
}

// acc[m] += dt[jj] * w[m] for the octet's 8 columns (w = weight row j0 + jj).
const RED_WG: u32 = 64u; // reduce.wgsl / reduce_subgroup.wgsl (for lanes8), prepended at build

fn bwd_fma(acc: ptr<function, array<vec4<f32>, 8>>, d: vec4<f32>, wo: mat2x4<f32>) {
    (*acc)[0] += d * wo[0].x;
    (*acc)[1] += d * wo[0].y;
    (*acc)[2] += d * wo[0].z;
    (*acc)[3] += d * wo[0].w;
    (*acc)[4] += d * wo[1].x;
    (*acc)[5] += d * wo[1].y;
    (*acc)[6] += d * wo[1].z;
    (*acc)[7] += d * wo[1].w;
}

// dy rows r[i] at columns j0..j0+3 as one vec4, 0 past n (dyt4's rows).
fn dy_vec4(r: vec4<u32>, i: u32, j0: u32) -> vec4<f32> {
    let live = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(qb.n);
    return select(vec4<f32>(0.0), dyv[r[i] * (qb.ldy >> 2u) + ((qb.dy_off + j0) >> 2u)], live);
}

// 4 dy rows × 8 outputs a thread, over all n; the dy rows come from memory or, where a run of
// 8 invocations can share them (lanes8), from invocations j % 4 (each loads row j % 4: one
// load instead of four). The two entry points differ only in the weight reads (wb_f reads the
// piece as vec4s, wb_q as words: one entry point may not use both views of the binding).
struct BackwardThread {
    kb: u32,
    o: u32,
    t0: u32,
    oc: u32,
    r: vec4<u32>,
    last: u32,
}

fn backward_thread(ln: Lane) -> BackwardThread {
    qb = opaque_backward_params(pb, ln.wg.z);
    let oc = ln.wg.x * 8u + ln.lid % 8u;
    let t0 = ln.wg.y * 32u + (ln.lid / 8u) * 4u;
    return BackwardThread(min(oc >> 2u, (qb.k >> 5u) - 1u), oc & 3u, t0, oc,
                          min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(qb.t - 1u)),
                          qb.w_row0 + qb.n - 1u);
}

fn step_f(acc: ptr<function, array<vec4<f32>, 8>>, d: mat4x4<f32>, j0: u32, h: BackwardThread) {
    let row = qb.w_row0 + j0;
    bwd_fma(acc, d[0], wb_f(row, h.kb, h.o));
    bwd_fma(acc, d[1], wb_f(min(row + 1u, h.last), h.kb, h.o));
    bwd_fma(acc, d[2], wb_f(min(row + 2u, h.last), h.kb, h.o));
    bwd_fma(acc, d[3], wb_f(min(row + 3u, h.last), h.kb, h.o));
}

fn step_q(acc: ptr<function, array<vec4<f32>, 8>>, d: mat4x4<f32>, j0: u32, h: BackwardThread) {
    let row = qb.w_row0 + j0;
    bwd_fma(acc, d[0], wb_q(row, h.kb, h.o));
    bwd_fma(acc, d[1], wb_q(min(row + 1u, h.last), h.kb, h.o));
    bwd_fma(acc, d[2], wb_q(min(row + 2u, h.last), h.kb, h.o));
    bwd_fma(acc, d[3], wb_q(min(row + 3u, h.last), h.kb, h.o));
}

@compute @workgroup_size(64)
fn matmul_backward_input_f(ln: Lane) {
    let h = backward_thread(ln);
    var acc: array<vec4<f32>, 8>;
    if (lanes8(ln)) {
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            step_f(&acc, xt4_shared(ln, dy_vec4(h.r, ln.lid & 3u, j0), 0u, 1u), j0, h);
        }
    } else {
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            step_f(&acc, dyt4(h.r, j0), j0, h);
        }
    }
    bwd_store(acc, h.t0, h.oc >> 2u, h.o);
}

@compute @workgroup_size(64)
fn matmul_backward_input_q(ln: Lane) {
    let h = backward_thread(ln);
    var acc: array<vec4<f32>, 8>;
    if (lanes8(ln)) {
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            step_q(&acc, xt4_shared(ln, dy_vec4(h.r, ln.lid & 3u, j0), 0u, 1u), j0, h);
        }
    } else {
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            step_q(&acc, dyt4(h.r, j0), j0, h);
        }
    }
    bwd_store(acc, h.t0, h.oc >> 2u, h.o);
}

// ---- `quant::scales_factor_out` types (value c·q + o per 32-element block, Q6_K and Q3_K c·q
// per 16; matmul.wgsl's matmul_q_sums): Σ_j dy_j (c_j q_j + o_j) = Σ_j (dy_j c_j) q_j +
// Σ_j dy_j o_j, and the second sum is the same for all 32 columns of a block. A thread keeps 8 dy rows × one octet (64
// sums, plus the 8 rows' offset sums): per weight row the integer decode of 8 quants serves 8
// rows (4 in matmul_backward_input_q) and no per-element scale multiply is left. 64 threads:
// 64 rows × 64 columns (MATMUL_SUMS_TILE_T).

// acc[m] += (da, dc) · q[m] for the octet's 8 columns; da / dc: rows 0..3 / 4..7, scaled (dl
// for the columns of lo, dh for those of hi: they differ for Q6_K / Q3_K).
fn bwd_fma8(acc: ptr<function, array<mat2x4<f32>, 8>>, dl: mat2x4<f32>, dh: mat2x4<f32>,
            lo: vec4<f32>, hi: vec4<f32>) {
    (*acc)[0] += dl * lo.x;
    (*acc)[1] += dl * lo.y;
    (*acc)[2] += dl * lo.z;
    (*acc)[3] += dl * lo.w;
    (*acc)[4] += dh * hi.x;
    (*acc)[5] += dh * hi.y;
    (*acc)[6] += dh * hi.z;
    (*acc)[7] += dh * hi.w;
}

// Weight row `row`'s block kb, octet o, against dy d (rows 0..3, 4..7) of that weight row.
fn step_sums(acc: ptr<function, array<mat2x4<f32>, 8>>, off: ptr<function, mat2x4<f32>>,
             d: mat2x4<f32>, row: u32, kb: u32, o: u32) {
    let b = row * (qb.k >> 5u) + kb;
    if (WDTYPE == 3u) {
        let base = b * 9u;
        let ds = d * unpack2x16float(w[base]).x;
        bwd_fma8(acc, ds, ds, q8w4(w[base + 1u + 2u * o]), q8w4(w[base + 2u + 2u * o]));
        return;
    }
    let c = q4s(b);
    let u = q4w(b, o);
    if (halves_scaled()) {
        // Q6_K / Q3_K: the octet's lo columns (k < 16) take c.x, its hi ones c.y; no offset.
        bwd_fma8(acc, d * c.x, d * c.y, q4_int(u, false), q4_int(u, true));
        return;
    }
    *off += d * c.y;
    let dc = d * c.x;
    bwd_fma8(acc, dc, dc, q4_int(u, false), q4_int(u, true));
}

// Four weight rows j0..j0+3: column jj of da / dc holds weight row j0 + jj's dy for rows
// 0..3 / 4..7.
fn steps_sums(acc: ptr<function, array<mat2x4<f32>, 8>>, off: ptr<function, mat2x4<f32>>,
              da: mat4x4<f32>, dc: mat4x4<f32>, j0: u32, h: BackwardThread) {
    let row = qb.w_row0 + j0;
    step_sums(acc, off, mat2x4<f32>(da[0], dc[0]), row, h.kb, h.o);
    step_sums(acc, off, mat2x4<f32>(da[1], dc[1]), min(row + 1u, h.last), h.kb, h.o);
    step_sums(acc, off, mat2x4<f32>(da[2], dc[2]), min(row + 2u, h.last), h.kb, h.o);
    step_sums(acc, off, mat2x4<f32>(da[3], dc[3]), min(row + 3u, h.last), h.kb, h.o);
}

@compute @workgroup_size(64)
fn matmul_backward_input_q_sums(ln: Lane) {
    qb = opaque_backward_params(pb, ln.wg.z);
    let oc = ln.wg.x * 8u + ln.lid % 8u;
    let t0 = ln.wg.y * 64u + (ln.lid / 8u) * 8u;
    if (t0 >= qb.t) {
        return; // the whole run of 8 (rows past the last tile's end): skips the work
    }
    let last_t = vec4<u32>(qb.t - 1u);
    let ra = min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), last_t);
    let rc = min(vec4<u32>(t0) + vec4<u32>(4u, 5u, 6u, 7u), last_t);
    let h = BackwardThread(min(oc >> 2u, (qb.k >> 5u) - 1u), oc & 3u, t0, oc, ra,
                           qb.w_row0 + qb.n - 1u);
    var acc: array<mat2x4<f32>, 8>;
    var off: mat2x4<f32>;
    if (lanes8(ln)) {
        // Invocation l of the run loads dy row l of the 8.
        let l = ln.lid & 7u;
        let r = select(rc, ra, l < 4u);
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            let mine = dy_vec4(r, l & 3u, j0);
            steps_sums(&acc, &off, xt4_shared(ln, mine, 0u, 1u), xt4_shared(ln, mine, 4u, 1u), j0, h);
        }
    } else {
        for (var j0 = 0u; j0 < qb.n; j0 += 4u) {
            steps_sums(&acc, &off, dyt4(ra, j0), dyt4(rc, j0), j0, h);
        }
    }
    var lo: array<vec4<f32>, 8>;
    var hi: array<vec4<f32>, 8>;
    for (var m = 0u; m < 8u; m++) {
        lo[m] = acc[m][0u] + off[0u];
        hi[m] = acc[m][1u] + off[1u];
    }
    bwd_store(lo, t0, oc >> 2u, h.o);
    bwd_store(hi, t0 + 4u, oc >> 2u, h.o);
}
