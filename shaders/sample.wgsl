// Token sampling on the GPU: one 256-thread workgroup per draw reads one row of n logits and
// writes [id, log p filtered, log p plain, kept count] (4 words), so decoding reads back a few
// bytes instead of a vocabulary row. Draw d of a dispatch uses step + d (batched draws).
//
// With z = logit * inv_temp and w = exp(z - zmax):
//   greedy: id = argmax logit (lowest index on ties); log p filtered = 0 (a point mass), log p
//     plain = log softmax(logit * inv_temp)[id] (the wrapper passes inv_temp = 1).
//   otherwise the kept set is the intersection of
//     top-k:  z >= τk, τk the k-th largest z (found exactly by bisection over the
//             order-preserving u32 keys of z, 32 passes); tokens tied with the k-th are all kept;
//     min-p:  w >= min_p (w of the top token is 1);
//     top-p:  z >= τp, τp the largest key whose set {z >= τp} ∩ top-k still has mass
//             >= top_p × mass(top-k) (the smallest sorted prefix reaching top_p; ties at the
//             boundary are all kept), bisection as for top-k;
//   and the draw is Gumbel-max over the kept tokens: argmax z_j - ln(-ln(1 - x_j)), x_j uniform
//   from a counter-based hash of (seed, step, j), so it is exact in distribution and the same
//   on every backend. log p filtered = z_id - zmax - ln Σ_kept w, log p plain = z_id - zmax -
//   ln Σ_all w. Every per-thread loop runs n / 256 iterations.

