// General strided f32 product (the LoRA products and their gradients):
// C[c_off + i*ldc + j] (+)= alpha * Σ_p A[a_off + i*a_rs + p*a_cs] * B[b_off + p*b_rs + j*b_cs]
// for i < m, j < n, p < k. Strides in elements, so any operand may be read transposed.
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    ldc: u32,
    alpha: f32,
    accumulate: u32,
    wg_rows: u32, // threads along i a `gemm` / `gemm_v4` workgroup uses; 0: 64 / tj
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pg: GemmParams;
// The `opaque_params` trick of matmul_common.wgsl (keeps lavapipe from re-JITting per dispatch).
var<private> qg: GemmParams;
fn opaque_gemm_params(v: GemmParams, z: u32) -> GemmParams {
    return GemmParams(v.m + z, v.n + z, v.k + z, v.a_off + z, v.a_rs + z, v.a_cs + z, v.b_off + z,
                      v.b_rs + z, v.b_cs + z, v.c_off + z, v.ldc + z, v.alpha + f32(z),
                      v.accumulate + z, v.wg_rows + z, z, z);
}
@group(0) @binding(5) var<storage, read> ga: array<f32>;
@group(0) @binding(6) var<storage, read> gb: array<f32>;
@group(0) @binding(7) var<storage, read_write> gc: array<f32>;

// Threads along j of a `gemm` workgroup of 64 (the rest go along i), each thread 4 × 4
// outputs: enough to cover n in steps of four, at most 64, leaving at least enough threads
// along i to cover m when m is small. `Recorder::gemm` mirrors this in `gemm_groups`.
fn pow2_ceil(v: u32) -> u32 {
    return 1u << (32u - countLeadingZeros(max(v, 1u) - 1u));
}
fn gemm_threads_j(m: u32, n: u32) -> u32 {
    return gemm_threads_j_block(m, n, 4u);
}
// The same for blocks of `bs` × `bs` outputs a thread (`gemm_v4`: 8).
fn gemm_threads_j_block(m: u32, n: u32, bs: u32) -> u32 {
    let tj = min(pow2_ceil((n + bs - 1u) / bs), 64u);
    let ti = min(pow2_ceil((m + bs - 1u) / bs), 64u);
    if (ti * tj <= 64u) {
        return 64u / ti;
    }
    if (tj < 8u) {
        return tj;
    }
    if (ti < 8u) {
        return 64u / ti;
    }
    return 8u;
}

// Threads along i a workgroup uses: all the others (64 / tj) unless `wg_rows` says fewer.
fn gemm_wg_rows(tj: u32) -> u32 {
    return select(64u / tj, qg.wg_rows, qg.wg_rows != 0u);
}

// Register-blocked: each thread 4 rows × 4 columns of C, reading A and B straight from memory
// (strided, so scalar loads): 8 loads for 16 FMAs a step of p, where 16×16 tiles through
// workgroup memory took two loads per FMA (see the comment on the register-blocked weight
// kernels in matmul.wgsl).
@compute @workgroup_size(64)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    qg = opaque_gemm_params(pg, wg.z);
    let tj = gemm_threads_j(qg.m, qg.n);
    let ti = gemm_wg_rows(tj);
    if (lid / tj >= ti) {
        return; // a whole run of lanes (`gemm_groups`)
    }
    let i0 = (wg.x * ti + lid / tj) * 4u;
    let j0 = (wg.y * tj + lid % tj) * 4u;
    let ia = qg.a_off + min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(qg.m - 1u)) * qg.a_rs;
    let jb = qg.b_off + min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(qg.n - 1u)) * qg.b_cs;
    var acc: array<vec4<f32>, 4>; // [jj]: rows i0..i0+3 of column j0 + jj
    for (var pp = 0u; pp < qg.k; pp++) {
        let a = vec4<f32>(ga[ia.x + pp * qg.a_cs], ga[ia.y + pp * qg.a_cs], ga[ia.z + pp * qg.a_cs],
                          ga[ia.w + pp * qg.a_cs]);
        let pb_ = pp * qg.b_rs;
        acc[0] += a * gb[jb.x + pb_];
        acc[1] += a * gb[jb.y + pb_];
        acc[2] += a * gb[jb.z + pb_];
        acc[3] += a * gb[jb.w + pb_];
    }
    for (var jj = 0u; jj < 4u; jj++) {
        let j = j0 + jj;
        for (var ii = 0u; ii < 4u; ii++) {
            let i = i0 + ii;
            if (i < qg.m && j < qg.n) {
                let idx = qg.c_off + i * qg.ldc + j;
                var v = qg.alpha * acc[jj][ii];
                if (qg.accumulate != 0u) {
                    v += gc[idx];
                }
                gc[idx] = v;
            }
        }
    }
}

