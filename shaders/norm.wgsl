// RMSNorm over the last dimension, as Hugging Face computes it in f32:
// y = x * rsqrt(mean(x^2) + eps) * weight. One workgroup per row.

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

fn row_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}

@compute @workgroup_size(64)
fn rmsnorm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = row_index(wg, nwg);
    if (row >= p.rows) {
        return; // uniform per workgroup, so the barriers below stay uniform
    }
    let base = row * p.d;
    var ss = 0.0;
    for (var i = lid; i < p.d; i += WG) {
        let v = x[base + i];
        ss += v * v;
    }
    partial[lid] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(partial[0] / f32(p.d) + p.eps);
    for (var i = lid; i < p.d; i += WG) {
        y[base + i] = x[base + i] * inv * weight[i];
    }
}

// Backward with the weight frozen: with r = rsqrt(mean(x^2) + eps),
// dx_i (+)= r * w_i * dy_i - x_i * r^3 / d * Σ_j w_j * dy_j * x_j.   One workgroup per row.
struct NormBackwardParams {
    rows: u32,
    d: u32,
    eps: f32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> pn: NormBackwardParams;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

var<workgroup> partial2: array<f32, 64>;

@compute @workgroup_size(64)
fn rmsnorm_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = row_index(wg, nwg);
    if (row >= pn.rows) {
        return; // uniform per workgroup
    }
    let base = row * pn.d;
    var ss = 0.0;
    var dot = 0.0;
    for (var i = lid; i < pn.d; i += WG) {
        let v = x[base + i];
        ss += v * v;
        dot += weight[i] * dy[base + i] * v;
    }
    partial[lid] = ss;
    partial2[lid] = dot;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
            partial2[lid] += partial2[lid + s];
        }
        workgroupBarrier();
    }
    let r = inverseSqrt(partial[0] / f32(pn.d) + pn.eps);
    let c = r * r * r * partial2[0] / f32(pn.d);
    for (var i = lid; i < pn.d; i += WG) {
        var g = r * weight[i] * dy[base + i] - x[base + i] * c;
        if (pn.accumulate != 0u) {
            g += dx[base + i];
        }
        dx[base + i] = g;
    }
}