struct Params {
    n: u32,
    draws: u32,
    greedy: u32,
    top_k: u32,     // 0 = off
    inv_temp: f32,
    top_p: f32,     // >= 1 = off
    min_p: f32,     // 0 = off
    seed_lo: u32,
    seed_hi: u32,
    step_lo: u32,
    step_hi: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [n]
@group(0) @binding(2) var<storage, read_write> out: array<u32>;   // [draws, 4]

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;
var<workgroup> res_f: f32;
var<workgroup> res_u: u32;

// Order-preserving map of f32 to u32 (a < b as floats ⇔ key(a) < key(b)).
fn key(z: f32) -> u32 {
    let b = bitcast<u32>(z);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// Exp(1) variate -ln(1 - x), x = (h + 0.5) / 2^32, with full precision where x is small
// (large Gumbel values) and x < 1 always.
fn exponential(h: u32) -> f32 {
    let x = min((f32(h) + 0.5) * 2.3283064e-10, 0.99999994);
    if (x < 0.0078125) {
        return x * (1.0 + x * (0.5 + x * (0.33333334 + x * 0.25)));
    }
    return -log(1.0 - x);
}

// Sum over the workgroup; the result is workgroup-uniform.
fn sum_all(lid: u32, v: f32) -> f32 {
    rv[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            rv[lid] += rv[lid + k];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        res_f = rv[0];
    }
    return workgroupUniformLoad(&res_f);
}

// Index of the largest v (lowest index on ties); threads holding no candidate pass i = NONE.
fn argmax_all(lid: u32, v: f32, i: u32) -> u32 {
    rv[lid] = v;
    ri[lid] = i;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            let v2 = rv[lid + k];
            let i2 = ri[lid + k];
            let i1 = ri[lid];
            if (i2 != NONE && (i1 == NONE || v2 > rv[lid] || (v2 == rv[lid] && i2 < i1))) {
                rv[lid] = v2;
                ri[lid] = i2;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        res_u = ri[0];
    }
    return workgroupUniformLoad(&res_u);
}

// Count (as f32) of tokens with key(z) >= t.
fn count_at_least(lid: u32, t: u32) -> f32 {
    var c = 0.0;
    for (var j = lid; j < p.n; j += WG) {
        if (key(logits[j] * p.inv_temp) >= t) {
            c += 1.0;
        }
    }
    return sum_all(lid, c);
}

// Mass Σ w of tokens with key(z) >= t.
fn mass_at_least(lid: u32, t: u32, zmax: f32) -> f32 {
    var s = 0.0;
    for (var j = lid; j < p.n; j += WG) {
        let z = logits[j] * p.inv_temp;
        if (key(z) >= t) {
            s += exp(z - zmax);
        }
    }
    return sum_all(lid, s);
}

@compute @workgroup_size(256)
fn sample(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let d = wg.y * nwg.x + wg.x;
    if (d >= p.draws) {
        return;
    }
    // (1) argmax of the raw logits; inv_temp > 0 keeps the order.
    var bv = -3.4e38;
    var bi = NONE;
    for (var j = lid; j < p.n; j += WG) {
        let v = logits[j];
        if (v > bv || bi == NONE) {
            bv = v;
            bi = j;
        }
    }
    let top = argmax_all(lid, bv, bi);
    let zmax = logits[top] * p.inv_temp;
    var s_all = 0.0;
    for (var j = lid; j < p.n; j += WG) {
        s_all += exp(logits[j] * p.inv_temp - zmax);
    }
    let mass_all = sum_all(lid, s_all);
    if (p.greedy != 0u) {
        if (lid == 0u) {
            out[d * 4u] = top;
            out[d * 4u + 1u] = bitcast<u32>(0.0);
            out[d * 4u + 2u] = bitcast<u32>(-log(mass_all));
            out[d * 4u + 3u] = 1u;
        }
        return;
    }
    let kmax = key(zmax);
    // (2) top-k: the largest key t with count(key >= t) >= k.
    var tk = 0u;
    if (p.top_k > 0u && p.top_k < p.n) {
        var lo = 0u;
        var hi = kmax;
        for (var it = 0u; it < 32u; it++) {
            let mid = lo + (hi - lo + 1u) / 2u;
            let c = count_at_least(lid, mid);
            if (c >= f32(p.top_k)) {
                lo = mid;
            } else {
                hi = max(mid, 1u) - 1u;
            }
            lo = min(lo, hi);
        }
        tk = lo;
    }
    // (3) top-p within the top-k set: the largest key t >= tk with mass(key >= t) >= top_p × mass(tk).
    var tp = tk;
    if (p.top_p < 1.0) {
        let goal = p.top_p * mass_at_least(lid, tk, zmax);
        var lo = tk;
        var hi = kmax;
        for (var it = 0u; it < 32u; it++) {
            let mid = lo + (hi - lo + 1u) / 2u;
            let m = mass_at_least(lid, mid, zmax);
            if (m >= goal) {
                lo = mid;
            } else {
                hi = max(mid, 1u) - 1u;
            }
            lo = min(lo, hi);
        }
        tp = lo;
    }
    // (4) Gumbel-max over the kept set {key(z) >= tp, w >= min_p}.
    let s_lo = p.step_lo + d;
    let s_hi = p.step_hi + select(0u, 1u, s_lo < p.step_lo);
    let h0 = pcg(s_lo ^ pcg(s_hi ^ pcg(p.seed_lo ^ pcg(p.seed_hi))));
    var gv = -3.4e38;
    var gi = NONE;
    var kept_mass = 0.0;
    var kept = 0.0;
    for (var j = lid; j < p.n; j += WG) {
        let z = logits[j] * p.inv_temp;
        let w = exp(z - zmax);
        if (key(z) >= tp && w >= p.min_p) {
            kept_mass += w;
            kept += 1.0;
            let g = z - log(exponential(pcg(pcg(j ^ h0) + h0)));
            if (g > gv || gi == NONE) {
                gv = g;
                gi = j;
            }
        }
    }
    let id = argmax_all(lid, gv, gi);
    let m_kept = sum_all(lid, kept_mass);
    let n_kept = sum_all(lid, kept);
    if (lid == 0u) {
        let zid = logits[id] * p.inv_temp - zmax;
        out[d * 4u] = id;
        out[d * 4u + 1u] = bitcast<u32>(zid - log(m_kept));
        out[d * 4u + 2u] = bitcast<u32>(zid - log(mass_all));
        out[d * 4u + 3u] = u32(n_kept);
    }
}
