// Causal attention with grouped-query heads against a KV cache.
// q: [t, heads, hd] for positions p0 .. p0+t; k, v cache: [max_seq, kv_heads, hd] holding
// positions 0 .. p0+t. One invocation per (query, head), online softmax in f32.

struct Params {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd: u32,
    p0: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const MAX_HD: u32 = 256u;

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (i >= p.t * p.heads) {
        return;
    }
    let t = i / p.heads;
    let h = i % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let qb = i * p.hd;
    let ctx = p.p0 + t + 1u;
    var acc: array<f32, MAX_HD>;
    for (var d = 0u; d < p.hd; d++) {
        acc[d] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var s = 0u; s < ctx; s++) {
        let kb = (s * p.kv_heads + kvh) * p.hd;
        var score = 0.0;
        for (var d = 0u; d < p.hd; d++) {
            score += q[qb + d] * kc[kb + d];
        }
        score *= p.scale;
        let m_new = max(m, score);
        let corr = exp(m - m_new);
        let e = exp(score - m_new);
        l = l * corr + e;
        for (var d = 0u; d < p.hd; d++) {
            acc[d] = acc[d] * corr + e * vc[kb + d];
        }
        m = m_new;
    }
    for (var d = 0u; d < p.hd; d++) {
        out[qb + d] = acc[d] / l;
    }
}
