// Elementwise ops of the MLP and the residual stream.

struct Params {
    n: u32,
    // The gated MLP's activation: 0 SiLU (Llama, Qwen), 1 GELU with the tanh approximation
    // (Gemma's gelu_pytorch_tanh). Uniform, so the branch is too.
    act: u32,
    // The factor of `scale`.
    s: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid;
}

// SQRT_2_OVER_PI, GELU_C, gelu_inner and act_kind: act_common.wgsl, prepended.
fn act(g: f32) -> f32 {
    return act_kind(g, p.act);
}

// d act(g) / dg.
fn act_grad(g: f32) -> f32 {
    if (p.act == 1u) {
        let th = tanh(gelu_inner(g));
        return 0.5 * (1.0 + th)
            + 0.5 * g * (1.0 - th * th) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * g * g);
    }
    let s = 1.0 / (1.0 + exp(-g));
    return s * (1.0 + g * (1.0 - s));
}

// b = act(a) * b   (a = gate projection, b = up projection)
@compute @workgroup_size(256)
fn silu_mul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b[i] = act(a[i]) * b[i];
    }
}

// The vec4 forms, taken where n is a multiple of 4 (p.n then counts vec4s): on lavapipe a
// vec4 a thread halved silu_mul's time at 8 × 1536 and 273 × 1536 elements (its loads are
// done lane by lane, so a vec4 load moves 4 elements for about the price of one).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b4: array<vec4<f32>>;

fn act4(g: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act(g.x), act(g.y), act(g.z), act(g.w));
}

// b = act(a) * b, a vec4 a thread.
@compute @workgroup_size(256)
fn silu_mul4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b4[i] = act4(a4[i]) * b4[i];
    }
}

// b = b + a, a vec4 a thread.
@compute @workgroup_size(256)
fn add4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b4[i] = b4[i] + a4[i];
    }
}

// b = s * b (Gemma's embedding scale)
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b[i] = p.s * b[i];
    }
}

// b = b + a
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b[i] = b[i] + a[i];
    }
}

// Backward of b' = act(g) * b:  dgate = da * b * act'(g),  dup = da * act(g). Each invocation
// reads its element of every input before writing its outputs.
@group(0) @binding(3) var<storage, read> bw_gate: array<f32>;
@group(0) @binding(4) var<storage, read> bw_up: array<f32>;
@group(0) @binding(5) var<storage, read> bw_da: array<f32>;
@group(0) @binding(6) var<storage, read_write> bw_dgate: array<f32>;
@group(0) @binding(7) var<storage, read_write> bw_dup: array<f32>;

@compute @workgroup_size(256)
fn silu_mul_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        let g = bw_gate[i];
        let u = bw_up[i];
        let da = bw_da[i];
        bw_dgate[i] = da * u * act_grad(g);
        bw_dup[i] = da * act(g);
    }
}

// b = act(b), ungated (the vision tower's MLP: fc2(gelu_tanh(fc1(x)))).
@compute @workgroup_size(256)
fn act_inplace(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b[i] = act(b[i]);
    }
}

@group(0) @binding(3) var<storage, read> bw_gate4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bw_up4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bw_da4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> bw_dgate4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> bw_dup4: array<vec4<f32>>;

fn act_grad4(g: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act_grad(g.x), act_grad(g.y), act_grad(g.z), act_grad(g.w));
}

// silu_mul_backward, a vec4 a thread.
@compute @workgroup_size(256)
fn silu_mul_backward4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        let g = bw_gate4[i];
        let u = bw_up4[i];
        let da = bw_da4[i];
        bw_dgate4[i] = da * u * act_grad4(g);
        bw_dup4[i] = da * act4(g);
    }
}
