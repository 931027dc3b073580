// RMSNorm over the last dimension, as Hugging Face computes it in f32:
// y = x * rsqrt(mean(x^2) + eps) * weight. One workgroup per row; the sums through wg_sum
// (reduce.wgsl, or reduce_subgroup.wgsl where the device has subgroups).

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
const RED_WG: u32 = WG; // reduce.wgsl / reduce_subgroup.wgsl, prepended at build

fn row_index(ln: Lane) -> u32 {
    return ln.wg.y * ln.nwg.x + ln.wg.x;
}

@compute @workgroup_size(64)
fn rmsnorm(ln: Lane) {
    let row = row_index(ln);
    if (row >= p.rows) {
        return; // uniform per workgroup, so the reductions below stay uniform
    }
    let lid = ln.lid;
    let base = row * p.d;
    var ss = 0.0;
    for (var i = lid; i < p.d; i += WG) {
        let v = x[base + i];
        ss += v * v;
    }
    let inv = inverseSqrt(wg_sum(ln, ss) / f32(p.d) + p.eps);
    for (var i = lid; i < p.d; i += WG) {
        y[base + i] = x[base + i] * inv * weight[i];
    }
}

// The same on CPU devices (Recorder::norm_lanes), where d is a multiple of 4: one 8-thread
// workgroup (a single SIMD batch on llvmpipe, so its one barrier costs little) per row, vec4
// loads (done lane by lane there, 4 elements for about the price of one), the 8 partial sums
// added through workgroup memory.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;
const LANES: u32 = 8u;
var<workgroup> lane_sums: array<f32, LANES>;

@compute @workgroup_size(8)
fn rmsnorm_lanes(ln: Lane) {
    let row = row_index(ln);
    if (row >= p.rows) {
        return; // uniform per workgroup
    }
    let lid = ln.lid;
    let d4 = p.d / 4u;
    let base = row * d4;
    var ss = vec4<f32>(0.0);
    for (var i = lid; i < d4; i += LANES) {
        let v = x4[base + i];
        ss += v * v;
    }
    lane_sums[lid] = ss.x + ss.y + ss.z + ss.w;
    workgroupBarrier();
    var total = 0.0;
    for (var j = 0u; j < LANES; j++) {
        total += lane_sums[j];
    }
    let inv = inverseSqrt(total / f32(p.d) + p.eps);
    for (var i = lid; i < d4; i += LANES) {
        y4[base + i] = x4[base + i] * inv * weight4[i];
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

@compute @workgroup_size(64)
fn rmsnorm_backward(ln: Lane) {
    let row = row_index(ln);
    if (row >= pn.rows) {
        return; // uniform per workgroup
    }
    let lid = ln.lid;
    let base = row * pn.d;
    var ss = 0.0;
    var dot = 0.0;
    for (var i = lid; i < pn.d; i += WG) {
        let v = x[base + i];
        ss += v * v;
        dot += weight[i] * dy[base + i] * v;
    }
    let sums = wg_sum2(ln, vec2<f32>(ss, dot));
    let r = inverseSqrt(sums.x / f32(pn.d) + pn.eps);
    let c = r * r * r * sums.y / f32(pn.d);
    for (var i = lid; i < pn.d; i += WG) {
        var g = r * weight[i] * dy[base + i] - x[base + i] * c;
        if (pn.accumulate != 0u) {
            g += dx[base + i];
        }
        dx[base + i] = g;
    }
}

// LayerNorm with bias, as torch computes it: y = (x - mean) * rsqrt(var + eps) * weight + bias,
// var the biased variance. Two passes over the row (mean, then the squared deviations), which
// keeps the variance exact where |mean| ≫ std. One workgroup per row; params as `rmsnorm`'s.
@group(0) @binding(6) var<storage, read> ln_bias: array<f32>;

@compute @workgroup_size(64)
fn layernorm(ln: Lane) {
    let row = row_index(ln);
    if (row >= p.rows) {
        return; // uniform per workgroup
    }
    let lid = ln.lid;
    let base = row * p.d;
    var s = 0.0;
    for (var i = lid; i < p.d; i += WG) {
        s += x[base + i];
    }
    let mean = wg_sum(ln, s) / f32(p.d);
    var ss = 0.0;
    for (var i = lid; i < p.d; i += WG) {
        let c = x[base + i] - mean;
        ss += c * c;
    }
    let inv = inverseSqrt(wg_sum(ln, ss) / f32(p.d) + p.eps);
    for (var i = lid; i < p.d; i += WG) {
        y[base + i] = (x[base + i] - mean) * inv * weight[i] + ln_bias[i];
    }
}
