// Arithmetic peak probe (benchmarks only): each invocation runs `iters` rounds of 32
// independent FMAs (eight vec4 chains) in registers and writes one value, so memory traffic
// is negligible. FLOPs = invocations * iters * 32 * 2.

struct PeakParams {
    iters: u32,
    mul: f32, // a runtime value, so the chains cannot be folded at compile time
    add: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> pp: PeakParams;
@group(0) @binding(1) var<storage, read_write> peak_out: array<f32>;

@compute @workgroup_size(64)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    // + gid.z (always 0): keeps Mesa lavapipe from re-JITting the shader per dispatch with
    // `iters` inlined (see `opaque_params` in matmul.wgsl).
    let iters = pp.iters + gid.z;
    let id = gid.y * nwg.x * 64u + gid.x;
    let s = f32(id) * 1e-6;
    let m = vec4<f32>(pp.mul);
    let c = vec4<f32>(pp.add);
    var a0 = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var i = 0u; i < iters; i++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    let v = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    if (id < arrayLength(&peak_out)) {
        peak_out[id] = v.x + v.y + v.z + v.w;
    }
}
