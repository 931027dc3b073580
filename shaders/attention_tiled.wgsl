// Attention, forward and backward, one thread per row: a 64-thread workgroup takes 64 queries
// (or, for dk / dv, 64 keys) of one head, and walks the other side in tiles staged through
// workgroup memory, so a barrier pair serves 64 rows × a tile instead of one row × a block as
// in attention.wgsl. Each thread keeps its rows (q, the output accumulator, ...) in private
// arrays. Same parameters, bindings, masks (causal, packed training, batched decoding) and
// results as attention.wgsl; the host picks these when head_dim is a multiple of 8 up to 128
// and the walk stays under llvmpipe's cap on loop iterations per invocation (65,535, see
// attention.wgsl): rows are read two vec4s per iteration to halve the count.

struct Params {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd: u32,
    p0: u32,
    scale: f32,
    prefix: u32,
    packed: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> spans: array<u32>;

const WG: u32 = 64u;
const MAX_HD4: u32 = 32u; // head_dim 128
// Each staged tile: 1024 floats (4 KiB), 1024 / head_dim rows.
const TILE4: u32 = 256u;
var<workgroup> tile_a: array<vec4<f32>, TILE4>;
var<workgroup> tile_b: array<vec4<f32>, TILE4>;
var<workgroup> tile_s: array<vec2<f32>, 64>;
var<workgroup> reach: array<u32, WG>;
var<workgroup> reach_max: u32;

// Reading the parameters through the workgroup's z id (always 0) keeps lavapipe from
// re-JITting the shader per dispatch (see matmul_common.wgsl); `let` copies stay uniform.
struct Dims {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd4: u32,
    p0: u32,
    prefix: u32,
    packed: u32,
}

fn dims(z: u32) -> Dims {
    return Dims(p.t + z, p.heads + z, p.kv_heads + z, p.hd / 4u + z, p.p0 + z, p.prefix + z,
                p.packed + z);
}

// The keys query t sees: [0, x) and [y, z) (see attention.wgsl).
fn key_ranges(d: Dims, t: u32) -> vec3<u32> {
    var seg0 = 0u;
    var end = d.p0 + t + 1u;
    if (d.packed != 0u) {
        seg0 = spans[2u * t];
    }
    if (d.packed == 2u) {
        end = spans[2u * t + 1u];
    }
    return vec3<u32>(min(d.prefix, seg0), seg0, end);
}

fn sees(kr: vec3<u32>, key: u32) -> bool {
    return key < kr.x || (key >= kr.y && key < kr.z);
}

// The largest of the workgroup's `mine`, the same value in every thread.
fn workgroup_max(lid: u32, mine: u32) -> u32 {
    reach[lid] = mine;
    workgroupBarrier();
    if (lid == 0u) {
        var m = 0u;
        for (var i = 0u; i < WG; i++) {
            m = max(m, reach[i]);
        }
        reach_max = m;
    }
    return workgroupUniformLoad(&reach_max);
}

// Stages keys k0 .. k0 + n of kv head kvh into tile_a (k) and tile_b (v), hd4 vec4s a row.
fn stage_kv(d: Dims, lid: u32, k0: u32, n: u32, kvh: u32) {
    for (var e = lid; e < n * d.hd4; e += WG) {
        let j = e / d.hd4;
        let c = e % d.hd4;
        let src = ((k0 + j) * d.kv_heads + kvh) * d.hd4 + c;
        tile_a[e] = kc[src];
        tile_b[e] = vc[src];
    }
}

// ---- forward: out = softmax(scale q kᵀ) v over the visible keys ----------------------------

@compute @workgroup_size(64)
fn attention_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let d = dims(wg.z);
    let blocks = (d.t + WG - 1u) / WG;
    let b = wg.y * nwg.x + wg.x;
    if (b >= blocks * d.heads) {
        return; // uniform per workgroup
    }
    let h = b / blocks;
    let i = (b % blocks) * WG + lid;
    let live = i < d.t;
    let kvh = h / (d.heads / d.kv_heads);
    let qb = (i * d.heads + h) * d.hd4;
    var qr: array<vec4<f32>, MAX_HD4>;
    var acc: array<vec4<f32>, MAX_HD4>;
    var kr = vec3<u32>(0u);
    if (live) {
        kr = key_ranges(d, i);
        for (var c = 0u; c < d.hd4; c++) {
            qr[c] = q[qb + c] * p.scale;
            acc[c] = vec4<f32>(0.0);
        }
    }
    let kmax = workgroup_max(lid, kr.z);
    let per_tile = min(TILE4 / d.hd4, 64u);
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = 0u; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            // Scores of the tile's visible keys, then one rescale of the accumulator.
            var s: array<f32, 64>;
            var tile_m = -3.0e38;
            for (var j = 0u; j < n; j++) {
                s[j] = -3.0e38;
                if (sees(kr, k0 + j)) {
                    var a = vec4<f32>(0.0);
                    let base = j * d.hd4;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        a += qr[c] * tile_a[base + c] + qr[c + 1u] * tile_a[base + c + 1u];
                    }
                    s[j] = a.x + a.y + a.z + a.w;
                    tile_m = max(tile_m, s[j]);
                }
            }
            if (tile_m > -1.0e38) {
                let m_new = max(m, tile_m);
                let corr = exp(m - m_new);
                l *= corr;
                for (var c = 0u; c < d.hd4; c++) {
                    acc[c] *= corr;
                }
                for (var j = 0u; j < n; j++) {
                    if (s[j] > -1.0e38) {
                        let w = exp(s[j] - m_new);
                        l += w;
                        let base = j * d.hd4;
                        for (var c = 0u; c < d.hd4; c += 2u) {
                            acc[c] += w * tile_b[base + c];
                            acc[c + 1u] += w * tile_b[base + c + 1u];
                        }
                    }
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if (live) {
        for (var c = 0u; c < d.hd4; c++) {
            out[qb + c] = acc[c] / l;
        }
    }
}

// ---- backward (training; p0 = 0): see attention.wgsl for the formulas ----------------------

// Pass 1, a thread per (query, head): stats = (lse, D = dout · out), then dq.
@compute @workgroup_size(64)
fn attention_tiled_backward_q(@builtin(workgroup_id) wg: vec3<u32>,
                              @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let d = dims(wg.z);
    let blocks = (d.t + WG - 1u) / WG;
    let b = wg.y * nwg.x + wg.x;
    if (b >= blocks * d.heads) {
        return; // uniform per workgroup
    }
    let h = b / blocks;
    let i = (b % blocks) * WG + lid;
    let live = i < d.t;
    let kvh = h / (d.heads / d.kv_heads);
    let qb = (i * d.heads + h) * d.hd4;
    var qr: array<vec4<f32>, MAX_HD4>;
    var gr: array<vec4<f32>, MAX_HD4>; // dout
    var acc: array<vec4<f32>, MAX_HD4>; // dq
    var kr = vec3<u32>(0u);
    var dsum = 0.0;
    if (live) {
        kr = key_ranges(d, i);
        var a = vec4<f32>(0.0);
        for (var c = 0u; c < d.hd4; c++) {
            qr[c] = q[qb + c] * p.scale;
            gr[c] = dout[qb + c];
            acc[c] = vec4<f32>(0.0);
            a += gr[c] * o[qb + c];
        }
        dsum = a.x + a.y + a.z + a.w;
    }
    let kmax = workgroup_max(lid, kr.z);
    let per_tile = min(TILE4 / d.hd4, 64u);
    // lse over the visible keys.
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = 0u; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            for (var j = 0u; j < n; j++) {
                if (sees(kr, k0 + j)) {
                    var a = vec4<f32>(0.0);
                    let base = j * d.hd4;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        a += qr[c] * tile_a[base + c] + qr[c + 1u] * tile_a[base + c + 1u];
                    }
                    let s = a.x + a.y + a.z + a.w;
                    let m_new = max(m, s);
                    l = l * exp(m - m_new) + exp(s - m_new);
                    m = m_new;
                }
            }
        }
        workgroupBarrier();
    }
    let lse = m + log(l);
    if (live) {
        stats[2u * (i * d.heads + h)] = lse;
        stats[2u * (i * d.heads + h) + 1u] = dsum;
    }
    // dq = scale Σ_j P_ij (dout_i · v_j - D_i) k_j.
    for (var k0 = 0u; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            for (var j = 0u; j < n; j++) {
                if (sees(kr, k0 + j)) {
                    var a = vec4<f32>(0.0);
                    var g = vec4<f32>(0.0);
                    let base = j * d.hd4;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        a += qr[c] * tile_a[base + c] + qr[c + 1u] * tile_a[base + c + 1u];
                        g += gr[c] * tile_b[base + c] + gr[c + 1u] * tile_b[base + c + 1u];
                    }
                    let pr = exp(a.x + a.y + a.z + a.w - lse);
                    let ds = pr * (g.x + g.y + g.z + g.w - dsum) * p.scale;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        acc[c] += ds * tile_a[base + c];
                        acc[c + 1u] += ds * tile_a[base + c + 1u];
                    }
                }
            }
        }
        workgroupBarrier();
    }
    if (live) {
        for (var c = 0u; c < d.hd4; c++) {
            dq[qb + c] = acc[c];
        }
    }
}

