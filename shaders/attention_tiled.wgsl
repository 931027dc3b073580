// Attention, forward and backward, one thread per row: a 64-thread workgroup takes 64 queries
// (or, for dk / dv, 64 keys) of one head, and walks the other side in tiles staged through
// workgroup memory, so a barrier pair serves 64 rows × a tile instead of one row × a block as
// in attention.wgsl. Each thread keeps its rows (q, the output accumulator, ...) in private
// arrays. Same parameters, bindings, masks (causal, packed training, batched decoding) and
// results as attention.wgsl; the host picks these when head_dim is a multiple of 8 up to 128
// and the walk stays under llvmpipe's cap on loop iterations per invocation (65,535, see
// attention.wgsl): rows are read two vec4s per iteration to halve the count.
// head_dim 64 takes the paths at the end of the file instead (4 query rows, or for dk / dv 4
// key rows, a thread in registers, the other side split between threads; see there), 3-6x
// faster on llvmpipe.
//
// Sliding window (p.window > 0, see attention.wgsl): the visible keys of each query are masked
// with the window's lower bounds (key_lows), and the walks start at the workgroup's first key
// in a window (forward, dq) or stop at its last query in one, a prompt key's queries segment by
// segment (dk / dv): so a window only shortens them.

struct Params {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd: u32,
    p0: u32,
    scale: f32,
    prefix: u32,
    packed: u32,
    window: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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

// The head_dim-64 paths (4 rows a thread in registers, below) run only where the host says
// so: CPU devices, whose loads go lane by lane; a real GPU would spill those registers.
override ROWS_IN_REGISTERS: bool = false;
// The forward's lanes form (`attention_hd64_lanes`): where ROWS_IN_REGISTERS and subgroups are
// 8 invocations in order (SUBGROUP8 on a CPU device: lavapipe), the 8 of a subgroup, which walk
// the same keys, load each key row once between them and pass it on by broadcasts: a row's 16
// loads (lane by lane on lavapipe) become 2.
override KV_LANES: bool = false;
const RED_WG: u32 = 64u; // reduce.wgsl / reduce_subgroup.wgsl (lane8_broadcast), prepended at build

const WG: u32 = 64u;
const MAX_HD4: u32 = 32u; // head_dim 128
// Each staged tile: 1024 floats (4 KiB), 1024 / head_dim rows.
const TILE4: u32 = 256u;
var<workgroup> tile_a: array<vec4<f32>, TILE4>;
var<workgroup> tile_b: array<vec4<f32>, TILE4>;
var<workgroup> tile_s: array<vec2<f32>, 64>;
var<workgroup> tile_pos: array<u32, 64>;
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
    window: u32,
}

