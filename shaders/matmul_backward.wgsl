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
    wgroup: u32,     // rows whose blocks are stored side by side (`wblock` in weights.wgsl)
}

@group(0) @binding(0) var<uniform> pb: MatmulBackwardParams;
// The `opaque_params` trick of matmul_common.wgsl (keeps lavapipe from re-JITting per dispatch).
var<private> qb: MatmulBackwardParams;
fn opaque_backward_params(v: MatmulBackwardParams, z: u32) -> MatmulBackwardParams {
    return MatmulBackwardParams(v.t + z, v.k + z, v.n + z, v.ldy + z, v.dy_off + z, v.w_row0 + z,
                                v.accumulate + z, v.wgroup + z);
}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
// binding 2: the weight piece, read through `load_w` (weights.wgsl)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// dy and W tiles of `matmul_backward_input_general`, as in `matmul_general`.
const TILE: u32 = 16u;
var<workgroup> xs: array<array<f32, 16>, 16>;
var<workgroup> ws: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_backward_input_general(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    qb = opaque_backward_params(pb, wg.z);
    let k = wg.y * TILE + lid.x;
    let t = wg.x * TILE + lid.y;
    var acc = 0.0;
    for (var j0 = 0u; j0 < qb.n; j0 += TILE) {
        // dy tile: row t, column j0+lx.  W tile: row j0+ly, column k (both read along rows).
        let jy = j0 + lid.x;
        xs[lid.y][lid.x] = select(0.0, dy[t * qb.ldy + qb.dy_off + jy], t < qb.t && jy < qb.n);
        let wj = j0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, load_w(welem(qb.w_row0 + wj, k, qb.k, qb.wgroup)), wj < qb.n && k < qb.k);
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
        return mat2x4<f32>(bitcast<vec4<f32>>(wvec(e >> 2u)), bitcast<vec4<f32>>(wvec((e >> 2u) + 1u)));
    }
    let u = wvec(e >> 3u);
    if (WDTYPE == 1u) {
        return mat2x4<f32>(vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)),
                           vec4<f32>(unpack2x16float(u.z), unpack2x16float(u.w)));
    }
    return mat2x4<f32>(
        bitcast<vec4<f32>>(vec4<u32>(u.x << 16u, u.x & 0xffff0000u, u.y << 16u, u.y & 0xffff0000u)),
        bitcast<vec4<f32>>(vec4<u32>(u.z << 16u, u.z & 0xffff0000u, u.w << 16u, u.w & 0xffff0000u)));
}
fn wb_q(row: u32, kb: u32, o: u32) -> mat2x4<f32> {
    let b = wblock(row, kb, qb.k >> 5u, qb.wgroup);
    if (WDTYPE == 3u) {
        let base = b * 9u;
        let d = unpack2x16float(wword(base)).x;
        return mat2x4<f32>(q8w4(wword(base + 1u + 2u * o)) * d, q8w4(wword(base + 2u + 2u * o)) * d);
    }
    let c = q4s(b);
    let u = q4w(b, o);
    return mat2x4<f32>(q4lo(u, c), q4hi(u, c));
}

// dy[r][j0..j0+3] for the four rows r (clamped), transposed: column jj holds weight row j0 + jj
// for the four rows, zero past n.
fn dyt4(r: vec4<u32>, j0: u32) -> mat4x4<f32> {
    let live = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(qb.n);
    let c = (qb.dy_off + min(j0, qb.n - 1u)) >> 2u; // as in dy_vec4
    let l = qb.ldy >> 2u;
    let z = vec4<f32>(0.0);
    return transpose(mat4x4<f32>(select(z, dyv[r.x * l + c], live), select(z, dyv[r.y * l + c], live),
                                 select(z, dyv[r.z * l + c], live), select(z, dyv[r.w * l + c], live)));
}

// dx as vec4s (rows start on 16 bytes: k % 32 == 0), for the register-blocked kernels
// (`dx` serves the general one: an entry point uses one view of the binding).
@group(0) @binding(4) var<storage, read_write> dxv: array<vec4<f32>>;

