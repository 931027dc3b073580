// Token sampling on the GPU: one 256-thread workgroup per draw reads one row of n logits and
// writes [id, log p filtered, log p plain, kept count] (4 words), so decoding reads back a few
// bytes instead of a vocabulary row. Draw d of a dispatch uses step + d (batched draws), or
// with p.rows its own row, seed and step (a decoding step's rows, see Params).
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
    // 0: every draw samples the one row, draw d with counter step + d. 1: draw d samples row
    // keys[5d] of the logits [rows, n] with seed keys[5d + 1 ..= 2] and counter keys[5d + 3 ..= 4]
    // (lo, hi): a decoding step's rows in one dispatch.
    rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [n]
@group(0) @binding(2) var<storage, read_write> out: array<u32>;   // [draws, 4]
@group(0) @binding(3) var<storage, read> keys: array<u32>;        // [draws, 5] with p.rows

const WG: u32 = 256u;
const RED_WG: u32 = WG; // reduce.wgsl / reduce_subgroup.wgsl (and reduce_common.wgsl), prepended
const NONE: u32 = 0xffffffffu;

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

// Count (as f32) of tokens with order_key(z) >= t.
fn count_at_least(ln: Lane, base: u32, t: u32) -> f32 {
    var c = 0.0;
    for (var j = ln.lid; j < p.n; j += WG) {
        if (order_key(logits[base + j] * p.inv_temp) >= t) {
            c += 1.0;
        }
    }
    return wg_sum(ln, c);
}

// Mass Σ w of tokens with order_key(z) >= t.
fn mass_at_least(ln: Lane, base: u32, t: u32, zmax: f32) -> f32 {
    var s = 0.0;
    for (var j = ln.lid; j < p.n; j += WG) {
        let z = logits[base + j] * p.inv_temp;
        if (order_key(z) >= t) {
            s += exp(z - zmax);
        }
    }
    return wg_sum(ln, s);
}

@compute @workgroup_size(256)
fn sample(ln: Lane) {
    let lid = ln.lid;
    let d = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (d >= p.draws) {
        return;
    }
    var base = 0u;
    var seed = vec2<u32>(p.seed_lo, p.seed_hi);
    var s_lo = p.step_lo + d;
    var s_hi = p.step_hi + select(0u, 1u, s_lo < p.step_lo);
    if (p.rows != 0u) {
        base = keys[5u * d] * p.n;
        seed = vec2<u32>(keys[5u * d + 1u], keys[5u * d + 2u]);
        s_lo = keys[5u * d + 3u];
        s_hi = keys[5u * d + 4u];
    }
    // (1) argmax of the raw logits; inv_temp > 0 keeps the order.
    var bv = -3.4e38;
    var bi = NONE;
    for (var j = ln.lid; j < p.n; j += WG) {
        let v = logits[base + j];
        if (v > bv || bi == NONE) {
            bv = v;
            bi = j;
        }
    }
    let top = wg_argmax(ln, bv, bi);
    let zmax = logits[base + top] * p.inv_temp;
    var s_all = 0.0;
    for (var j = ln.lid; j < p.n; j += WG) {
        s_all += exp(logits[base + j] * p.inv_temp - zmax);
    }
    let mass_all = wg_sum(ln, s_all);
    if (p.greedy != 0u) {
        if (lid == 0u) {
            out[d * 4u] = top;
            out[d * 4u + 1u] = bitcast<u32>(0.0);
            out[d * 4u + 2u] = bitcast<u32>(-log(mass_all));
            out[d * 4u + 3u] = 1u;
        }
        return;
    }
    let kmax = order_key(zmax);
    // (2) top-k: the largest key t with count(key >= t) >= k.
    var tk = 0u;
    if (p.top_k > 0u && p.top_k < p.n) {
        var lo = 0u;
        var hi = kmax;
        for (var it = 0u; it < 32u; it++) {
            let mid = lo + (hi - lo + 1u) / 2u;
            let c = count_at_least(ln, base, mid);
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
        let goal = p.top_p * mass_at_least(ln, base, tk, zmax);
        var lo = tk;
        var hi = kmax;
        for (var it = 0u; it < 32u; it++) {
            let mid = lo + (hi - lo + 1u) / 2u;
            let m = mass_at_least(ln, base, mid, zmax);
            if (m >= goal) {
                lo = mid;
            } else {
                hi = max(mid, 1u) - 1u;
            }
            lo = min(lo, hi);
        }
        tp = lo;
    }
    // (4) Gumbel-max over the kept set {order_key(z) >= tp, w >= min_p}.
    let h0 = pcg(s_lo ^ pcg(s_hi ^ pcg(seed.x ^ pcg(seed.y))));
    var gv = -3.4e38;
    var gi = NONE;
    var kept_mass = 0.0;
    var kept = 0.0;
    for (var j = ln.lid; j < p.n; j += WG) {
        let z = logits[base + j] * p.inv_temp;
        let w = exp(z - zmax);
        if (order_key(z) >= tp && w >= p.min_p) {
            kept_mass += w;
            kept += 1.0;
            let g = z - log(exponential(pcg(pcg(j ^ h0) + h0)));
            if (g > gv || gi == NONE) {
                gv = g;
                gi = j;
            }
        }
    }
    let id = wg_argmax(ln, gv, gi);
    let m_kept = wg_sum(ln, kept_mass);
    let n_kept = wg_sum(ln, kept);
    if (lid == 0u) {
        let zid = logits[base + id] * p.inv_temp - zmax;
        out[d * 4u] = id;
        out[d * 4u + 1u] = bitcast<u32>(zid - log(m_kept));
        out[d * 4u + 2u] = bitcast<u32>(zid - log(mass_all));
        out[d * 4u + 3u] = u32(n_kept);
    }
}
