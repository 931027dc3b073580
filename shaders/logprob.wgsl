// Log-softmax and target gather over the vocabulary, one chunk of logits at a time, so no
// [tokens × vocab] buffer ever exists. Per row the state holds a running max m, the running
// sum s = Σ exp(z - m), the target's logit, and w = Σ exp(z - m) * z (so E_p[z] = w / s and
// the entropy is H = m + ln s - w / s); z = logit * inv_temp.

struct Params {
    t: u32,
    c: u32,        // columns in this chunk
    v0: u32,       // vocabulary id of column 0
    inv_temp: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;  // [t, c]
@group(0) @binding(2) var<storage, read> targets: array<u32>; // [t], 0xffffffff = none
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // [t, 4]: m, s, target z, w

const WG: u32 = 64u;
const RED_WG: u32 = WG; // reduce.wgsl / reduce_subgroup.wgsl, prepended at build

// Inside the kernel the third running value is u = Σ exp(z - m) * (z - m), which stays small
// where z and m are large (w = u + m s carries |m| in every term); (m, s, u) triples are merged
// like (m, s) pairs. `shift` is u rescaled from max `m` to a max `m2 >= m`: c (u + s (m - m2)),
// c = exp(m - m2), and 0 when nothing was seen (s = 0) or c underflows.
fn shift(u: f32, s: f32, m: f32, m2: f32, c: f32) -> f32 {
    return select(c * (u + s * (m - m2)), 0.0, s == 0.0 || c == 0.0);
}

@compute @workgroup_size(64)
fn lse_chunk(ln: Lane) {
    let lid = ln.lid;
    let row = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (row >= p.t) {
        return;
    }
    let base = row * p.c;
    let tgt = targets[row];
    var m = -3.0e38;
    var s = 0.0;
    var u = 0.0;
    for (var j = lid; j < p.c; j += WG) {
        let z = logits[base + j] * p.inv_temp;
        if (p.v0 + j == tgt) {
            state[row * 4u + 2u] = z;
        }
        let m_new = max(m, z);
        let c = exp(m - m_new);
        let e = exp(z - m_new);
        u = shift(u, s, m, m_new, c) + select(e * (z - m_new), 0.0, e == 0.0);
        s = s * c + e;
        m = m_new;
    }
    // Merge the threads' triples: rescale each to the workgroup's max, then add them up.
    let mw = wg_max(ln, m);
    let cw = exp(m - mw);
    let su = wg_sum2(ln, vec2<f32>(s * cw, shift(u, s, m, mw, cw)));
    if (lid == 0u) {
        let m0 = state[row * 4u];
        let s0 = state[row * 4u + 1u];
        let u0 = select(state[row * 4u + 3u] - m0 * s0, 0.0, s0 == 0.0);
        let m2 = max(m0, mw);
        let c1 = exp(m0 - m2);
        let c2 = exp(mw - m2);
        let s2 = s0 * c1 + su.x * c2;
        let u2 = shift(u0, s0, m0, m2, c1) + shift(su.y, su.x, mw, m2, c2);
        state[row * 4u + 1u] = s2;
        state[row * 4u] = m2;
        state[row * 4u + 3u] = u2 + m2 * s2;
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

// Gradient of a_t * lp_t + b_t * H_t w.r.t. the raw logits of one chunk, in place over the
// chunk, from the finished state: with lse = m + ln s, p_j = exp(z_j - lse), E_p[z] = w / s,
//   g_j = inv_temp * (a (δ(v0 + j == target) - p_j) - b p_j (z_j - E_p[z])).
// (z_j - lse + H = z_j - E_p[z]; computed that way it avoids cancelling lse.)
@group(0) @binding(4) var<storage, read_write> glogits: array<f32>; // [t, c]
@group(0) @binding(5) var<storage, read> coefs: array<f32>;         // [t, 2]: a, b

@compute @workgroup_size(256)
fn logprob_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid;
    if (i >= p.t * p.c) {
        return;
    }
    let row = i / p.c;
    let j = i % p.c;
    let m = state[row * 4u];
    let s = state[row * 4u + 1u];
    let mean_z = state[row * 4u + 3u] / s;
    let lse = m + log(s);
    let a = coefs[row * 2u];
    let b = coefs[row * 2u + 1u];
    let z = glogits[i] * p.inv_temp;
    let pr = exp(z - lse);
    var g = -a * pr;
    if (p.v0 + j == targets[row]) {
        g += a;
    }
    if (pr > 0.0) {
        g -= b * pr * (z - mean_z);
    }
    glogits[i] = g * p.inv_temp;
}