// ---- gemm_v4: the same product, every operand read a vec4 at a time -------------------------
// On CPU devices (lavapipe / llvmpipe) each storage load runs a loop over the SIMD lanes with a
// bounds check per lane, whatever its width: a vec4 costs about what a float does. `gemm` reads
// 8 floats for 16 FMAs; here each thread owns 8 × 8 outputs (2 × 2 blocks of 4 × 4) and reads
// 8 + 8 vec4 of A and B (4 × 4 blocks, each used twice) for 256 FMAs, and C a row vec4 at a
// time. Measured on lavapipe (SmolLM2-135M LoRA shapes, tests/gemm_bench.rs): 4 × 4 vec4 blocks
// ~1.8x faster than `gemm`, 8 × 8 a further ~1.3x, although it leaves only 3-6 workgroups for
// the products over k = tokens. `Recorder::gemm` picks it where the layout allows (in
// elements): n % 4 == 0, C's offset and ldc multiples of 4, and each of A and B contiguous
// along p (A_ALONG_P / B_ALONG_P, k % 4 == 0) or along i / j (m % 4 == 0 for A), its offset and
// other stride multiples of 4. Every LoRA call on a model whose widths and rank are multiples
// of 4 fits.
override A_ALONG_P: bool = true;
override B_ALONG_P: bool = true;
@group(0) @binding(8) var<storage, read> gav: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> gbv: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> gcv: array<vec4<f32>>;

// A[i0.., p0..p0+3] as columns over p of 4 rows each (A contiguous along p: row vec4s, clamped
// rows `ra`, then transposed; along i: one vec4 of rows per p, `i0c` clamped to m − 4).
fn gemm_a4(ra: vec4<u32>, i0c: u32, p0: u32) -> mat4x4<f32> {
    if (A_ALONG_P) {
        let e = (ra + vec4<u32>(p0)) >> vec4<u32>(2u);
        return transpose(mat4x4<f32>(gav[e.x], gav[e.y], gav[e.z], gav[e.w]));
    }
    let e = (qg.a_off + i0c + p0 * qg.a_cs) >> 2u;
    let s = qg.a_cs >> 2u;
    return mat4x4<f32>(gav[e], gav[e + s], gav[e + 2u * s], gav[e + 3u * s]);
}
// B[p0..p0+3, j0..] as columns over j of 4 p's each (along p: column vec4s at clamped columns
// `cb`; along j: one vec4 of columns per p, `j0c` clamped to n − 4, then transposed).
fn gemm_b4(cb: vec4<u32>, j0c: u32, p0: u32) -> mat4x4<f32> {
    if (B_ALONG_P) {
        let e = (cb + vec4<u32>(p0)) >> vec4<u32>(2u);
        return mat4x4<f32>(gbv[e.x], gbv[e.y], gbv[e.z], gbv[e.w]);
    }
    let e = (qg.b_off + p0 * qg.b_rs + j0c) >> 2u;
    let s = qg.b_rs >> 2u;
    return transpose(mat4x4<f32>(gbv[e], gbv[e + s], gbv[e + 2u * s], gbv[e + 3u * s]));
}

// C[i0.., j0..j0+3] from a 4 × 4 block of sums (columns over j), a row vec4 at a time.
fn gemm_store4(acc: mat4x4<f32>, i0: u32, j0: u32) {
    if (j0 >= qg.n) {
        return;
    }
    let rows = transpose(acc);
    for (var ii = 0u; ii < 4u; ii++) {
        let i = i0 + ii;
        if (i < qg.m) {
            let idx = (qg.c_off + i * qg.ldc + j0) >> 2u;
            var v = qg.alpha * rows[ii];
            if (qg.accumulate != 0u) {
                v += gcv[idx];
            }
            gcv[idx] = v;
        }
    }
}

fn gemm_rows4(i0: u32) -> vec4<u32> {
    return qg.a_off + min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(qg.m - 1u)) * qg.a_rs;
}
fn gemm_cols4(j0: u32) -> vec4<u32> {
    return qg.b_off + min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(qg.n - 1u)) * qg.b_cs;
}