// dx rows t0..t0+3 (those inside t) at columns col..col+3 (col % 4 == 0) (+)= a, whose column m
// holds the 4 rows at col + m: one vec4 store per row instead of four scalar ones (a store is
// a per-lane loop on lavapipe).
fn bwd_store_rows(a: mat4x4<f32>, t0: u32, col: u32) {
    let r = transpose(a);
    let kq = qb.k >> 2u;
    let i = t0 * kq + (col >> 2u);
    if (qb.accumulate != 0u) {
        if (t0 < qb.t) { dxv[i] += r[0u]; }
        if (t0 + 1u < qb.t) { dxv[i + kq] += r[1u]; }
        if (t0 + 2u < qb.t) { dxv[i + 2u * kq] += r[2u]; }
        if (t0 + 3u < qb.t) { dxv[i + 3u * kq] += r[3u]; }
        return;
    }
    if (t0 < qb.t) { dxv[i] = r[0u]; }
    if (t0 + 1u < qb.t) { dxv[i + kq] = r[1u]; }
    if (t0 + 2u < qb.t) { dxv[i + 2u * kq] = r[2u]; }
    if (t0 + 3u < qb.t) { dxv[i + 3u * kq] = r[3u]; }
}

// acc[m]: rows t0..t0+3 at the octet's column m; the octet's columns are two runs of 4 on 16
// bytes (octet_col), stored a row's vec4 at a time by bwd_store_rows.
fn bwd_store(acc: array<vec4<f32>, 8>, t0: u32, kb: u32, o: u32) {
    if (kb >= (qb.k >> 5u)) {
        return;
    }
    let c = kb * 32u;
    bwd_store_rows(mat4x4<f32>(acc[0u], acc[1u], acc[2u], acc[3u]), t0, c + octet_col(o, 0u));
    bwd_store_rows(mat4x4<f32>(acc[4u], acc[5u], acc[6u], acc[7u]), t0, c + octet_col(o, 4u));
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

// dy rows r[i] at columns j0..j0+3 as one vec4, 0 past n (dyt4's rows). A j0 past n (the
// last 8-row chunk of matmul_backward_input_q_sums) reads the vec4 holding column n - 1, which
// the wrapper checked lies inside the buffer.
fn dy_vec4(r: vec4<u32>, i: u32, j0: u32) -> vec4<f32> {
    let live = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(qb.n);
    let c = (qb.dy_off + min(j0, qb.n - 1u)) >> 2u;
    return select(vec4<f32>(0.0), dyv[r[i] * (qb.ldy >> 2u) + c], live);
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
    let oc = ln.wg.y * 8u + ln.lid % 8u;
    let t0 = ln.wg.x * 32u + (ln.lid / 8u) * 4u;
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

// Eight weight rows at a time (a chunk), as matmul_q_sums goes block by block: first each row's
// scaled dy (l[jj] for the octet's lo columns, h[jj] for its hi ones; rows 0..3 / 4..7) and its
// 8 quants go to the stack, then column by column 8 sums over the chunk are built in registers
// and added to the accumulators once. The 64 accumulators do not fit in registers on lavapipe:
// updating them at every weight row (the previous form) spent a load and store per FMA.
struct SumsChunk {
    l: array<mat2x4<f32>, 8>,
    h: array<mat2x4<f32>, 8>,
    lo: array<vec4<f32>, 8>,
    hi: array<vec4<f32>, 8>,
}

// Weight row `row`'s block kb, octet o, against dy d (rows 0..3, 4..7) into chunk row jj.
fn chunk_row(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj: u32,
             d: mat2x4<f32>, row: u32, kb: u32, o: u32) {
    chunk_row_c(ch, off, jj, d, row, kb, o, block_scales(wblock(row, kb, qb.k >> 5u, qb.wgroup)));
}
// Block b's scales: q4s's, or Q8_0's d.
fn block_scales(b: u32) -> vec2<f32> {
    if (WDTYPE == 3u) {
        return vec2<f32>(unpack2x16float(wword(b * 9u)).x, 0.0);
    }
    return q4s(b);
}
// As chunk_row with the block's scales c (q4s) given.
fn chunk_row_c(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj: u32,
               d: mat2x4<f32>, row: u32, kb: u32, o: u32, c: vec2<f32>) {
    let b = wblock(row, kb, qb.k >> 5u, qb.wgroup);
    if (WDTYPE == 3u) {
        let base = b * 9u;
        (*ch).l[jj] = d * c.x;
        (*ch).lo[jj] = q8w4(wword(base + 1u + 2u * o));
        (*ch).hi[jj] = q8w4(wword(base + 2u + 2u * o));
        return;
    }
    let u = q4w(b, o);
    if (!halves_scaled()) {
        chunk_row_u(ch, off, jj, d, c, u);
        return;
    }
    // Q6_K / Q3_K: the octet's lo columns (k < 16) take c.x, its hi ones c.y; no offset.
    (*ch).lo[jj] = q4_int(u, false);
    (*ch).hi[jj] = q4_int(u, true);
    (*ch).l[jj] = d * c.x;
    (*ch).h[jj] = d * c.y;
}

// Four weight rows j0..j0+3 (clamped to the last) into chunk rows jj0..jj0+3: column jj of
// da / dc holds weight row j0 + jj's dy for rows 0..3 / 4..7.
fn chunk_rows4(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj0: u32,
               da: mat4x4<f32>, dc: mat4x4<f32>, j0: u32, h: BackwardThread) {
    let row = qb.w_row0 + j0;
    chunk_row(ch, off, jj0, mat2x4<f32>(da[0], dc[0]), min(row, h.last), h.kb, h.o);
    chunk_row(ch, off, jj0 + 1u, mat2x4<f32>(da[1], dc[1]), min(row + 1u, h.last), h.kb, h.o);
    chunk_row(ch, off, jj0 + 2u, mat2x4<f32>(da[2], dc[2]), min(row + 2u, h.last), h.kb, h.o);
    chunk_row(ch, off, jj0 + 3u, mat2x4<f32>(da[3], dc[3]), min(row + 3u, h.last), h.kb, h.o);
}

// chunk_rows4 across a run of 8 (lanes8): its invocations l hold two blocks kb (l / 4), so
// invocation l decodes the scales of weight row j0 + l % 4 in its block and the others take
// them by shuffle (one q4s per invocation per 4 weight rows instead of 4: its loads are
// per-lane loops on lavapipe, a shuffle is cheaper).
fn chunk_rows4_shared(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj0: u32,
                      da: mat4x4<f32>, dc: mat4x4<f32>, j0: u32, h: BackwardThread, ln: Lane) {
    let row = qb.w_row0 + j0;
    let l = ln.lid & 7u;
    let mine = vec4<f32>(block_scales(wblock(min(row + (l & 3u), h.last), h.kb, qb.k >> 5u, qb.wgroup)), 0.0, 0.0);
    let g = l & 4u;
    chunk_row_c(ch, off, jj0, mat2x4<f32>(da[0], dc[0]), min(row, h.last), h.kb, h.o,
                from_lane8(ln, mine, g).xy);
    chunk_row_c(ch, off, jj0 + 1u, mat2x4<f32>(da[1], dc[1]), min(row + 1u, h.last), h.kb, h.o,
                from_lane8(ln, mine, g + 1u).xy);
    chunk_row_c(ch, off, jj0 + 2u, mat2x4<f32>(da[2], dc[2]), min(row + 2u, h.last), h.kb, h.o,
                from_lane8(ln, mine, g + 2u).xy);
    chunk_row_c(ch, off, jj0 + 3u, mat2x4<f32>(da[3], dc[3]), min(row + 3u, h.last), h.kb, h.o,
                from_lane8(ln, mine, g + 3u).xy);
}

// A chunk row of the types with one scale and offset a block (not `halves_scaled`), from its
// scales c and its octet's quant word(s) u.
fn chunk_row_u(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj: u32,
               d: mat2x4<f32>, c: vec2<f32>, u: vec2<u32>) {
    (*ch).lo[jj] = q4_int(u, false);
    (*ch).hi[jj] = q4_int(u, true);
    *off += d * c.y;
    (*ch).l[jj] = d * c.x;
}

// Whether every chunk of 8 weight rows takes chunk_rows4_group: Q4_0 / Q4_1 in textures
// (weight_texture.wgsl; from a buffer, 4 word loads a vec4) in groups of 8 rows (`Tensor::group`),
// the rows whole groups from a group's first, on subgroups of 8 lanes.
fn takes_rows4_group() -> bool {
    return WEIGHT_TEXTURE && (WDTYPE == 4u || WDTYPE == 5u) && SUBGROUP8 && qb.wgroup == 8u && qb.w_row0 % 8u == 0u &&
           qb.n % 8u == 0u;
}
// Vec4 j (0..3) of slot f of the run-half's lanes, to every lane of the half: broadcasts from a
// constant lane (one extract on lavapipe, where a shuffle from a lane chosen at run time is a loop
// over the lanes), the other half's value set aside.
fn half_vec(f: vec4<u32>, j: u32, hi: bool) -> vec4<u32> {
    let v = bitcast<vec4<f32>>(f);
    return bitcast<vec4<u32>>(select(lane8_broadcast(v, j), lane8_broadcast(v, 4u + j), hi));
}
// chunk_rows4_shared for 4 rows of a group (takes_rows4_group): their blocks at kb are the 5
// vec4s from v, which the 4 lanes of each half-run (one kb) fetch one each (the fifth all) and
// share, where each lane would read 4 quant words and a scale apart (each load a per-lane loop
// on lavapipe, each texel fetch a gather: 2 instead of 5 a lane).
fn chunk_rows4_group(ch: ptr<function, SumsChunk>, off: ptr<function, mat2x4<f32>>, jj0: u32,
                     da: mat4x4<f32>, dc: mat4x4<f32>, v: u32, h: BackwardThread, ln: Lane) {
    let l = ln.lid & 7u;
    let hi = l >= 4u;
    let f = wquad(v + (l & 3u));
    let g = q4_quad_words(half_vec(f, 0u, hi), half_vec(f, 1u, hi), half_vec(f, 2u, hi), half_vec(f, 3u, hi), wquad(v + 4u));
    let o = h.o;
    chunk_row_u(ch, off, jj0, mat2x4<f32>(da[0], dc[0]), g[0u].c, vec2<u32>(word_at(g[0u].u, o), 0u));
    chunk_row_u(ch, off, jj0 + 1u, mat2x4<f32>(da[1], dc[1]), g[1u].c, vec2<u32>(word_at(g[1u].u, o), 0u));
    chunk_row_u(ch, off, jj0 + 2u, mat2x4<f32>(da[2], dc[2]), g[2u].c, vec2<u32>(word_at(g[2u].u, o), 0u));
    chunk_row_u(ch, off, jj0 + 3u, mat2x4<f32>(da[3], dc[3]), g[3u].c, vec2<u32>(word_at(g[3u].u, o), 0u));
}

// The hi columns' scaled dy (the lo columns' unless the halves have scales of their own).
fn chunk_h(ch: ptr<function, SumsChunk>, jj: u32) -> mat2x4<f32> {
    if (halves_scaled()) {
        return (*ch).h[jj];
    }
    return (*ch).l[jj];
}

// Octet columns m (lo) and 4 + m (hi): the chunk's sums, written out (a rolled loop over jj
// would index the chunk dynamically: select ladders on lavapipe).
fn chunk_col(acc: ptr<function, array<mat2x4<f32>, 8>>, ch: ptr<function, SumsChunk>, m: u32) {
    (*acc)[m] += (*ch).l[0u] * (*ch).lo[0u][m] + (*ch).l[1u] * (*ch).lo[1u][m] +
                 (*ch).l[2u] * (*ch).lo[2u][m] + (*ch).l[3u] * (*ch).lo[3u][m] +
                 (*ch).l[4u] * (*ch).lo[4u][m] + (*ch).l[5u] * (*ch).lo[5u][m] +
                 (*ch).l[6u] * (*ch).lo[6u][m] + (*ch).l[7u] * (*ch).lo[7u][m];
    (*acc)[4u + m] += chunk_h(ch, 0u) * (*ch).hi[0u][m] + chunk_h(ch, 1u) * (*ch).hi[1u][m] +
                      chunk_h(ch, 2u) * (*ch).hi[2u][m] + chunk_h(ch, 3u) * (*ch).hi[3u][m] +
                      chunk_h(ch, 4u) * (*ch).hi[4u][m] + chunk_h(ch, 5u) * (*ch).hi[5u][m] +
                      chunk_h(ch, 6u) * (*ch).hi[6u][m] + chunk_h(ch, 7u) * (*ch).hi[7u][m];
}
fn chunk_cols(acc: ptr<function, array<mat2x4<f32>, 8>>, ch: ptr<function, SumsChunk>) {
    chunk_col(acc, ch, 0u);
    chunk_col(acc, ch, 1u);
    chunk_col(acc, ch, 2u);
    chunk_col(acc, ch, 3u);
}

@compute @workgroup_size(64)
fn matmul_backward_input_q_sums(ln: Lane) {
    qb = opaque_backward_params(pb, ln.wg.z);
    let oc = ln.wg.y * 8u + ln.lid % 8u;
    let t0 = ln.wg.x * 64u + (ln.lid / 8u) * 8u;
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
    if (lanes8(ln) && takes_rows4_group()) {
        // As below, the weights' blocks fetched a vec4 a lane and shared (a separate loop: a
        // branch inside it costs the chunk's stores their speed on lavapipe).
        let l = ln.lid & 7u;
        let r = select(rc, ra, l < 4u);
        for (var j0 = 0u; j0 < qb.n; j0 += 8u) {
            var ch: SumsChunk;
            let m0 = dy_vec4(r, l & 3u, j0);
            let m1 = dy_vec4(r, l & 3u, j0 + 4u);
            // The group's blocks at kb: 10 vec4s.
            let v = (5u * wblock(qb.w_row0 + j0, h.kb, qb.k >> 5u, 8u)) >> 2u;
            chunk_rows4_group(&ch, &off, 0u, xt4_shared(ln, m0, 0u, 1u), xt4_shared(ln, m0, 4u, 1u), v, h, ln);
            chunk_rows4_group(&ch, &off, 4u, xt4_shared(ln, m1, 0u, 1u), xt4_shared(ln, m1, 4u, 1u), v + 5u, h, ln);
            chunk_cols(&acc, &ch);
        }
    } else if (lanes8(ln)) {
        // Invocation l of the run loads dy row l of the 8.
        let l = ln.lid & 7u;
        let r = select(rc, ra, l < 4u);
        for (var j0 = 0u; j0 < qb.n; j0 += 8u) {
            var ch: SumsChunk;
            let m0 = dy_vec4(r, l & 3u, j0);
            chunk_rows4_shared(&ch, &off, 0u, xt4_shared(ln, m0, 0u, 1u), xt4_shared(ln, m0, 4u, 1u), j0, h, ln);
            let m1 = dy_vec4(r, l & 3u, j0 + 4u);
            chunk_rows4_shared(&ch, &off, 4u, xt4_shared(ln, m1, 0u, 1u), xt4_shared(ln, m1, 4u, 1u), j0 + 4u, h, ln);
            chunk_cols(&acc, &ch);
        }
    } else {
        for (var j0 = 0u; j0 < qb.n; j0 += 8u) {
            var ch: SumsChunk;
            chunk_rows4(&ch, &off, 0u, dyt4(ra, j0), dyt4(rc, j0), j0, h);
            chunk_rows4(&ch, &off, 4u, dyt4(ra, j0 + 4u), dyt4(rc, j0 + 4u), j0 + 4u, h);
            chunk_cols(&acc, &ch);
        }
    }
    let kb = oc >> 2u;
    if (kb >= (qb.k >> 5u)) {
        return;
    }
    let a = off[0u];
    let c = off[1u];
    let lo = kb * 32u + octet_col(h.o, 0u);
    let hi = kb * 32u + octet_col(h.o, 4u);
    bwd_store_rows(mat4x4<f32>(acc[0u][0u] + a, acc[1u][0u] + a, acc[2u][0u] + a, acc[3u][0u] + a), t0, lo);
    bwd_store_rows(mat4x4<f32>(acc[4u][0u] + a, acc[5u][0u] + a, acc[6u][0u] + a, acc[7u][0u] + a), t0, hi);
    bwd_store_rows(mat4x4<f32>(acc[0u][1u] + c, acc[1u][1u] + c, acc[2u][1u] + c, acc[3u][1u] + c), t0 + 4u, lo);
    bwd_store_rows(mat4x4<f32>(acc[4u][1u] + c, acc[5u][1u] + c, acc[6u][1u] + c, acc[7u][1u] + c), t0 + 4u, hi);
}