fn dims(z: u32) -> Dims {
    return Dims(p.t + z, p.heads + z, p.kv_heads + z, p.hd / 4u + z, p.p0 + z, p.prefix + z,
                p.packed + z, p.window + z);
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

// The window's start in each range: [lows.x, kr.x) and [lows.y, kr.z) (see attention.wgsl).
fn key_lows(d: Dims, kr: vec3<u32>) -> vec2<u32> {
    if (d.window == 0u) {
        return vec2<u32>(0u, kr.y);
    }
    let reach = kr.x + kr.z - kr.y; // the query's position + 1
    let lo1 = select(0u, reach - d.window, reach > d.window);
    let lo2 = select(0u, kr.z - d.window, kr.z > d.window);
    return vec2<u32>(min(lo1, kr.x), max(kr.y, lo2));
}

fn sees(kr: vec3<u32>, lows: vec2<u32>, key: u32) -> bool {
    return (key >= lows.x && key < kr.x) || (key >= lows.y && key < kr.z);
}

// The first key a query sees (its ranges from key_lows).
fn first_key(kr: vec3<u32>, lows: vec2<u32>) -> u32 {
    return select(lows.y, lows.x, lows.x < kr.x);
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

// Where the walk over keys starts: 0 without a window (as ever), else the workgroup's first key
// in a window; `first` is u32 max in a thread without a query. Uniform.
fn walk_start(d: Dims, lid: u32, first: u32) -> u32 {
    var k0 = 0u;
    if (d.window != 0u) {
        k0 = ~workgroup_max(lid, ~first);
    }
    return k0;
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

// Row helpers over the staged tiles, two vec4s an iteration (head_dim % 8 == 0).
alias Row = array<vec4<f32>, MAX_HD4>;

fn sum4(v: vec4<f32>) -> f32 {
    return v.x + v.y + v.z + v.w;
}

// x · tile_a row at `base`.
fn dot_a(x: ptr<function, Row>, base: u32, hd4: u32) -> f32 {
    var a = vec4<f32>(0.0);
    for (var c = 0u; c < hd4; c += 2u) {
        a += (*x)[c] * tile_a[base + c] + (*x)[c + 1u] * tile_a[base + c + 1u];
    }
    return sum4(a);
}

// (x · tile_a row, y · tile_b row) at `base`, in one walk.
fn dot_ab(x: ptr<function, Row>, y: ptr<function, Row>, base: u32, hd4: u32) -> vec2<f32> {
    var a = vec4<f32>(0.0);
    var g = vec4<f32>(0.0);
    for (var c = 0u; c < hd4; c += 2u) {
        a += (*x)[c] * tile_a[base + c] + (*x)[c + 1u] * tile_a[base + c + 1u];
        g += (*y)[c] * tile_b[base + c] + (*y)[c + 1u] * tile_b[base + c + 1u];
    }
    return vec2<f32>(sum4(a), sum4(g));
}

// acc_a += wa · tile_a row and acc_b += wb · tile_b row at `base`, in one walk.
fn axpy_ab(acc_a: ptr<function, Row>, wa: f32, acc_b: ptr<function, Row>, wb: f32, base: u32,
           hd4: u32) {
    for (var c = 0u; c < hd4; c += 2u) {
        (*acc_a)[c] += wa * tile_a[base + c];
        (*acc_a)[c + 1u] += wa * tile_a[base + c + 1u];
        (*acc_b)[c] += wb * tile_b[base + c];
        (*acc_b)[c + 1u] += wb * tile_b[base + c + 1u];
    }
}

// acc += w · tile_a row at `base`.
fn axpy_a(acc: ptr<function, Row>, w: f32, base: u32, hd4: u32) {
    for (var c = 0u; c < hd4; c += 2u) {
        (*acc)[c] += w * tile_a[base + c];
        (*acc)[c + 1u] += w * tile_a[base + c + 1u];
    }
}

// acc += w · tile_b row at `base`.
fn axpy_b(acc: ptr<function, Row>, w: f32, base: u32, hd4: u32) {
    for (var c = 0u; c < hd4; c += 2u) {
        (*acc)[c] += w * tile_b[base + c];
        (*acc)[c + 1u] += w * tile_b[base + c + 1u];
    }
}

// The workgroup's head and this thread's query: `blocks` blocks of 64 queries per head.
struct QueryRow {
    h: u32,
    i: u32,
    live: bool,
}

fn query_row(b: u32, blocks: u32, lid: u32, t: u32) -> QueryRow {
    let i = (b % blocks) * WG + lid;
    return QueryRow(b / blocks, i, i < t);
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
    if (ROWS_IN_REGISTERS && d.hd4 == 16u) {
        if (KV_LANES) {
            attention_hd64_lanes(d, lid, b); // uniform
        } else {
            attention_hd64(d, lid, b); // uniform
        }
        return;
    }
    let row = query_row(b, blocks, lid, d.t);
    let h = row.h;
    let i = row.i;
    let live = row.live;
    let kvh = h / (d.heads / d.kv_heads);
    let qb = (i * d.heads + h) * d.hd4;
    var qr: Row;
    var acc: Row;
    var kr = vec3<u32>(0u);
    var lows = vec2<u32>(0u);
    var first = 0xffffffffu;
    if (live) {
        kr = key_ranges(d, i);
        lows = key_lows(d, kr);
        first = first_key(kr, lows);
        for (var c = 0u; c < d.hd4; c++) {
            qr[c] = q[qb + c] * p.scale;
            acc[c] = vec4<f32>(0.0);
        }
    }
    let kmax = workgroup_max(lid, kr.z);
    let kmin = walk_start(d, lid, first);
    let per_tile = min(TILE4 / d.hd4, 64u);
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = kmin; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            // Scores of the tile's visible keys, then one rescale of the accumulator.
            var s: array<f32, 64>;
            var tile_m = -3.0e38;
            for (var j = 0u; j < n; j++) {
                s[j] = -3.0e38;
                if (sees(kr, lows, k0 + j)) {
                    s[j] = dot_a(&qr, j * d.hd4, d.hd4);
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
                        axpy_b(&acc, w, j * d.hd4, d.hd4);
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
    if (ROWS_IN_REGISTERS && d.hd4 == 16u) {
        attention_backward_q_hd64(d, lid, b); // uniform
        return;
    }
    let row = query_row(b, blocks, lid, d.t);
    let h = row.h;
    let i = row.i;
    let live = row.live;
    let kvh = h / (d.heads / d.kv_heads);
    let qb = (i * d.heads + h) * d.hd4;
    var qr: Row;
    var gr: Row; // dout
    var acc: Row; // dq
    var kr = vec3<u32>(0u);
    var lows = vec2<u32>(0u);
    var first = 0xffffffffu;
    var dsum = 0.0;
    if (live) {
        kr = key_ranges(d, i);
        lows = key_lows(d, kr);
        first = first_key(kr, lows);
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
    let kmin = walk_start(d, lid, first);
    let per_tile = min(TILE4 / d.hd4, 64u);
    // lse over the visible keys.
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = kmin; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            for (var j = 0u; j < n; j++) {
                if (sees(kr, lows, k0 + j)) {
                    let s = dot_a(&qr, j * d.hd4, d.hd4);
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
    for (var k0 = kmin; k0 < kmax; k0 += per_tile) {
        let n = min(per_tile, kmax - k0);
        stage_kv(d, lid, k0, n, kvh);
        workgroupBarrier();
        if (live) {
            for (var j = 0u; j < n; j++) {
                if (sees(kr, lows, k0 + j)) {
                    let base = j * d.hd4;
                    let sg = dot_ab(&qr, &gr, base, d.hd4);
                    let pr = exp(sg.x - lse);
                    axpy_a(&acc, pr * (sg.y - dsum) * p.scale, base, d.hd4);
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
// that see the key, the pairs staged in tiles (q in tile_a, dout in tile_b, stats in tile_s,
// with a window the query's position in tile_pos).
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
    if (ROWS_IN_REGISTERS && d.hd4 == 16u) {
        attention_backward_kv_hd64(d, lid, b); // uniform
        return;
    }
    let kvh = b / blocks;
    let j0 = (b % blocks) * WG;
    let j = j0 + lid;
    let live = j < d.t;
    let group = d.heads / d.kv_heads;
    let kb = (j * d.kv_heads + kvh) * d.hd4;
    var kr: Row;
    var vr: Row;
    var gk: Row;
    var gv: Row;
    // The queries that see key j: j .. end, and with a window those at positions below the
    // key's + W. Before `first_end` they are contiguous; a prompt key's (in a packed sequence)
    // then continue with the first `reach` queries of each completion's segment.
    var end = 0u;
    var first_end = 0u;
    var reach = 0u;
    var kpos = j;
    if (live) {
        end = d.t;
        if (d.packed != 0u) {
            end = spans[2u * j + 1u];
            if (j >= d.prefix) {
                kpos = d.prefix + j - spans[2u * j];
            }
        }
        first_end = end;
        if (d.window != 0u) {
            first_end = min(end, j + d.window);
            if (d.packed != 0u && j < d.prefix) {
                first_end = min(first_end, d.prefix);
                if (j + d.window > d.prefix) {
                    reach = j + d.window - d.prefix;
                }
            }
        }
        for (var c = 0u; c < d.hd4; c++) {
            kr[c] = kc[kb + c] * p.scale;
            vr[c] = vc[kb + c];
            gk[c] = vec4<f32>(0.0);
            gv[c] = vec4<f32>(0.0);
        }
    }
    // The walk: queries j0 .. qmax, then (a window over prompt keys) the first reach_all
    // queries of each segment that start past qmax, segment after segment.
    let qmax = workgroup_max(lid, first_end);
    var reach_all = 0u;
    if (d.window != 0u) {
        reach_all = workgroup_max(lid, reach);
    }
    var seg = d.t;
    if (reach_all != 0u) {
        seg = d.prefix;
    }
    var qa = j0;
    var qe = qmax;
    let per_tile = min(TILE4 / d.hd4, 64u);
    loop {
        // Pairs (query i ≥ qa, head g of the group), numbered (i - qa) * group + g.
        let pairs = select(0u, (qe - qa) * group, qe > qa);
        for (var e0 = 0u; e0 < pairs; e0 += per_tile) {
            let n = min(per_tile, pairs - e0);
            for (var e = lid; e < n * d.hd4; e += WG) {
                let pe = e0 + e / d.hd4;
                let row = (qa + pe / group) * d.heads + kvh * group + pe % group;
                tile_a[e] = q[row * d.hd4 + e % d.hd4];
                tile_b[e] = dout[row * d.hd4 + e % d.hd4];
            }
            if (lid < n) {
                let pe = e0 + lid;
                let qi = qa + pe / group;
                let row = qi * d.heads + kvh * group + pe % group;
                tile_s[lid] = vec2<f32>(stats[2u * row], stats[2u * row + 1u]);
                if (d.window != 0u) {
                    var qpos = qi;
                    if (d.packed != 0u && qi >= d.prefix) {
                        qpos = d.prefix + qi - spans[2u * qi];
                    }
                    tile_pos[lid] = qpos;
                }
            }
            workgroupBarrier();
            if (live) {
                for (var e = 0u; e < n; e++) {
                    let i = qa + (e0 + e) / group;
                    if (i >= j && i < end && (d.window == 0u || tile_pos[e] < kpos + d.window)) {
                        let base = e * d.hd4;
                        let sg = dot_ab(&kr, &vr, base, d.hd4);
                        let st = tile_s[e];
                        let pr = exp(sg.x - st.x);
                        axpy_ab(&gk, pr * (sg.y - st.y) * p.scale, &gv, pr, base, d.hd4);
                    }
                }
            }
            workgroupBarrier();
        }
        if (seg >= d.t) {
            break;
        }
        let seg_end = clamp(spans[2u * seg + 1u], seg + 1u, d.t);
        qa = max(seg, qmax);
        qe = min(seg_end, seg + reach_all);
        seg = seg_end;
    }
    if (live) {
        for (var c = 0u; c < d.hd4; c++) {
            dk[kb + c] = gk[c];
            dv[kb + c] = gv[c];
        }
    }
}

// The head_dim-64 paths (attention_hd64, attention_backward_q_hd64, attention_backward_kv_hd64)
// are in shaders/attention_tiled_hd64.wgsl, generated, and joined to this file as one module.