@compute @workgroup_size(64)
fn gemm_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    qg = opaque_gemm_params(pg, wg.z);
    let tj = gemm_threads_j_block(qg.m, qg.n, 8u);
    let ti = gemm_wg_rows(tj);
    if (lid / tj >= ti) {
        return; // a whole run of lanes (`gemm_groups`)
    }
    let i0 = (wg.x * ti + lid / tj) * 8u;
    let j0 = (wg.y * tj + lid % tj) * 8u;
    let i1 = i0 + 4u;
    let j1 = j0 + 4u;
    let ra0 = gemm_rows4(i0);
    let ra1 = gemm_rows4(i1);
    let cb0 = gemm_cols4(j0);
    let cb1 = gemm_cols4(j1);
    let mc = max(qg.m, 4u) - 4u;
    let nc = qg.n - 4u;
    let i0c = min(i0, mc);
    let i1c = min(i1, mc);
    let j0c = min(j0, nc);
    let j1c = min(j1, nc);
    // [row block][column block], each [jj]: rows of column j + jj
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    if (A_ALONG_P || B_ALONG_P) {
        for (var p0 = 0u; p0 < qg.k; p0 += 4u) {
            let a0 = gemm_a4(ra0, i0c, p0);
            let b0 = gemm_b4(cb0, j0c, p0);
            let a1 = gemm_a4(ra1, i1c, p0);
            let b1 = gemm_b4(cb1, j1c, p0);
            acc00 += a0 * b0;
            acc01 += a0 * b1;
            acc10 += a1 * b0;
            acc11 += a1 * b1;
        }
    } else {
        // Both contiguous across the block: one vec4 of A and one of B per p, any k.
        let sa = qg.a_cs >> 2u;
        let sb = qg.b_rs >> 2u;
        let ea0 = (qg.a_off + i0c) >> 2u;
        let ea1 = (qg.a_off + i1c) >> 2u;
        let eb0 = (qg.b_off + j0c) >> 2u;
        let eb1 = (qg.b_off + j1c) >> 2u;
        for (var pp = 0u; pp < qg.k; pp++) {
            let a0 = gav[ea0 + pp * sa];
            let b0 = gbv[eb0 + pp * sb];
            let a1 = gav[ea1 + pp * sa];
            let b1 = gbv[eb1 + pp * sb];
            acc00 += mat4x4<f32>(a0 * b0.x, a0 * b0.y, a0 * b0.z, a0 * b0.w);
            acc01 += mat4x4<f32>(a0 * b1.x, a0 * b1.y, a0 * b1.z, a0 * b1.w);
            acc10 += mat4x4<f32>(a1 * b0.x, a1 * b0.y, a1 * b0.z, a1 * b0.w);
            acc11 += mat4x4<f32>(a1 * b1.x, a1 * b1.y, a1 * b1.z, a1 * b1.w);
        }
    }
    gemm_store4(acc00, i0, j0);
    gemm_store4(acc01, i0, j1);
    gemm_store4(acc10, i1, j0);
    gemm_store4(acc11, i1, j1);
}

// ---- gemm_splitk / gemm_splitk_v4: a few rows of A over a long k -----------------------------
// The LoRA x·Aᵀ of decoding rows (m ≤ 8, n = the rank, k = the layer's width): `gemm` gives
// that product one or two threads, each looping over all of k (0.49 ms for 1 × 16 × 576 on
// lavapipe, tests/gemm_bench.rs: the LoRA products then cost as much as the whole base model per
// decoded token). Here the 64 threads of a workgroup take 64 / SPLITK_SLICES columns of C, each
// column SPLITK_SLICES threads striding over p for every row, then a tree reduction. Rows past m
// read row m - 1 and are dropped. `_v4` reads A and B as vec4s along p (`Recorder::gemm`: A along
// p, B along p, k and offsets and the other strides multiples of 4).
const SPLITK_ROWS: u32 = 8u; // `GEMM_SPLITK_MAX_ROWS` in gpu/gemm.rs
override SPLITK_SLICES: u32 = 64u; // a power of two, 1..=64
var<workgroup> sk_red: array<f32, 512>; // [row][thread]

struct SplitK {
    j: u32,     // the thread's column of C
    slice: u32, // its place among the column's threads
    ok: bool,   // j < n
}

