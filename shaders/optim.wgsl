// Optimizer steps and gradient norms, elementwise over flat f32 parameter buffers.
// Each entry point has its own uniform struct at binding 0.

// AdamW as torch.optim.AdamW (single-tensor path): with g = grad * grad_scale,
//   p *= 1 - lr * weight_decay
//   m  = lerp(m, g, 1 - beta1)
//   v  = v * beta2 + (1 - beta2) * g * g
//   p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^step) + eps),   step_size = lr / (1 - beta1^step)
// The step-dependent scalars are computed on the CPU in f64, as Python computes them for torch.
struct AdamwParams {
    n: u32,
    decay: f32,        // 1 - lr * weight_decay
    w1: f32,           // 1 - beta1 (the lerp weight)
    beta2: f32,
    w2: f32,           // 1 - beta2
    step_size: f32,    // lr / (1 - beta1^step)
    bc2_sqrt: f32,     // sqrt(1 - beta2^step)
    eps: f32,
    grad_scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pa: AdamwParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m2: array<f32>;

fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i >= pa.n) {
        return;
    }
    let g = grad[i] * pa.grad_scale;
    let p0 = param[i] * pa.decay;
    // torch's lerp: self + w (end - self) for |w| < 0.5, else end - (end - self) (1 - w).
    let m_old = m1[i];
    var m = 0.0;
    if (abs(pa.w1) < 0.5) {
        m = m_old + pa.w1 * (g - m_old);
    } else {
        m = g - (g - m_old) * (1.0 - pa.w1);
    }
    let v = m2[i] * pa.beta2 + pa.w2 * g * g;
    m1[i] = m;
    m2[i] = v;
    let denom = sqrt(v) / pa.bc2_sqrt + pa.eps;
    param[i] = p0 - pa.step_size * (m / denom);
}

// SGD as torch.optim.SGD without momentum: p -= lr * (grad * grad_scale + weight_decay * p).
struct SgdParams {
    n: u32,
    lr: f32,
    weight_decay: f32,
    grad_scale: f32,
}

@group(0) @binding(0) var<uniform> ps: SgdParams;

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if (i >= ps.n) {
        return;
    }
    let p0 = param[i];
    let d = grad[i] * ps.grad_scale + ps.weight_decay * p0;
    param[i] = p0 - ps.lr * d;
}

// out[index] = Σ x[i]^2 for i < n: one workgroup strides over x, then wg_sum.
struct SumSquaresParams {
    n: u32,
    index: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> pq: SumSquaresParams;
@group(0) @binding(5) var<storage, read> sq_x: array<f32>;
@group(0) @binding(6) var<storage, read_write> sq_out: array<f32>;

const RED_WG: u32 = 256u; // reduce.wgsl / reduce_subgroup.wgsl, prepended at build

@compute @workgroup_size(256)
fn sum_squares(ln: Lane) {
    var acc = 0.0;
    for (var i = ln.lid; i < pq.n; i += 256u) {
        let v = sq_x[i];
        acc += v * v;
    }
    let total = wg_sum(ln, acc);
    if (ln.lid == 0u) {
        sq_out[pq.index] = total;
    }
}
