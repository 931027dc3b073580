// Inference: RoPE of q in place and of k into the KV cache, and v into the cache, in one
// dispatch (instead of two rope dispatches and a copy per row of k and of v). The arithmetic is
// rope.wgsl's ("rotate half", cos/sin [2, t, hd/2] from the CPU), so results are the same bit
// for bit. Row i of k and v goes to cache slot p0 + i, or with `slotted` (batched decoding) to
// spans[2i + 1] - 1: its own slot (`Packing` spans of decoding: segment start, slot + 1).
// Training keeps rope.wgsl: its backward pass reads k roped in place.

struct Params {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd: u32,
    p0: u32,
    slotted: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;   // [t, heads, hd]
@group(0) @binding(3) var<storage, read> k: array<f32>;         // [t, kv_heads, hd]
@group(0) @binding(4) var<storage, read> v: array<f32>;         // [t, kv_heads, hd]
@group(0) @binding(5) var<storage, read_write> kc: array<f32>;  // [slots, kv_heads, hd]
@group(0) @binding(6) var<storage, read_write> vc: array<f32>;
@group(0) @binding(7) var<storage, read> spans: array<u32>;     // [t, 2] when slotted

// Thread i's (row t, head h of q then of k, pair or vec4 j < half): the same walk in both kernels.
struct At {
    t: u32,
    h: u32,
    j: u32,
}

fn at(i: u32, half: u32) -> At {
    let th = i / half;
    return At(th / (p.heads + p.kv_heads), th % (p.heads + p.kv_heads), i % half);
}

// The cache slot of row t's key and value. A select, not a branch on the uniform alone (see
// opaque_params in matmul_common.wgsl).
fn cache_slot(t: u32) -> u32 {
    return select(p.p0 + t, spans[2u * t + 1u] - 1u, p.slotted != 0u);
}

// One invocation per (row, head of q then of k, j < hd / 2): the pair (j, j + hd / 2).
@compute @workgroup_size(64)
fn rope_kv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 2u;
    let all_heads = p.heads + p.kv_heads;
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * all_heads * half) {
        return;
    }
    let a = at(i, half);
    let t = a.t;
    let h = a.h;
    let j = a.j;
    let c = cs[t * half + j];
    let s = cs[p.t * half + t * half + j];
    if (h < p.heads) {
        let base = (t * p.heads + h) * p.hd;
        let x1 = q[base + j];
        let x2 = q[base + j + half];
        q[base + j] = x1 * c - x2 * s;
        q[base + j + half] = x2 * c + x1 * s;
        return;
    }
    let kh = h - p.heads;
    let slot = cache_slot(t);
    let src = (t * p.kv_heads + kh) * p.hd;
    let dst = (slot * p.kv_heads + kh) * p.hd;
    let x1 = k[src + j];
    let x2 = k[src + j + half];
    kc[dst + j] = x1 * c - x2 * s;
    kc[dst + j + half] = x2 * c + x1 * s;
    vc[dst + j] = v[src + j];
    vc[dst + j + half] = v[src + j + half];
}

// The same, 4 pairs a thread (head_dim a multiple of 8, so hd / 2 is of whole vec4s): vec4
// loads, which CPU devices do lane by lane, 4 elements for about the price of one. The same
// arithmetic per element, so the same results bit for bit.
@group(0) @binding(1) var<storage, read> cs4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> q4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> kc4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> vc4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn rope_kv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 8u; // vec4s in half a head
    let all_heads = p.heads + p.kv_heads;
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * all_heads * half) {
        return;
    }
    let a = at(i, half);
    let t = a.t;
    let h = a.h;
    let j = a.j;
    let c = cs4[t * half + j];
    let s = cs4[p.t * half + t * half + j];
    let row = p.hd / 4u;
    if (h < p.heads) {
        let base = (t * p.heads + h) * row;
        let x1 = q4[base + j];
        let x2 = q4[base + j + half];
        q4[base + j] = x1 * c - x2 * s;
        q4[base + j + half] = x2 * c + x1 * s;
        return;
    }
    let kh = h - p.heads;
    let slot = cache_slot(t);
    let src = (t * p.kv_heads + kh) * row;
    let dst = (slot * p.kv_heads + kh) * row;
    let x1 = k4[src + j];
    let x2 = k4[src + j + half];
    kc4[dst + j] = x1 * c - x2 * s;
    kc4[dst + j + half] = x2 * c + x1 * s;
    vc4[dst + j] = v4[src + j];
    vc4[dst + j + half] = v4[src + j + half];
}

// `rope_kv4` reading q, k and v from one product's rows ([t, heads + 2 kv_heads, hd]: q, k, v
// side by side, `Layer::qkv`), q roped into its own buffer (bound as `q4`).
@group(0) @binding(8) var<storage, read> qkv4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn rope_qkv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 8u;
    let all_heads = p.heads + p.kv_heads;
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * all_heads * half) {
        return;
    }
    let a = at(i, half);
    let t = a.t;
    let h = a.h;
    let j = a.j;
    let c = cs4[t * half + j];
    let s = cs4[p.t * half + t * half + j];
    let row = p.hd / 4u;
    // Head h of q or k, then the matching head of v, in row t of the product.
    let src = (t * (all_heads + p.kv_heads) + h) * row;
    let x1 = qkv4[src + j];
    let x2 = qkv4[src + j + half];
    if (h < p.heads) {
        let base = (t * p.heads + h) * row;
        q4[base + j] = x1 * c - x2 * s;
        q4[base + j + half] = x2 * c + x1 * s;
        return;
    }
    let kh = h - p.heads;
    let dst = (cache_slot(t) * p.kv_heads + kh) * row;
    let vsrc = src + p.kv_heads * row;
    kc4[dst + j] = x1 * c - x2 * s;
    kc4[dst + j + half] = x2 * c + x1 * s;
    vc4[dst + j] = qkv4[vsrc + j];
    vc4[dst + j + half] = qkv4[vsrc + j + half];
}
