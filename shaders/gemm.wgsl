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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pg: GemmParams;
// The `opaque_params` trick of matmul_common.wgsl (keeps lavapipe from re-JITting per dispatch).
var<private> qg: GemmParams;
fn opaque_gemm_params(v: GemmParams, z: u32) -> GemmParams {
    return GemmParams(v.m + z, v.n + z, v.k + z, v.a_off + z, v.a_rs + z, v.a_cs + z, v.b_off + z,
                      v.b_rs + z, v.b_cs + z, v.c_off + z, v.ldc + z, v.alpha + f32(z),
                      v.accumulate + z, z, z, z);
}
@group(0) @binding(5) var<storage, read> ga: array<f32>;
@group(0) @binding(6) var<storage, read> gb: array<f32>;
@group(0) @binding(7) var<storage, read_write> gc: array<f32>;

// Threads along j of a `gemm` workgroup of 64 (the rest go along i), each thread 4 × 4
// outputs: enough to cover n in steps of four, at most 64, leaving at least enough threads
// along i to cover m when m is small. `Recorder::gemm` mirrors this in `gemm_threads_j`.
fn pow2_ceil(v: u32) -> u32 {
    return 1u << (32u - countLeadingZeros(max(v, 1u) - 1u));
}
fn gemm_threads_j(m: u32, n: u32) -> u32 {
    let tj = min(pow2_ceil((n + 3u) / 4u), 64u);
    let ti = min(pow2_ceil((m + 3u) / 4u), 64u);
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

// Register-blocked: each thread 4 rows × 4 columns of C, reading A and B straight from memory
// (strided, so scalar loads): 8 loads for 16 FMAs a step of p, where 16×16 tiles through
// workgroup memory took two loads per FMA (see the comment on the register-blocked weight
// kernels in matmul.wgsl).
@compute @workgroup_size(64)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    qg = opaque_gemm_params(pg, wg.z);
    let tj = gemm_threads_j(qg.m, qg.n);
    let i0 = (wg.y * (64u / tj) + lid / tj) * 4u;
    let j0 = (wg.x * tj + lid % tj) * 4u;
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
