// Log-softmax and target gather over the vocabulary, one chunk of logits at a time, so no
// [tokens × vocab] buffer ever exists. Per row the state holds a running max m, the running
// sum s = Σ exp(z - m), and the target's logit; z = logit * inv_temp.

struct Params {
    t: u32,
    c: u32,        // columns in this chunk
    v0: u32,       // vocabulary id of column 0
    inv_temp: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;  // [t, c]
@group(0) @binding(2) var<storage, read> targets: array<u32>; // [t], 0xffffffff = none
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // [t, 4]: m, s, target z, -

const WG: u32 = 64u;
var<workgroup> wm: array<f32, 64>;
var<workgroup> wsum: array<f32, 64>;

@compute @workgroup_size(64)
fn lse_chunk(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.t) {
        return;
    }
    let base = row * p.c;
    let tgt = targets[row];
    var m = -3.0e38;
    var s = 0.0;
    for (var j = lid; j < p.c; j += WG) {
        let z = logits[base + j] * p.inv_temp;
        if (p.v0 + j == tgt) {
            state[row * 4u + 2u] = z;
        }
        let m_new = max(m, z);
        s = s * exp(m - m_new) + exp(z - m_new);
        m = m_new;
    }
    wm[lid] = m;
    wsum[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            let m2 = max(wm[lid], wm[lid + k]);
            wsum[lid] = wsum[lid] * exp(wm[lid] - m2) + wsum[lid + k] * exp(wm[lid + k] - m2);
            wm[lid] = m2;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let m0 = state[row * 4u];
        let s0 = state[row * 4u + 1u];
        let m2 = max(m0, wm[0]);
        state[row * 4u + 1u] = s0 * exp(m0 - m2) + wsum[0] * exp(wm[0] - m2);
        state[row * 4u] = m2;
    }
}

// Resets the state before the first chunk.
@compute @workgroup_size(64)
fn lse_init(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = (wg.y * nwg.x + wg.x) * 64u + lid;
    if (row < p.t) {
        state[row * 4u] = -3.0e38;
        state[row * 4u + 1u] = 0.0;
        state[row * 4u + 2u] = 0.0;
        state[row * 4u + 3u] = 0.0;
    }
}