// Pass 2, a thread per (key, kv head): dk and dv over the (query, head of the group) pairs
// that see the key, the pairs staged in tiles (q in tile_a, dout in tile_b, stats in tile_s).
@compute @workgroup_size(64)
fn attention_tiled_backward_kv(@builtin(workgroup_id) wg: vec3<u32>,
                               @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
    let d = dims(wg.z);
    let blocks = (d.t + WG - 1u) / WG;
    let b = wg.y * nwg.x + wg.x;
    if (b >= blocks * d.kv_heads) {
        return; // uniform per workgroup
    }
    let kvh = b / blocks;
    let j0 = (b % blocks) * WG;
    let j = j0 + lid;
    let live = j < d.t;
    let group = d.heads / d.kv_heads;
    let kb = (j * d.kv_heads + kvh) * d.hd4;
    var kr: array<vec4<f32>, MAX_HD4>;
    var vr: array<vec4<f32>, MAX_HD4>;
    var gk: array<vec4<f32>, MAX_HD4>;
    var gv: array<vec4<f32>, MAX_HD4>;
    // The queries that see key j: j .. end.
    var end = 0u;
    if (live) {
        end = d.t;
        if (d.packed != 0u) {
            end = spans[2u * j + 1u];
        }
        for (var c = 0u; c < d.hd4; c++) {
            kr[c] = kc[kb + c] * p.scale;
            vr[c] = vc[kb + c];
            gk[c] = vec4<f32>(0.0);
            gv[c] = vec4<f32>(0.0);
        }
    }
    let qmax = workgroup_max(lid, end);
    // Pairs (query i ≥ j0, head g of the group), numbered (i - j0) * group + g.
    let per_tile = min(TILE4 / d.hd4, 64u);
    let pairs = select(0u, (qmax - j0) * group, qmax > j0);
    for (var e0 = 0u; e0 < pairs; e0 += per_tile) {
        let n = min(per_tile, pairs - e0);
        for (var e = lid; e < n * d.hd4; e += WG) {
            let pe = e0 + e / d.hd4;
            let row = (j0 + pe / group) * d.heads + kvh * group + pe % group;
            tile_a[e] = q[row * d.hd4 + e % d.hd4];
            tile_b[e] = dout[row * d.hd4 + e % d.hd4];
        }
        if (lid < n) {
            let pe = e0 + lid;
            let row = (j0 + pe / group) * d.heads + kvh * group + pe % group;
            tile_s[lid] = vec2<f32>(stats[2u * row], stats[2u * row + 1u]);
        }
        workgroupBarrier();
        if (live) {
            for (var e = 0u; e < n; e++) {
                let i = j0 + (e0 + e) / group;
                if (i >= j && i < end) {
                    var a = vec4<f32>(0.0);
                    var g = vec4<f32>(0.0);
                    let base = e * d.hd4;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        a += kr[c] * tile_a[base + c] + kr[c + 1u] * tile_a[base + c + 1u];
                        g += vr[c] * tile_b[base + c] + vr[c + 1u] * tile_b[base + c + 1u];
                    }
                    let st = tile_s[e];
                    let pr = exp(a.x + a.y + a.z + a.w - st.x);
                    let ds = pr * (g.x + g.y + g.z + g.w - st.y) * p.scale;
                    for (var c = 0u; c < d.hd4; c += 2u) {
                        gv[c] += pr * tile_b[base + c];
                        gv[c + 1u] += pr * tile_b[base + c + 1u];
                        gk[c] += ds * tile_a[base + c];
                        gk[c + 1u] += ds * tile_a[base + c + 1u];
                    }
                }
            }
        }
        workgroupBarrier();
    }
    if (live) {
        for (var c = 0u; c < d.hd4; c++) {
            dk[kb + c] = gk[c];
            dv[kb + c] = gv[c];
        }
    }
}
