// Rotary position embedding, Hugging Face "rotate half" layout, in place on [t, heads, hd].
// cos/sin come precomputed from the CPU for exactly these positions: [2, t, hd/2]
// (cos first), so the angles match torch's f32 arithmetic and no GPU trig is trusted.

struct Params {
    t: u32,
    heads: u32,
    hd: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn rope(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 2u;
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * p.heads * half) {
        return;
    }
    let j = i % half;
    let th = i / half; // t * heads + h
    let t = th / p.heads;
    let c = cs[t * half + j];
    let s = cs[p.t * half + t * half + j];
    let base = th * p.hd;
    let x1 = x[base + j];
    let x2 = x[base + j + half];
    x[base + j] = x1 * c - x2 * s;
    x[base + j + half] = x2 * c + x1 * s;
}

// The same, 4 pairs a thread (head_dim a multiple of 8): vec4 loads, which CPU devices do lane
// by lane, 4 elements for about the price of one. The same arithmetic per element.
@group(0) @binding(1) var<storage, read> cs4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> x4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn rope4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 8u; // vec4s in half a head
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * p.heads * half) {
        return;
    }
    let j = i % half;
    let th = i / half; // t * heads + h
    let t = th / p.heads;
    let c = cs4[t * half + j];
    let s = cs4[p.t * half + t * half + j];
    let base = th * (p.hd / 4u);
    let x1 = x4[base + j];
    let x2 = x4[base + j + half];
    x4[base + j] = x1 * c - x2 * s;
    x4[base + j + half] = x2 * c + x1 * s;
}