fn splitk_setup(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> SplitK {
    qg = opaque_gemm_params(pg, wg.z);
    let cols = 64u / SPLITK_SLICES;
    let j = (wg.y * nwg.x + wg.x) * cols + lid / SPLITK_SLICES;
    return SplitK(j, lid % SPLITK_SLICES, j < qg.n);
}

// Stores the thread's sums of rows 0..3 (lo) and 4..7 (hi), reduces each column's slices, and
// writes the columns. Every thread gets here (the barriers), columns past n write nothing.
fn splitk_finish(lid: u32, t: SplitK, lo: vec4<f32>, hi: vec4<f32>) {
    sk_red[lid] = lo.x;
    sk_red[64u + lid] = lo.y;
    sk_red[128u + lid] = lo.z;
    sk_red[192u + lid] = lo.w;
    sk_red[256u + lid] = hi.x;
    sk_red[320u + lid] = hi.y;
    sk_red[384u + lid] = hi.z;
    sk_red[448u + lid] = hi.w;
    workgroupBarrier();
    for (var s = SPLITK_SLICES / 2u; s > 0u; s >>= 1u) {
        if (t.slice < s) {
            for (var i = 0u; i < SPLITK_ROWS; i++) {
                sk_red[i * 64u + lid] += sk_red[i * 64u + lid + s];
            }
        }
        workgroupBarrier();
    }
    // Thread `slice` of the column writes rows slice, slice + SPLITK_SLICES, ...
    if (t.ok) {
        for (var i = t.slice; i < qg.m; i += SPLITK_SLICES) {
            let idx = qg.c_off + i * qg.ldc + t.j;
            var v = qg.alpha * sk_red[i * 64u + lid - t.slice];
            if (qg.accumulate != 0u) {
                v += gc[idx];
            }
            gc[idx] = v;
        }
    }
}

// First elements in A of rows 0..3 (half 0) or 4..7 (half 1); rows past m read row m - 1.
fn splitk_rows(half: u32) -> vec4<u32> {
    let i = min(vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(4u * half), vec4<u32>(qg.m - 1u));
    return qg.a_off + i * qg.a_rs;
}

@compute @workgroup_size(64)
fn gemm_splitk(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let t = splitk_setup(wg, nwg, lid);
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if (t.ok) {
        let ra = splitk_rows(0u);
        let rb = splitk_rows(1u);
        let cb = qg.b_off + t.j * qg.b_cs;
        for (var pp = t.slice; pp < qg.k; pp += SPLITK_SLICES) {
            let b = gb[cb + pp * qg.b_rs];
            let pa = pp * qg.a_cs;
            lo += vec4<f32>(ga[ra.x + pa], ga[ra.y + pa], ga[ra.z + pa], ga[ra.w + pa]) * b;
            if (qg.m > 4u) {
                hi += vec4<f32>(ga[rb.x + pa], ga[rb.y + pa], ga[rb.z + pa], ga[rb.w + pa]) * b;
            }
        }
    }
    splitk_finish(lid, t, lo, hi);
}

@compute @workgroup_size(64)
fn gemm_splitk_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let t = splitk_setup(wg, nwg, lid);
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if (t.ok) {
        let ra = splitk_rows(0u) >> vec4<u32>(2u);
        let rb = splitk_rows(1u) >> vec4<u32>(2u);
        let cb = (qg.b_off + t.j * qg.b_cs) >> 2u;
        let k4 = qg.k / 4u;
        for (var p4 = t.slice; p4 < k4; p4 += SPLITK_SLICES) {
            let b = gbv[cb + p4];
            lo += vec4<f32>(dot(gav[ra.x + p4], b), dot(gav[ra.y + p4], b), dot(gav[ra.z + p4], b),
                            dot(gav[ra.w + p4], b));
            if (qg.m > 4u) {
                hi += vec4<f32>(dot(gav[rb.x + p4], b), dot(gav[rb.y + p4], b),
                                dot(gav[rb.z + p4], b), dot(gav[rb.w + p4], b));
            }
        }
    }
    splitk_finish(lid, t, lo, hi);
}

// ---- gemm_lanes_v4: gemm_splitk_v4's products on CPU devices ---------------------------------
// lavapipe runs a workgroup as 8-lane SIMD batches and loads memory lane by lane (see
// attention_tiled_hd64.wgsl), so gemm_splitk_v4's 64 threads, each loading 8 rows of A for one
// column of C, spend their time loading. Here a workgroup is one batch of 8 lanes taking 8
// columns of C: each lane walks every 8th vec4 along p for the block of 8 rows × 8 columns, in
// named registers, so each vec4 it loads serves 8 dot products; the lanes' blocks are then
// summed through workgroup memory. Rows past m and columns past n read the last one and are
// dropped. Same layout as gemm_splitk_v4 (`Recorder::gemm`).
var<workgroup> lanes_red: array<mat2x4<f32>, 64>; // [lane][row]: columns 0..3, 4..7

