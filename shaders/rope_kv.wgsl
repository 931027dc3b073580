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

// Invocation (wg, lid)'s row t, head h (of q, then of k) and pair or vec4 j < half: the same
// walk in every kernel here; t = p.t past the last.
struct At {
    t: u32,
    h: u32,
    j: u32,
}

fn at(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, half: u32) -> At {
    let all_heads = p.heads + p.kv_heads;
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * all_heads * half) {
        return At(p.t, 0u, 0u);
    }
    let th = i / half;
    return At(th / all_heads, th % all_heads, i % half);
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
    let a = at(wg, nwg, lid, half);
    if (a.t >= p.t) {
        return;
    }
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

// Pair j of q head h of row t, rotated, into q4.
fn store_q4(a: At, half: u32, x1: vec4<f32>, x2: vec4<f32>) {
    let c = cs4[a.t * half + a.j];
    let s = cs4[p.t * half + a.t * half + a.j];
    let base = (a.t * p.heads + a.h) * (p.hd / 4u);
    q4[base + a.j] = x1 * c - x2 * s;
    q4[base + a.j + half] = x2 * c + x1 * s;
}

// Pair j of k head h - heads of row t, rotated, and v's pair (v1, v2) into row t's cache slot.
fn store_kv4(a: At, half: u32, x1: vec4<f32>, x2: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>) {
    let c = cs4[a.t * half + a.j];
    let s = cs4[p.t * half + a.t * half + a.j];
    let dst = (cache_slot(a.t) * p.kv_heads + a.h - p.heads) * (p.hd / 4u);
    kc4[dst + a.j] = x1 * c - x2 * s;
    kc4[dst + a.j + half] = x2 * c + x1 * s;
    vc4[dst + a.j] = v1;
    vc4[dst + a.j + half] = v2;
}

@compute @workgroup_size(64)
fn rope_kv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 8u; // vec4s in half a head
    let a = at(wg, nwg, lid, half);
    if (a.t >= p.t) {
        return;
    }
    let row = p.hd / 4u;
    if (a.h < p.heads) {
        let b = (a.t * p.heads + a.h) * row;
        store_q4(a, half, q4[b + a.j], q4[b + a.j + half]);
        return;
    }
    let b = (a.t * p.kv_heads + a.h - p.heads) * row;
    store_kv4(a, half, k4[b + a.j], k4[b + a.j + half], v4[b + a.j], v4[b + a.j + half]);
}

// `rope_kv4` reading q, k and v from one product's rows ([t, heads + 2 kv_heads, hd]: q, k, v
// side by side, `Layer::qkv`), q roped into its own buffer (bound as `q4`).
@group(0) @binding(8) var<storage, read> qkv4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn rope_qkv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let half = p.hd / 8u;
    let a = at(wg, nwg, lid, half);
    if (a.t >= p.t) {
        return;
    }
    let row = p.hd / 4u;
    // Head h of q or k in row t of the product; the matching head of v kv_heads further on.
    let b = (a.t * (p.heads + 2u * p.kv_heads) + a.h) * row;
    if (a.h < p.heads) {
        store_q4(a, half, qkv4[b + a.j], qkv4[b + a.j + half]);
        return;
    }
    let vb = b + p.kv_heads * row;
    store_kv4(a, half, qkv4[b + a.j], qkv4[b + a.j + half], qkv4[vb + a.j], qkv4[vb + a.j + half]);
}