// x · the 8 columns b0..b7, as (0..3, 4..7).
fn dots8(x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, b4: vec4<f32>,
         b5: vec4<f32>, b6: vec4<f32>, b7: vec4<f32>) -> mat2x4<f32> {
    return mat2x4<f32>(vec4<f32>(dot(x, b0), dot(x, b1), dot(x, b2), dot(x, b3)),
                       vec4<f32>(dot(x, b4), dot(x, b5), dot(x, b6), dot(x, b7)));
}

@compute @workgroup_size(8)
fn gemm_lanes_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    qg = opaque_gemm_params(pg, wg.z);
    let j0 = (wg.y * nwg.x + wg.x) * 8u;
    if (j0 >= qg.n) {
        return; // uniform per workgroup
    }
    let ra = splitk_rows(0u) >> vec4<u32>(2u);
    let rb = splitk_rows(1u) >> vec4<u32>(2u);
    let last = vec4<u32>(qg.n - 1u);
    let cl = (vec4<u32>(qg.b_off) + min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), last) * qg.b_cs) >> vec4<u32>(2u);
    let ch = (vec4<u32>(qg.b_off) + min(vec4<u32>(j0) + vec4<u32>(4u, 5u, 6u, 7u), last) * qg.b_cs) >> vec4<u32>(2u);
    // Row i's sums in s_i (named registers: an array indexed in a loop would live in scratch).
    var s0 = mat2x4<f32>(); var s1 = mat2x4<f32>(); var s2 = mat2x4<f32>(); var s3 = mat2x4<f32>();
    var s4 = mat2x4<f32>(); var s5 = mat2x4<f32>(); var s6 = mat2x4<f32>(); var s7 = mat2x4<f32>();
    let k4 = qg.k / 4u;
    let eight = qg.m > 4u;
    for (var p4 = lid; p4 < k4; p4 += 8u) {
        let b0 = gbv[cl.x + p4];
        let b1 = gbv[cl.y + p4];
        let b2 = gbv[cl.z + p4];
        let b3 = gbv[cl.w + p4];
        let b4 = gbv[ch.x + p4];
        let b5 = gbv[ch.y + p4];
        let b6 = gbv[ch.z + p4];
        let b7 = gbv[ch.w + p4];
        s0 += dots8(gav[ra.x + p4], b0, b1, b2, b3, b4, b5, b6, b7);
        s1 += dots8(gav[ra.y + p4], b0, b1, b2, b3, b4, b5, b6, b7);
        s2 += dots8(gav[ra.z + p4], b0, b1, b2, b3, b4, b5, b6, b7);
        s3 += dots8(gav[ra.w + p4], b0, b1, b2, b3, b4, b5, b6, b7);
        if (eight) {
            s4 += dots8(gav[rb.x + p4], b0, b1, b2, b3, b4, b5, b6, b7);
            s5 += dots8(gav[rb.y + p4], b0, b1, b2, b3, b4, b5, b6, b7);
            s6 += dots8(gav[rb.z + p4], b0, b1, b2, b3, b4, b5, b6, b7);
            s7 += dots8(gav[rb.w + p4], b0, b1, b2, b3, b4, b5, b6, b7);
        }
    }
    let o = lid * 8u;
    lanes_red[o] = s0;
    lanes_red[o + 1u] = s1;
    lanes_red[o + 2u] = s2;
    lanes_red[o + 3u] = s3;
    lanes_red[o + 4u] = s4;
    lanes_red[o + 5u] = s5;
    lanes_red[o + 6u] = s6;
    lanes_red[o + 7u] = s7;
    workgroupBarrier();
    // Lane i adds up row i over the 8 lanes and writes its 8 columns.
    var s = mat2x4<f32>();
    for (var l = 0u; l < 8u; l++) {
        s += lanes_red[l * 8u + lid];
    }
    if (lid < qg.m) {
        for (var c = 0u; c < 8u; c++) {
            if (j0 + c < qg.n) {
                let idx = qg.c_off + lid * qg.ldc + j0 + c;
                var v = qg.alpha * s[c / 4u][c % 4u];
                if (qg.accumulate != 0u) {
                    v += gc[idx];
                }
                gc[idx] = v;
            }
        }
    }
}
