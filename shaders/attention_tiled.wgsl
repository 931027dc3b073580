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
        attention_hd64(d, lid, b); // uniform
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

// ---- head_dim 64: registers, key splits, no per-key barriers -------------------------------
// Why the kernels above are slow on llvmpipe / lavapipe (Mesa 22.3): a workgroup runs as 8-lane
// SIMD batches, and every load from storage or workgroup memory is done lane by lane, even at
// an address uniform over the workgroup (no broadcast), while the private arrays above (indexed
// by a loop counter) live in scratch memory, read and written lane by lane too. Loads, not
// arithmetic, set the time: with the key loads taken out the forward ran ~10x faster.
// So for head_dim 64 (SmolLM2-135M, Qwen2.5-0.5B, ...) each thread holds 4 query rows in named
// registers (4 × 16 vec4s, code unrolled by shaders/gen_attention_hd64.py: regenerate it rather
// than edit it) and every key row it loads serves the 4 queries: a quarter of the loads.
// A workgroup still takes 64 queries of one head (the same dispatch and walk as above): thread
// lid holds queries 16 r + lid % 16 (r < 4) and walks one key split, lid / 16, the groups of 4
// keys k0 + 4 (split + 4 n); the splits' partial results are then merged through tile_a,
// tile_b and tile_s (online softmax: max, rescaled sums). The dk / dv pass likewise: 64 keys of
// a kv head a workgroup, 4 a thread, the (query, head) pairs of the walk above split 4 ways in
// groups of 4, the partial dk, dv summed at the end. Keys are read straight from storage,
// four an iteration with one rescale of the accumulators, and masks are arithmetic (a key a
// row does not see weighs 0), not branches. Same masks, walks (workgroup_max, walk_start) and
// results (up to rounding) as the per-thread kernels above.

fn attention_hd64(d: Dims, lid: u32, b: u32) {
    let blocks = (d.t + 63u) / 64u;
    let h = b / blocks;
    let slot = lid % 16u;
    let split = lid / 16u;
    let ib = (b % blocks) * 64u + slot;
    let kvh = h / (d.heads / d.kv_heads);
    let live0 = ib + 0u < d.t;
    let i0 = min(ib + 0u, d.t - 1u);
    let rb0 = (i0 * d.heads + h) * 16u;
    let kr0 = key_ranges(d, i0);
    let lows0 = key_lows(d, kr0);
    let live1 = ib + 16u < d.t;
    let i1 = min(ib + 16u, d.t - 1u);
    let rb1 = (i1 * d.heads + h) * 16u;
    let kr1 = key_ranges(d, i1);
    let lows1 = key_lows(d, kr1);
    let live2 = ib + 32u < d.t;
    let i2 = min(ib + 32u, d.t - 1u);
    let rb2 = (i2 * d.heads + h) * 16u;
    let kr2 = key_ranges(d, i2);
    let lows2 = key_lows(d, kr2);
    let live3 = ib + 48u < d.t;
    let i3 = min(ib + 48u, d.t - 1u);
    let rb3 = (i3 * d.heads + h) * 16u;
    let kr3 = key_ranges(d, i3);
    let lows3 = key_lows(d, kr3);
    let kmax = workgroup_max(lid, max(max(max(max(0u, select(0u, kr0.z, live0)), select(0u, kr1.z, live1)), select(0u, kr2.z, live2)), select(0u, kr3.z, live3)));
    let kmin = walk_start(d, lid, min(min(min(min(0xffffffffu, select(0xffffffffu, first_key(kr0, lows0), live0)), select(0xffffffffu, first_key(kr1, lows1), live1)), select(0xffffffffu, first_key(kr2, lows2), live2)), select(0xffffffffu, first_key(kr3, lows3), live3)));
    let klast = max(kmax, 1u) - 1u;
    let q0_0 = q[rb0 + 0u] * p.scale;
    let q0_1 = q[rb0 + 1u] * p.scale;
    let q0_2 = q[rb0 + 2u] * p.scale;
    let q0_3 = q[rb0 + 3u] * p.scale;
    let q0_4 = q[rb0 + 4u] * p.scale;
    let q0_5 = q[rb0 + 5u] * p.scale;
    let q0_6 = q[rb0 + 6u] * p.scale;
    let q0_7 = q[rb0 + 7u] * p.scale;
    let q0_8 = q[rb0 + 8u] * p.scale;
    let q0_9 = q[rb0 + 9u] * p.scale;
    let q0_10 = q[rb0 + 10u] * p.scale;
    let q0_11 = q[rb0 + 11u] * p.scale;
    let q0_12 = q[rb0 + 12u] * p.scale;
    let q0_13 = q[rb0 + 13u] * p.scale;
    let q0_14 = q[rb0 + 14u] * p.scale;
    let q0_15 = q[rb0 + 15u] * p.scale;
    let q1_0 = q[rb1 + 0u] * p.scale;
    let q1_1 = q[rb1 + 1u] * p.scale;
    let q1_2 = q[rb1 + 2u] * p.scale;
    let q1_3 = q[rb1 + 3u] * p.scale;
    let q1_4 = q[rb1 + 4u] * p.scale;
    let q1_5 = q[rb1 + 5u] * p.scale;
    let q1_6 = q[rb1 + 6u] * p.scale;
    let q1_7 = q[rb1 + 7u] * p.scale;
    let q1_8 = q[rb1 + 8u] * p.scale;
    let q1_9 = q[rb1 + 9u] * p.scale;
    let q1_10 = q[rb1 + 10u] * p.scale;
    let q1_11 = q[rb1 + 11u] * p.scale;
    let q1_12 = q[rb1 + 12u] * p.scale;
    let q1_13 = q[rb1 + 13u] * p.scale;
    let q1_14 = q[rb1 + 14u] * p.scale;
    let q1_15 = q[rb1 + 15u] * p.scale;
    let q2_0 = q[rb2 + 0u] * p.scale;
    let q2_1 = q[rb2 + 1u] * p.scale;
    let q2_2 = q[rb2 + 2u] * p.scale;
    let q2_3 = q[rb2 + 3u] * p.scale;
    let q2_4 = q[rb2 + 4u] * p.scale;
    let q2_5 = q[rb2 + 5u] * p.scale;
    let q2_6 = q[rb2 + 6u] * p.scale;
    let q2_7 = q[rb2 + 7u] * p.scale;
    let q2_8 = q[rb2 + 8u] * p.scale;
    let q2_9 = q[rb2 + 9u] * p.scale;
    let q2_10 = q[rb2 + 10u] * p.scale;
    let q2_11 = q[rb2 + 11u] * p.scale;
    let q2_12 = q[rb2 + 12u] * p.scale;
    let q2_13 = q[rb2 + 13u] * p.scale;
    let q2_14 = q[rb2 + 14u] * p.scale;
    let q2_15 = q[rb2 + 15u] * p.scale;
    let q3_0 = q[rb3 + 0u] * p.scale;
    let q3_1 = q[rb3 + 1u] * p.scale;
    let q3_2 = q[rb3 + 2u] * p.scale;
    let q3_3 = q[rb3 + 3u] * p.scale;
    let q3_4 = q[rb3 + 4u] * p.scale;
    let q3_5 = q[rb3 + 5u] * p.scale;
    let q3_6 = q[rb3 + 6u] * p.scale;
    let q3_7 = q[rb3 + 7u] * p.scale;
    let q3_8 = q[rb3 + 8u] * p.scale;
    let q3_9 = q[rb3 + 9u] * p.scale;
    let q3_10 = q[rb3 + 10u] * p.scale;
    let q3_11 = q[rb3 + 11u] * p.scale;
    let q3_12 = q[rb3 + 12u] * p.scale;
    let q3_13 = q[rb3 + 13u] * p.scale;
    let q3_14 = q[rb3 + 14u] * p.scale;
    let q3_15 = q[rb3 + 15u] * p.scale;
    var a0_0 = vec4<f32>(0.0);
    var a0_1 = vec4<f32>(0.0);
    var a0_2 = vec4<f32>(0.0);
    var a0_3 = vec4<f32>(0.0);
    var a0_4 = vec4<f32>(0.0);
    var a0_5 = vec4<f32>(0.0);
    var a0_6 = vec4<f32>(0.0);
    var a0_7 = vec4<f32>(0.0);
    var a0_8 = vec4<f32>(0.0);
    var a0_9 = vec4<f32>(0.0);
    var a0_10 = vec4<f32>(0.0);
    var a0_11 = vec4<f32>(0.0);
    var a0_12 = vec4<f32>(0.0);
    var a0_13 = vec4<f32>(0.0);
    var a0_14 = vec4<f32>(0.0);
    var a0_15 = vec4<f32>(0.0);
    var m0 = -3.0e38;
    var l0 = 0.0;
    var a1_0 = vec4<f32>(0.0);
    var a1_1 = vec4<f32>(0.0);
    var a1_2 = vec4<f32>(0.0);
    var a1_3 = vec4<f32>(0.0);
    var a1_4 = vec4<f32>(0.0);
    var a1_5 = vec4<f32>(0.0);
    var a1_6 = vec4<f32>(0.0);
    var a1_7 = vec4<f32>(0.0);
    var a1_8 = vec4<f32>(0.0);
    var a1_9 = vec4<f32>(0.0);
    var a1_10 = vec4<f32>(0.0);
    var a1_11 = vec4<f32>(0.0);
    var a1_12 = vec4<f32>(0.0);
    var a1_13 = vec4<f32>(0.0);
    var a1_14 = vec4<f32>(0.0);
    var a1_15 = vec4<f32>(0.0);
    var m1 = -3.0e38;
    var l1 = 0.0;
    var a2_0 = vec4<f32>(0.0);
    var a2_1 = vec4<f32>(0.0);
    var a2_2 = vec4<f32>(0.0);
    var a2_3 = vec4<f32>(0.0);
    var a2_4 = vec4<f32>(0.0);
    var a2_5 = vec4<f32>(0.0);
    var a2_6 = vec4<f32>(0.0);
    var a2_7 = vec4<f32>(0.0);
    var a2_8 = vec4<f32>(0.0);
    var a2_9 = vec4<f32>(0.0);
    var a2_10 = vec4<f32>(0.0);
    var a2_11 = vec4<f32>(0.0);
    var a2_12 = vec4<f32>(0.0);
    var a2_13 = vec4<f32>(0.0);
    var a2_14 = vec4<f32>(0.0);
    var a2_15 = vec4<f32>(0.0);
    var m2 = -3.0e38;
    var l2 = 0.0;
    var a3_0 = vec4<f32>(0.0);
    var a3_1 = vec4<f32>(0.0);
    var a3_2 = vec4<f32>(0.0);
    var a3_3 = vec4<f32>(0.0);
    var a3_4 = vec4<f32>(0.0);
    var a3_5 = vec4<f32>(0.0);
    var a3_6 = vec4<f32>(0.0);
    var a3_7 = vec4<f32>(0.0);
    var a3_8 = vec4<f32>(0.0);
    var a3_9 = vec4<f32>(0.0);
    var a3_10 = vec4<f32>(0.0);
    var a3_11 = vec4<f32>(0.0);
    var a3_12 = vec4<f32>(0.0);
    var a3_13 = vec4<f32>(0.0);
    var a3_14 = vec4<f32>(0.0);
    var a3_15 = vec4<f32>(0.0);
    var m3 = -3.0e38;
    var l3 = 0.0;
    for (var k = kmin + 4u * split; k < kmax; k += 16u) {
        let b0 = (min(k + 0u, klast) * d.kv_heads + kvh) * 16u;
        let b1 = (min(k + 1u, klast) * d.kv_heads + kvh) * 16u;
        let b2 = (min(k + 2u, klast) * d.kv_heads + kvh) * 16u;
        let b3 = (min(k + 3u, klast) * d.kv_heads + kvh) * 16u;
        let v00 = live0 && sees(kr0, lows0, k + 0u);
        let v01 = live0 && sees(kr0, lows0, k + 1u);
        let v02 = live0 && sees(kr0, lows0, k + 2u);
        let v03 = live0 && sees(kr0, lows0, k + 3u);
        let v10 = live1 && sees(kr1, lows1, k + 0u);
        let v11 = live1 && sees(kr1, lows1, k + 1u);
        let v12 = live1 && sees(kr1, lows1, k + 2u);
        let v13 = live1 && sees(kr1, lows1, k + 3u);
        let v20 = live2 && sees(kr2, lows2, k + 0u);
        let v21 = live2 && sees(kr2, lows2, k + 1u);
        let v22 = live2 && sees(kr2, lows2, k + 2u);
        let v23 = live2 && sees(kr2, lows2, k + 3u);
        let v30 = live3 && sees(kr3, lows3, k + 0u);
        let v31 = live3 && sees(kr3, lows3, k + 1u);
        let v32 = live3 && sees(kr3, lows3, k + 2u);
        let v33 = live3 && sees(kr3, lows3, k + 3u);
        var s00a = vec4<f32>(0.0);
        var s01a = vec4<f32>(0.0);
        var s02a = vec4<f32>(0.0);
        var s03a = vec4<f32>(0.0);
        var s10a = vec4<f32>(0.0);
        var s11a = vec4<f32>(0.0);
        var s12a = vec4<f32>(0.0);
        var s13a = vec4<f32>(0.0);
        var s20a = vec4<f32>(0.0);
        var s21a = vec4<f32>(0.0);
        var s22a = vec4<f32>(0.0);
        var s23a = vec4<f32>(0.0);
        var s30a = vec4<f32>(0.0);
        var s31a = vec4<f32>(0.0);
        var s32a = vec4<f32>(0.0);
        var s33a = vec4<f32>(0.0);
        let sk0_0 = kc[b0 + 0u];
        let sk1_0 = kc[b1 + 0u];
        let sk2_0 = kc[b2 + 0u];
        let sk3_0 = kc[b3 + 0u];
        s00a += q0_0 * sk0_0;
        s01a += q0_0 * sk1_0;
        s02a += q0_0 * sk2_0;
        s03a += q0_0 * sk3_0;
        s10a += q1_0 * sk0_0;
        s11a += q1_0 * sk1_0;
        s12a += q1_0 * sk2_0;
        s13a += q1_0 * sk3_0;
        s20a += q2_0 * sk0_0;
        s21a += q2_0 * sk1_0;
        s22a += q2_0 * sk2_0;
        s23a += q2_0 * sk3_0;
        s30a += q3_0 * sk0_0;
        s31a += q3_0 * sk1_0;
        s32a += q3_0 * sk2_0;
        s33a += q3_0 * sk3_0;
        let sk0_1 = kc[b0 + 1u];
        let sk1_1 = kc[b1 + 1u];
        let sk2_1 = kc[b2 + 1u];
        let sk3_1 = kc[b3 + 1u];
        s00a += q0_1 * sk0_1;
        s01a += q0_1 * sk1_1;
        s02a += q0_1 * sk2_1;
        s03a += q0_1 * sk3_1;
        s10a += q1_1 * sk0_1;
        s11a += q1_1 * sk1_1;
        s12a += q1_1 * sk2_1;
        s13a += q1_1 * sk3_1;
        s20a += q2_1 * sk0_1;
        s21a += q2_1 * sk1_1;
        s22a += q2_1 * sk2_1;
        s23a += q2_1 * sk3_1;
        s30a += q3_1 * sk0_1;
        s31a += q3_1 * sk1_1;
        s32a += q3_1 * sk2_1;
        s33a += q3_1 * sk3_1;
        let sk0_2 = kc[b0 + 2u];
        let sk1_2 = kc[b1 + 2u];
        let sk2_2 = kc[b2 + 2u];
        let sk3_2 = kc[b3 + 2u];
        s00a += q0_2 * sk0_2;
        s01a += q0_2 * sk1_2;
        s02a += q0_2 * sk2_2;
        s03a += q0_2 * sk3_2;
        s10a += q1_2 * sk0_2;
        s11a += q1_2 * sk1_2;
        s12a += q1_2 * sk2_2;
        s13a += q1_2 * sk3_2;
        s20a += q2_2 * sk0_2;
        s21a += q2_2 * sk1_2;
        s22a += q2_2 * sk2_2;
        s23a += q2_2 * sk3_2;
        s30a += q3_2 * sk0_2;
        s31a += q3_2 * sk1_2;
        s32a += q3_2 * sk2_2;
        s33a += q3_2 * sk3_2;
        let sk0_3 = kc[b0 + 3u];
        let sk1_3 = kc[b1 + 3u];
        let sk2_3 = kc[b2 + 3u];
        let sk3_3 = kc[b3 + 3u];
        s00a += q0_3 * sk0_3;
        s01a += q0_3 * sk1_3;
        s02a += q0_3 * sk2_3;
        s03a += q0_3 * sk3_3;
        s10a += q1_3 * sk0_3;
        s11a += q1_3 * sk1_3;
        s12a += q1_3 * sk2_3;
        s13a += q1_3 * sk3_3;
        s20a += q2_3 * sk0_3;
        s21a += q2_3 * sk1_3;
        s22a += q2_3 * sk2_3;
        s23a += q2_3 * sk3_3;
        s30a += q3_3 * sk0_3;
        s31a += q3_3 * sk1_3;
        s32a += q3_3 * sk2_3;
        s33a += q3_3 * sk3_3;
        let sk0_4 = kc[b0 + 4u];
        let sk1_4 = kc[b1 + 4u];
        let sk2_4 = kc[b2 + 4u];
        let sk3_4 = kc[b3 + 4u];
        s00a += q0_4 * sk0_4;
        s01a += q0_4 * sk1_4;
        s02a += q0_4 * sk2_4;
        s03a += q0_4 * sk3_4;
        s10a += q1_4 * sk0_4;
        s11a += q1_4 * sk1_4;
        s12a += q1_4 * sk2_4;
        s13a += q1_4 * sk3_4;
        s20a += q2_4 * sk0_4;
        s21a += q2_4 * sk1_4;
        s22a += q2_4 * sk2_4;
        s23a += q2_4 * sk3_4;
        s30a += q3_4 * sk0_4;
        s31a += q3_4 * sk1_4;
        s32a += q3_4 * sk2_4;
        s33a += q3_4 * sk3_4;
        let sk0_5 = kc[b0 + 5u];
        let sk1_5 = kc[b1 + 5u];
        let sk2_5 = kc[b2 + 5u];
        let sk3_5 = kc[b3 + 5u];
        s00a += q0_5 * sk0_5;
        s01a += q0_5 * sk1_5;
        s02a += q0_5 * sk2_5;
        s03a += q0_5 * sk3_5;
        s10a += q1_5 * sk0_5;
        s11a += q1_5 * sk1_5;
        s12a += q1_5 * sk2_5;
        s13a += q1_5 * sk3_5;
        s20a += q2_5 * sk0_5;
        s21a += q2_5 * sk1_5;
        s22a += q2_5 * sk2_5;
        s23a += q2_5 * sk3_5;
        s30a += q3_5 * sk0_5;
        s31a += q3_5 * sk1_5;
        s32a += q3_5 * sk2_5;
        s33a += q3_5 * sk3_5;
        let sk0_6 = kc[b0 + 6u];
        let sk1_6 = kc[b1 + 6u];
        let sk2_6 = kc[b2 + 6u];
        let sk3_6 = kc[b3 + 6u];
        s00a += q0_6 * sk0_6;
        s01a += q0_6 * sk1_6;
        s02a += q0_6 * sk2_6;
        s03a += q0_6 * sk3_6;
        s10a += q1_6 * sk0_6;
        s11a += q1_6 * sk1_6;
        s12a += q1_6 * sk2_6;
        s13a += q1_6 * sk3_6;
        s20a += q2_6 * sk0_6;
        s21a += q2_6 * sk1_6;
        s22a += q2_6 * sk2_6;
        s23a += q2_6 * sk3_6;
        s30a += q3_6 * sk0_6;
        s31a += q3_6 * sk1_6;
        s32a += q3_6 * sk2_6;
        s33a += q3_6 * sk3_6;
        let sk0_7 = kc[b0 + 7u];
        let sk1_7 = kc[b1 + 7u];
        let sk2_7 = kc[b2 + 7u];
        let sk3_7 = kc[b3 + 7u];
        s00a += q0_7 * sk0_7;
        s01a += q0_7 * sk1_7;
        s02a += q0_7 * sk2_7;
        s03a += q0_7 * sk3_7;
        s10a += q1_7 * sk0_7;
        s11a += q1_7 * sk1_7;
        s12a += q1_7 * sk2_7;
        s13a += q1_7 * sk3_7;
        s20a += q2_7 * sk0_7;
        s21a += q2_7 * sk1_7;
        s22a += q2_7 * sk2_7;
        s23a += q2_7 * sk3_7;
        s30a += q3_7 * sk0_7;
        s31a += q3_7 * sk1_7;
        s32a += q3_7 * sk2_7;
        s33a += q3_7 * sk3_7;
        let sk0_8 = kc[b0 + 8u];
        let sk1_8 = kc[b1 + 8u];
        let sk2_8 = kc[b2 + 8u];
        let sk3_8 = kc[b3 + 8u];
        s00a += q0_8 * sk0_8;
        s01a += q0_8 * sk1_8;
        s02a += q0_8 * sk2_8;
        s03a += q0_8 * sk3_8;
        s10a += q1_8 * sk0_8;
        s11a += q1_8 * sk1_8;
        s12a += q1_8 * sk2_8;
        s13a += q1_8 * sk3_8;
        s20a += q2_8 * sk0_8;
        s21a += q2_8 * sk1_8;
        s22a += q2_8 * sk2_8;
        s23a += q2_8 * sk3_8;
        s30a += q3_8 * sk0_8;
        s31a += q3_8 * sk1_8;
        s32a += q3_8 * sk2_8;
        s33a += q3_8 * sk3_8;
        let sk0_9 = kc[b0 + 9u];
        let sk1_9 = kc[b1 + 9u];
        let sk2_9 = kc[b2 + 9u];
        let sk3_9 = kc[b3 + 9u];
        s00a += q0_9 * sk0_9;
        s01a += q0_9 * sk1_9;
        s02a += q0_9 * sk2_9;
        s03a += q0_9 * sk3_9;
        s10a += q1_9 * sk0_9;
        s11a += q1_9 * sk1_9;
        s12a += q1_9 * sk2_9;
        s13a += q1_9 * sk3_9;
        s20a += q2_9 * sk0_9;
        s21a += q2_9 * sk1_9;
        s22a += q2_9 * sk2_9;
        s23a += q2_9 * sk3_9;
        s30a += q3_9 * sk0_9;
        s31a += q3_9 * sk1_9;
        s32a += q3_9 * sk2_9;
        s33a += q3_9 * sk3_9;
        let sk0_10 = kc[b0 + 10u];
        let sk1_10 = kc[b1 + 10u];
        let sk2_10 = kc[b2 + 10u];
        let sk3_10 = kc[b3 + 10u];
        s00a += q0_10 * sk0_10;
        s01a += q0_10 * sk1_10;
        s02a += q0_10 * sk2_10;
        s03a += q0_10 * sk3_10;
        s10a += q1_10 * sk0_10;
        s11a += q1_10 * sk1_10;
        s12a += q1_10 * sk2_10;
        s13a += q1_10 * sk3_10;
        s20a += q2_10 * sk0_10;
        s21a += q2_10 * sk1_10;
        s22a += q2_10 * sk2_10;
        s23a += q2_10 * sk3_10;
        s30a += q3_10 * sk0_10;
        s31a += q3_10 * sk1_10;
        s32a += q3_10 * sk2_10;
        s33a += q3_10 * sk3_10;
        let sk0_11 = kc[b0 + 11u];
        let sk1_11 = kc[b1 + 11u];
        let sk2_11 = kc[b2 + 11u];
        let sk3_11 = kc[b3 + 11u];
        s00a += q0_11 * sk0_11;
        s01a += q0_11 * sk1_11;
        s02a += q0_11 * sk2_11;
        s03a += q0_11 * sk3_11;
        s10a += q1_11 * sk0_11;
        s11a += q1_11 * sk1_11;
        s12a += q1_11 * sk2_11;
        s13a += q1_11 * sk3_11;
        s20a += q2_11 * sk0_11;
        s21a += q2_11 * sk1_11;
        s22a += q2_11 * sk2_11;
        s23a += q2_11 * sk3_11;
        s30a += q3_11 * sk0_11;
        s31a += q3_11 * sk1_11;
        s32a += q3_11 * sk2_11;
        s33a += q3_11 * sk3_11;
        let sk0_12 = kc[b0 + 12u];
        let sk1_12 = kc[b1 + 12u];
        let sk2_12 = kc[b2 + 12u];
        let sk3_12 = kc[b3 + 12u];
        s00a += q0_12 * sk0_12;
        s01a += q0_12 * sk1_12;
        s02a += q0_12 * sk2_12;
        s03a += q0_12 * sk3_12;
        s10a += q1_12 * sk0_12;
        s11a += q1_12 * sk1_12;
        s12a += q1_12 * sk2_12;
        s13a += q1_12 * sk3_12;
        s20a += q2_12 * sk0_12;
        s21a += q2_12 * sk1_12;
        s22a += q2_12 * sk2_12;
        s23a += q2_12 * sk3_12;
        s30a += q3_12 * sk0_12;
        s31a += q3_12 * sk1_12;
        s32a += q3_12 * sk2_12;
        s33a += q3_12 * sk3_12;
        let sk0_13 = kc[b0 + 13u];
        let sk1_13 = kc[b1 + 13u];
        let sk2_13 = kc[b2 + 13u];
        let sk3_13 = kc[b3 + 13u];
        s00a += q0_13 * sk0_13;
        s01a += q0_13 * sk1_13;
        s02a += q0_13 * sk2_13;
        s03a += q0_13 * sk3_13;
        s10a += q1_13 * sk0_13;
        s11a += q1_13 * sk1_13;
        s12a += q1_13 * sk2_13;
        s13a += q1_13 * sk3_13;
        s20a += q2_13 * sk0_13;
        s21a += q2_13 * sk1_13;
        s22a += q2_13 * sk2_13;
        s23a += q2_13 * sk3_13;
        s30a += q3_13 * sk0_13;
        s31a += q3_13 * sk1_13;
        s32a += q3_13 * sk2_13;
        s33a += q3_13 * sk3_13;
        let sk0_14 = kc[b0 + 14u];
        let sk1_14 = kc[b1 + 14u];
        let sk2_14 = kc[b2 + 14u];
        let sk3_14 = kc[b3 + 14u];
        s00a += q0_14 * sk0_14;
        s01a += q0_14 * sk1_14;
        s02a += q0_14 * sk2_14;
        s03a += q0_14 * sk3_14;
        s10a += q1_14 * sk0_14;
        s11a += q1_14 * sk1_14;
        s12a += q1_14 * sk2_14;
        s13a += q1_14 * sk3_14;
        s20a += q2_14 * sk0_14;
        s21a += q2_14 * sk1_14;
        s22a += q2_14 * sk2_14;
        s23a += q2_14 * sk3_14;
        s30a += q3_14 * sk0_14;
        s31a += q3_14 * sk1_14;
        s32a += q3_14 * sk2_14;
        s33a += q3_14 * sk3_14;
        let sk0_15 = kc[b0 + 15u];
        let sk1_15 = kc[b1 + 15u];
        let sk2_15 = kc[b2 + 15u];
        let sk3_15 = kc[b3 + 15u];
        s00a += q0_15 * sk0_15;
        s01a += q0_15 * sk1_15;
        s02a += q0_15 * sk2_15;
        s03a += q0_15 * sk3_15;
        s10a += q1_15 * sk0_15;
        s11a += q1_15 * sk1_15;
        s12a += q1_15 * sk2_15;
        s13a += q1_15 * sk3_15;
        s20a += q2_15 * sk0_15;
        s21a += q2_15 * sk1_15;
        s22a += q2_15 * sk2_15;
        s23a += q2_15 * sk3_15;
        s30a += q3_15 * sk0_15;
        s31a += q3_15 * sk1_15;
        s32a += q3_15 * sk2_15;
        s33a += q3_15 * sk3_15;
        let s00 = select(-3.0e38, sum4(s00a), v00);
        let s01 = select(-3.0e38, sum4(s01a), v01);
        let s02 = select(-3.0e38, sum4(s02a), v02);
        let s03 = select(-3.0e38, sum4(s03a), v03);
        let mn0 = max(m0, max(max(s00, s01), max(s02, s03)));
        let corr0 = exp(m0 - mn0);
        let w00 = select(0.0, exp(s00 - mn0), v00);
        let w01 = select(0.0, exp(s01 - mn0), v01);
        let w02 = select(0.0, exp(s02 - mn0), v02);
        let w03 = select(0.0, exp(s03 - mn0), v03);
        l0 = l0 * corr0 + ((w00 + w01) + (w02 + w03));
        m0 = mn0;
        let s10 = select(-3.0e38, sum4(s10a), v10);
        let s11 = select(-3.0e38, sum4(s11a), v11);
        let s12 = select(-3.0e38, sum4(s12a), v12);
        let s13 = select(-3.0e38, sum4(s13a), v13);
        let mn1 = max(m1, max(max(s10, s11), max(s12, s13)));
        let corr1 = exp(m1 - mn1);
        let w10 = select(0.0, exp(s10 - mn1), v10);
        let w11 = select(0.0, exp(s11 - mn1), v11);
        let w12 = select(0.0, exp(s12 - mn1), v12);
        let w13 = select(0.0, exp(s13 - mn1), v13);
        l1 = l1 * corr1 + ((w10 + w11) + (w12 + w13));
        m1 = mn1;
        let s20 = select(-3.0e38, sum4(s20a), v20);
        let s21 = select(-3.0e38, sum4(s21a), v21);
        let s22 = select(-3.0e38, sum4(s22a), v22);
        let s23 = select(-3.0e38, sum4(s23a), v23);
        let mn2 = max(m2, max(max(s20, s21), max(s22, s23)));
        let corr2 = exp(m2 - mn2);
        let w20 = select(0.0, exp(s20 - mn2), v20);
        let w21 = select(0.0, exp(s21 - mn2), v21);
        let w22 = select(0.0, exp(s22 - mn2), v22);
        let w23 = select(0.0, exp(s23 - mn2), v23);
        l2 = l2 * corr2 + ((w20 + w21) + (w22 + w23));
        m2 = mn2;
        let s30 = select(-3.0e38, sum4(s30a), v30);
        let s31 = select(-3.0e38, sum4(s31a), v31);
        let s32 = select(-3.0e38, sum4(s32a), v32);
        let s33 = select(-3.0e38, sum4(s33a), v33);
        let mn3 = max(m3, max(max(s30, s31), max(s32, s33)));
        let corr3 = exp(m3 - mn3);
        let w30 = select(0.0, exp(s30 - mn3), v30);
        let w31 = select(0.0, exp(s31 - mn3), v31);
        let w32 = select(0.0, exp(s32 - mn3), v32);
        let w33 = select(0.0, exp(s33 - mn3), v33);
        l3 = l3 * corr3 + ((w30 + w31) + (w32 + w33));
        m3 = mn3;
        let any0 = v00 || v10 || v20 || v30;
        let any1 = v01 || v11 || v21 || v31;
        let any2 = v02 || v12 || v22 || v32;
        let any3 = v03 || v13 || v23 || v33;
        let vv0_0 = select(vec4<f32>(0.0), vc[b0 + 0u], any0);
        let vv1_0 = select(vec4<f32>(0.0), vc[b1 + 0u], any1);
        let vv2_0 = select(vec4<f32>(0.0), vc[b2 + 0u], any2);
        let vv3_0 = select(vec4<f32>(0.0), vc[b3 + 0u], any3);
        a0_0 = a0_0 * corr0 + w00 * vv0_0 + w01 * vv1_0 + w02 * vv2_0 + w03 * vv3_0;
        a1_0 = a1_0 * corr1 + w10 * vv0_0 + w11 * vv1_0 + w12 * vv2_0 + w13 * vv3_0;
        a2_0 = a2_0 * corr2 + w20 * vv0_0 + w21 * vv1_0 + w22 * vv2_0 + w23 * vv3_0;
        a3_0 = a3_0 * corr3 + w30 * vv0_0 + w31 * vv1_0 + w32 * vv2_0 + w33 * vv3_0;
        let vv0_1 = select(vec4<f32>(0.0), vc[b0 + 1u], any0);
        let vv1_1 = select(vec4<f32>(0.0), vc[b1 + 1u], any1);
        let vv2_1 = select(vec4<f32>(0.0), vc[b2 + 1u], any2);
        let vv3_1 = select(vec4<f32>(0.0), vc[b3 + 1u], any3);
        a0_1 = a0_1 * corr0 + w00 * vv0_1 + w01 * vv1_1 + w02 * vv2_1 + w03 * vv3_1;
        a1_1 = a1_1 * corr1 + w10 * vv0_1 + w11 * vv1_1 + w12 * vv2_1 + w13 * vv3_1;
        a2_1 = a2_1 * corr2 + w20 * vv0_1 + w21 * vv1_1 + w22 * vv2_1 + w23 * vv3_1;
        a3_1 = a3_1 * corr3 + w30 * vv0_1 + w31 * vv1_1 + w32 * vv2_1 + w33 * vv3_1;
        let vv0_2 = select(vec4<f32>(0.0), vc[b0 + 2u], any0);
        let vv1_2 = select(vec4<f32>(0.0), vc[b1 + 2u], any1);
        let vv2_2 = select(vec4<f32>(0.0), vc[b2 + 2u], any2);
        let vv3_2 = select(vec4<f32>(0.0), vc[b3 + 2u], any3);
        a0_2 = a0_2 * corr0 + w00 * vv0_2 + w01 * vv1_2 + w02 * vv2_2 + w03 * vv3_2;
        a1_2 = a1_2 * corr1 + w10 * vv0_2 + w11 * vv1_2 + w12 * vv2_2 + w13 * vv3_2;
        a2_2 = a2_2 * corr2 + w20 * vv0_2 + w21 * vv1_2 + w22 * vv2_2 + w23 * vv3_2;
        a3_2 = a3_2 * corr3 + w30 * vv0_2 + w31 * vv1_2 + w32 * vv2_2 + w33 * vv3_2;
        let vv0_3 = select(vec4<f32>(0.0), vc[b0 + 3u], any0);
        let vv1_3 = select(vec4<f32>(0.0), vc[b1 + 3u], any1);
        let vv2_3 = select(vec4<f32>(0.0), vc[b2 + 3u], any2);
        let vv3_3 = select(vec4<f32>(0.0), vc[b3 + 3u], any3);
        a0_3 = a0_3 * corr0 + w00 * vv0_3 + w01 * vv1_3 + w02 * vv2_3 + w03 * vv3_3;
        a1_3 = a1_3 * corr1 + w10 * vv0_3 + w11 * vv1_3 + w12 * vv2_3 + w13 * vv3_3;
        a2_3 = a2_3 * corr2 + w20 * vv0_3 + w21 * vv1_3 + w22 * vv2_3 + w23 * vv3_3;
        a3_3 = a3_3 * corr3 + w30 * vv0_3 + w31 * vv1_3 + w32 * vv2_3 + w33 * vv3_3;
        let vv0_4 = select(vec4<f32>(0.0), vc[b0 + 4u], any0);
        let vv1_4 = select(vec4<f32>(0.0), vc[b1 + 4u], any1);
        let vv2_4 = select(vec4<f32>(0.0), vc[b2 + 4u], any2);
        let vv3_4 = select(vec4<f32>(0.0), vc[b3 + 4u], any3);
        a0_4 = a0_4 * corr0 + w00 * vv0_4 + w01 * vv1_4 + w02 * vv2_4 + w03 * vv3_4;
        a1_4 = a1_4 * corr1 + w10 * vv0_4 + w11 * vv1_4 + w12 * vv2_4 + w13 * vv3_4;
        a2_4 = a2_4 * corr2 + w20 * vv0_4 + w21 * vv1_4 + w22 * vv2_4 + w23 * vv3_4;
        a3_4 = a3_4 * corr3 + w30 * vv0_4 + w31 * vv1_4 + w32 * vv2_4 + w33 * vv3_4;
        let vv0_5 = select(vec4<f32>(0.0), vc[b0 + 5u], any0);
        let vv1_5 = select(vec4<f32>(0.0), vc[b1 + 5u], any1);
        let vv2_5 = select(vec4<f32>(0.0), vc[b2 + 5u], any2);
        let vv3_5 = select(vec4<f32>(0.0), vc[b3 + 5u], any3);
        a0_5 = a0_5 * corr0 + w00 * vv0_5 + w01 * vv1_5 + w02 * vv2_5 + w03 * vv3_5;
        a1_5 = a1_5 * corr1 + w10 * vv0_5 + w11 * vv1_5 + w12 * vv2_5 + w13 * vv3_5;
        a2_5 = a2_5 * corr2 + w20 * vv0_5 + w21 * vv1_5 + w22 * vv2_5 + w23 * vv3_5;
        a3_5 = a3_5 * corr3 + w30 * vv0_5 + w31 * vv1_5 + w32 * vv2_5 + w33 * vv3_5;
        let vv0_6 = select(vec4<f32>(0.0), vc[b0 + 6u], any0);
        let vv1_6 = select(vec4<f32>(0.0), vc[b1 + 6u], any1);
        let vv2_6 = select(vec4<f32>(0.0), vc[b2 + 6u], any2);
        let vv3_6 = select(vec4<f32>(0.0), vc[b3 + 6u], any3);
        a0_6 = a0_6 * corr0 + w00 * vv0_6 + w01 * vv1_6 + w02 * vv2_6 + w03 * vv3_6;
        a1_6 = a1_6 * corr1 + w10 * vv0_6 + w11 * vv1_6 + w12 * vv2_6 + w13 * vv3_6;
        a2_6 = a2_6 * corr2 + w20 * vv0_6 + w21 * vv1_6 + w22 * vv2_6 + w23 * vv3_6;
        a3_6 = a3_6 * corr3 + w30 * vv0_6 + w31 * vv1_6 + w32 * vv2_6 + w33 * vv3_6;
        let vv0_7 = select(vec4<f32>(0.0), vc[b0 + 7u], any0);
        let vv1_7 = select(vec4<f32>(0.0), vc[b1 + 7u], any1);
        let vv2_7 = select(vec4<f32>(0.0), vc[b2 + 7u], any2);
        let vv3_7 = select(vec4<f32>(0.0), vc[b3 + 7u], any3);
        a0_7 = a0_7 * corr0 + w00 * vv0_7 + w01 * vv1_7 + w02 * vv2_7 + w03 * vv3_7;
        a1_7 = a1_7 * corr1 + w10 * vv0_7 + w11 * vv1_7 + w12 * vv2_7 + w13 * vv3_7;
        a2_7 = a2_7 * corr2 + w20 * vv0_7 + w21 * vv1_7 + w22 * vv2_7 + w23 * vv3_7;
        a3_7 = a3_7 * corr3 + w30 * vv0_7 + w31 * vv1_7 + w32 * vv2_7 + w33 * vv3_7;
        let vv0_8 = select(vec4<f32>(0.0), vc[b0 + 8u], any0);
        let vv1_8 = select(vec4<f32>(0.0), vc[b1 + 8u], any1);
        let vv2_8 = select(vec4<f32>(0.0), vc[b2 + 8u], any2);
        let vv3_8 = select(vec4<f32>(0.0), vc[b3 + 8u], any3);
        a0_8 = a0_8 * corr0 + w00 * vv0_8 + w01 * vv1_8 + w02 * vv2_8 + w03 * vv3_8;
        a1_8 = a1_8 * corr1 + w10 * vv0_8 + w11 * vv1_8 + w12 * vv2_8 + w13 * vv3_8;
        a2_8 = a2_8 * corr2 + w20 * vv0_8 + w21 * vv1_8 + w22 * vv2_8 + w23 * vv3_8;
        a3_8 = a3_8 * corr3 + w30 * vv0_8 + w31 * vv1_8 + w32 * vv2_8 + w33 * vv3_8;
        let vv0_9 = select(vec4<f32>(0.0), vc[b0 + 9u], any0);
        let vv1_9 = select(vec4<f32>(0.0), vc[b1 + 9u], any1);
        let vv2_9 = select(vec4<f32>(0.0), vc[b2 + 9u], any2);
        let vv3_9 = select(vec4<f32>(0.0), vc[b3 + 9u], any3);
        a0_9 = a0_9 * corr0 + w00 * vv0_9 + w01 * vv1_9 + w02 * vv2_9 + w03 * vv3_9;
        a1_9 = a1_9 * corr1 + w10 * vv0_9 + w11 * vv1_9 + w12 * vv2_9 + w13 * vv3_9;
        a2_9 = a2_9 * corr2 + w20 * vv0_9 + w21 * vv1_9 + w22 * vv2_9 + w23 * vv3_9;
        a3_9 = a3_9 * corr3 + w30 * vv0_9 + w31 * vv1_9 + w32 * vv2_9 + w33 * vv3_9;
        let vv0_10 = select(vec4<f32>(0.0), vc[b0 + 10u], any0);
        let vv1_10 = select(vec4<f32>(0.0), vc[b1 + 10u], any1);
        let vv2_10 = select(vec4<f32>(0.0), vc[b2 + 10u], any2);
        let vv3_10 = select(vec4<f32>(0.0), vc[b3 + 10u], any3);
        a0_10 = a0_10 * corr0 + w00 * vv0_10 + w01 * vv1_10 + w02 * vv2_10 + w03 * vv3_10;
        a1_10 = a1_10 * corr1 + w10 * vv0_10 + w11 * vv1_10 + w12 * vv2_10 + w13 * vv3_10;
        a2_10 = a2_10 * corr2 + w20 * vv0_10 + w21 * vv1_10 + w22 * vv2_10 + w23 * vv3_10;
        a3_10 = a3_10 * corr3 + w30 * vv0_10 + w31 * vv1_10 + w32 * vv2_10 + w33 * vv3_10;
        let vv0_11 = select(vec4<f32>(0.0), vc[b0 + 11u], any0);
        let vv1_11 = select(vec4<f32>(0.0), vc[b1 + 11u], any1);
        let vv2_11 = select(vec4<f32>(0.0), vc[b2 + 11u], any2);
        let vv3_11 = select(vec4<f32>(0.0), vc[b3 + 11u], any3);
        a0_11 = a0_11 * corr0 + w00 * vv0_11 + w01 * vv1_11 + w02 * vv2_11 + w03 * vv3_11;
        a1_11 = a1_11 * corr1 + w10 * vv0_11 + w11 * vv1_11 + w12 * vv2_11 + w13 * vv3_11;
        a2_11 = a2_11 * corr2 + w20 * vv0_11 + w21 * vv1_11 + w22 * vv2_11 + w23 * vv3_11;
        a3_11 = a3_11 * corr3 + w30 * vv0_11 + w31 * vv1_11 + w32 * vv2_11 + w33 * vv3_11;
        let vv0_12 = select(vec4<f32>(0.0), vc[b0 + 12u], any0);
        let vv1_12 = select(vec4<f32>(0.0), vc[b1 + 12u], any1);
        let vv2_12 = select(vec4<f32>(0.0), vc[b2 + 12u], any2);
        let vv3_12 = select(vec4<f32>(0.0), vc[b3 + 12u], any3);
        a0_12 = a0_12 * corr0 + w00 * vv0_12 + w01 * vv1_12 + w02 * vv2_12 + w03 * vv3_12;
        a1_12 = a1_12 * corr1 + w10 * vv0_12 + w11 * vv1_12 + w12 * vv2_12 + w13 * vv3_12;
        a2_12 = a2_12 * corr2 + w20 * vv0_12 + w21 * vv1_12 + w22 * vv2_12 + w23 * vv3_12;
        a3_12 = a3_12 * corr3 + w30 * vv0_12 + w31 * vv1_12 + w32 * vv2_12 + w33 * vv3_12;
        let vv0_13 = select(vec4<f32>(0.0), vc[b0 + 13u], any0);
        let vv1_13 = select(vec4<f32>(0.0), vc[b1 + 13u], any1);
        let vv2_13 = select(vec4<f32>(0.0), vc[b2 + 13u], any2);
        let vv3_13 = select(vec4<f32>(0.0), vc[b3 + 13u], any3);
        a0_13 = a0_13 * corr0 + w00 * vv0_13 + w01 * vv1_13 + w02 * vv2_13 + w03 * vv3_13;
        a1_13 = a1_13 * corr1 + w10 * vv0_13 + w11 * vv1_13 + w12 * vv2_13 + w13 * vv3_13;
        a2_13 = a2_13 * corr2 + w20 * vv0_13 + w21 * vv1_13 + w22 * vv2_13 + w23 * vv3_13;
        a3_13 = a3_13 * corr3 + w30 * vv0_13 + w31 * vv1_13 + w32 * vv2_13 + w33 * vv3_13;
        let vv0_14 = select(vec4<f32>(0.0), vc[b0 + 14u], any0);
        let vv1_14 = select(vec4<f32>(0.0), vc[b1 + 14u], any1);
        let vv2_14 = select(vec4<f32>(0.0), vc[b2 + 14u], any2);
        let vv3_14 = select(vec4<f32>(0.0), vc[b3 + 14u], any3);
        a0_14 = a0_14 * corr0 + w00 * vv0_14 + w01 * vv1_14 + w02 * vv2_14 + w03 * vv3_14;
        a1_14 = a1_14 * corr1 + w10 * vv0_14 + w11 * vv1_14 + w12 * vv2_14 + w13 * vv3_14;
        a2_14 = a2_14 * corr2 + w20 * vv0_14 + w21 * vv1_14 + w22 * vv2_14 + w23 * vv3_14;
        a3_14 = a3_14 * corr3 + w30 * vv0_14 + w31 * vv1_14 + w32 * vv2_14 + w33 * vv3_14;
        let vv0_15 = select(vec4<f32>(0.0), vc[b0 + 15u], any0);
        let vv1_15 = select(vec4<f32>(0.0), vc[b1 + 15u], any1);
        let vv2_15 = select(vec4<f32>(0.0), vc[b2 + 15u], any2);
        let vv3_15 = select(vec4<f32>(0.0), vc[b3 + 15u], any3);
        a0_15 = a0_15 * corr0 + w00 * vv0_15 + w01 * vv1_15 + w02 * vv2_15 + w03 * vv3_15;
        a1_15 = a1_15 * corr1 + w10 * vv0_15 + w11 * vv1_15 + w12 * vv2_15 + w13 * vv3_15;
        a2_15 = a2_15 * corr2 + w20 * vv0_15 + w21 * vv1_15 + w22 * vv2_15 + w23 * vv3_15;
        a3_15 = a3_15 * corr3 + w30 * vv0_15 + w31 * vv1_15 + w32 * vv2_15 + w33 * vv3_15;
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m0, l0);
        if (j < 1u) {
            tile_a[e + 0u] = a0_0;
            tile_a[e + 1u] = a0_1;
            tile_a[e + 2u] = a0_2;
            tile_a[e + 3u] = a0_3;
            tile_a[e + 4u] = a0_4;
            tile_a[e + 5u] = a0_5;
            tile_a[e + 6u] = a0_6;
            tile_a[e + 7u] = a0_7;
            tile_a[e + 8u] = a0_8;
            tile_a[e + 9u] = a0_9;
            tile_a[e + 10u] = a0_10;
            tile_a[e + 11u] = a0_11;
            tile_a[e + 12u] = a0_12;
            tile_a[e + 13u] = a0_13;
            tile_a[e + 14u] = a0_14;
            tile_a[e + 15u] = a0_15;
        } else {
            tile_b[e + 0u] = a0_0;
            tile_b[e + 1u] = a0_1;
            tile_b[e + 2u] = a0_2;
            tile_b[e + 3u] = a0_3;
            tile_b[e + 4u] = a0_4;
            tile_b[e + 5u] = a0_5;
            tile_b[e + 6u] = a0_6;
            tile_b[e + 7u] = a0_7;
            tile_b[e + 8u] = a0_8;
            tile_b[e + 9u] = a0_9;
            tile_b[e + 10u] = a0_10;
            tile_b[e + 11u] = a0_11;
            tile_b[e + 12u] = a0_12;
            tile_b[e + 13u] = a0_13;
            tile_b[e + 14u] = a0_14;
            tile_b[e + 15u] = a0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m0, ml.x);
            let c0 = exp(m0 - mn);
            let c1 = exp(ml.x - mn);
            l0 = l0 * c0 + ml.y * c1;
            m0 = mn;
            a0_0 = a0_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a0_1 = a0_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a0_2 = a0_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a0_3 = a0_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a0_4 = a0_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a0_5 = a0_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a0_6 = a0_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a0_7 = a0_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a0_8 = a0_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a0_9 = a0_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a0_10 = a0_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a0_11 = a0_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a0_12 = a0_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a0_13 = a0_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a0_14 = a0_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a0_15 = a0_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
        {
            let ml = tile_s[(1u * 16u + slot) % 64u];
            let mn = max(m0, ml.x);
            let c0 = exp(m0 - mn);
            let c1 = exp(ml.x - mn);
            l0 = l0 * c0 + ml.y * c1;
            m0 = mn;
            a0_0 = a0_0 * c0 + tile_b[((0u * 16u + slot) * 16u) + 0u] * c1;
            a0_1 = a0_1 * c0 + tile_b[((0u * 16u + slot) * 16u) + 1u] * c1;
            a0_2 = a0_2 * c0 + tile_b[((0u * 16u + slot) * 16u) + 2u] * c1;
            a0_3 = a0_3 * c0 + tile_b[((0u * 16u + slot) * 16u) + 3u] * c1;
            a0_4 = a0_4 * c0 + tile_b[((0u * 16u + slot) * 16u) + 4u] * c1;
            a0_5 = a0_5 * c0 + tile_b[((0u * 16u + slot) * 16u) + 5u] * c1;
            a0_6 = a0_6 * c0 + tile_b[((0u * 16u + slot) * 16u) + 6u] * c1;
            a0_7 = a0_7 * c0 + tile_b[((0u * 16u + slot) * 16u) + 7u] * c1;
            a0_8 = a0_8 * c0 + tile_b[((0u * 16u + slot) * 16u) + 8u] * c1;
            a0_9 = a0_9 * c0 + tile_b[((0u * 16u + slot) * 16u) + 9u] * c1;
            a0_10 = a0_10 * c0 + tile_b[((0u * 16u + slot) * 16u) + 10u] * c1;
            a0_11 = a0_11 * c0 + tile_b[((0u * 16u + slot) * 16u) + 11u] * c1;
            a0_12 = a0_12 * c0 + tile_b[((0u * 16u + slot) * 16u) + 12u] * c1;
            a0_13 = a0_13 * c0 + tile_b[((0u * 16u + slot) * 16u) + 13u] * c1;
            a0_14 = a0_14 * c0 + tile_b[((0u * 16u + slot) * 16u) + 14u] * c1;
            a0_15 = a0_15 * c0 + tile_b[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m0, l0);
        if (j < 1u) {
            tile_a[e + 0u] = a0_0;
            tile_a[e + 1u] = a0_1;
            tile_a[e + 2u] = a0_2;
            tile_a[e + 3u] = a0_3;
            tile_a[e + 4u] = a0_4;
            tile_a[e + 5u] = a0_5;
            tile_a[e + 6u] = a0_6;
            tile_a[e + 7u] = a0_7;
            tile_a[e + 8u] = a0_8;
            tile_a[e + 9u] = a0_9;
            tile_a[e + 10u] = a0_10;
            tile_a[e + 11u] = a0_11;
            tile_a[e + 12u] = a0_12;
            tile_a[e + 13u] = a0_13;
            tile_a[e + 14u] = a0_14;
            tile_a[e + 15u] = a0_15;
        } else {
            tile_b[e + 0u] = a0_0;
            tile_b[e + 1u] = a0_1;
            tile_b[e + 2u] = a0_2;
            tile_b[e + 3u] = a0_3;
            tile_b[e + 4u] = a0_4;
            tile_b[e + 5u] = a0_5;
            tile_b[e + 6u] = a0_6;
            tile_b[e + 7u] = a0_7;
            tile_b[e + 8u] = a0_8;
            tile_b[e + 9u] = a0_9;
            tile_b[e + 10u] = a0_10;
            tile_b[e + 11u] = a0_11;
            tile_b[e + 12u] = a0_12;
            tile_b[e + 13u] = a0_13;
            tile_b[e + 14u] = a0_14;
            tile_b[e + 15u] = a0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m0, ml.x);
            let c0 = exp(m0 - mn);
            let c1 = exp(ml.x - mn);
            l0 = l0 * c0 + ml.y * c1;
            m0 = mn;
            a0_0 = a0_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a0_1 = a0_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a0_2 = a0_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a0_3 = a0_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a0_4 = a0_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a0_5 = a0_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a0_6 = a0_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a0_7 = a0_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a0_8 = a0_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a0_9 = a0_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a0_10 = a0_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a0_11 = a0_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a0_12 = a0_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a0_13 = a0_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a0_14 = a0_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a0_15 = a0_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m1, l1);
        if (j < 1u) {
            tile_a[e + 0u] = a1_0;
            tile_a[e + 1u] = a1_1;
            tile_a[e + 2u] = a1_2;
            tile_a[e + 3u] = a1_3;
            tile_a[e + 4u] = a1_4;
            tile_a[e + 5u] = a1_5;
            tile_a[e + 6u] = a1_6;
            tile_a[e + 7u] = a1_7;
            tile_a[e + 8u] = a1_8;
            tile_a[e + 9u] = a1_9;
            tile_a[e + 10u] = a1_10;
            tile_a[e + 11u] = a1_11;
            tile_a[e + 12u] = a1_12;
            tile_a[e + 13u] = a1_13;
            tile_a[e + 14u] = a1_14;
            tile_a[e + 15u] = a1_15;
        } else {
            tile_b[e + 0u] = a1_0;
            tile_b[e + 1u] = a1_1;
            tile_b[e + 2u] = a1_2;
            tile_b[e + 3u] = a1_3;
            tile_b[e + 4u] = a1_4;
            tile_b[e + 5u] = a1_5;
            tile_b[e + 6u] = a1_6;
            tile_b[e + 7u] = a1_7;
            tile_b[e + 8u] = a1_8;
            tile_b[e + 9u] = a1_9;
            tile_b[e + 10u] = a1_10;
            tile_b[e + 11u] = a1_11;
            tile_b[e + 12u] = a1_12;
            tile_b[e + 13u] = a1_13;
            tile_b[e + 14u] = a1_14;
            tile_b[e + 15u] = a1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m1, ml.x);
            let c0 = exp(m1 - mn);
            let c1 = exp(ml.x - mn);
            l1 = l1 * c0 + ml.y * c1;
            m1 = mn;
            a1_0 = a1_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a1_1 = a1_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a1_2 = a1_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a1_3 = a1_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a1_4 = a1_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a1_5 = a1_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a1_6 = a1_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a1_7 = a1_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a1_8 = a1_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a1_9 = a1_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a1_10 = a1_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a1_11 = a1_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a1_12 = a1_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a1_13 = a1_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a1_14 = a1_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a1_15 = a1_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
        {
            let ml = tile_s[(1u * 16u + slot) % 64u];
            let mn = max(m1, ml.x);
            let c0 = exp(m1 - mn);
            let c1 = exp(ml.x - mn);
            l1 = l1 * c0 + ml.y * c1;
            m1 = mn;
            a1_0 = a1_0 * c0 + tile_b[((0u * 16u + slot) * 16u) + 0u] * c1;
            a1_1 = a1_1 * c0 + tile_b[((0u * 16u + slot) * 16u) + 1u] * c1;
            a1_2 = a1_2 * c0 + tile_b[((0u * 16u + slot) * 16u) + 2u] * c1;
            a1_3 = a1_3 * c0 + tile_b[((0u * 16u + slot) * 16u) + 3u] * c1;
            a1_4 = a1_4 * c0 + tile_b[((0u * 16u + slot) * 16u) + 4u] * c1;
            a1_5 = a1_5 * c0 + tile_b[((0u * 16u + slot) * 16u) + 5u] * c1;
            a1_6 = a1_6 * c0 + tile_b[((0u * 16u + slot) * 16u) + 6u] * c1;
            a1_7 = a1_7 * c0 + tile_b[((0u * 16u + slot) * 16u) + 7u] * c1;
            a1_8 = a1_8 * c0 + tile_b[((0u * 16u + slot) * 16u) + 8u] * c1;
            a1_9 = a1_9 * c0 + tile_b[((0u * 16u + slot) * 16u) + 9u] * c1;
            a1_10 = a1_10 * c0 + tile_b[((0u * 16u + slot) * 16u) + 10u] * c1;
            a1_11 = a1_11 * c0 + tile_b[((0u * 16u + slot) * 16u) + 11u] * c1;
            a1_12 = a1_12 * c0 + tile_b[((0u * 16u + slot) * 16u) + 12u] * c1;
            a1_13 = a1_13 * c0 + tile_b[((0u * 16u + slot) * 16u) + 13u] * c1;
            a1_14 = a1_14 * c0 + tile_b[((0u * 16u + slot) * 16u) + 14u] * c1;
            a1_15 = a1_15 * c0 + tile_b[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m1, l1);
        if (j < 1u) {
            tile_a[e + 0u] = a1_0;
            tile_a[e + 1u] = a1_1;
            tile_a[e + 2u] = a1_2;
            tile_a[e + 3u] = a1_3;
            tile_a[e + 4u] = a1_4;
            tile_a[e + 5u] = a1_5;
            tile_a[e + 6u] = a1_6;
            tile_a[e + 7u] = a1_7;
            tile_a[e + 8u] = a1_8;
            tile_a[e + 9u] = a1_9;
            tile_a[e + 10u] = a1_10;
            tile_a[e + 11u] = a1_11;
            tile_a[e + 12u] = a1_12;
            tile_a[e + 13u] = a1_13;
            tile_a[e + 14u] = a1_14;
            tile_a[e + 15u] = a1_15;
        } else {
            tile_b[e + 0u] = a1_0;
            tile_b[e + 1u] = a1_1;
            tile_b[e + 2u] = a1_2;
            tile_b[e + 3u] = a1_3;
            tile_b[e + 4u] = a1_4;
            tile_b[e + 5u] = a1_5;
            tile_b[e + 6u] = a1_6;
            tile_b[e + 7u] = a1_7;
            tile_b[e + 8u] = a1_8;
            tile_b[e + 9u] = a1_9;
            tile_b[e + 10u] = a1_10;
            tile_b[e + 11u] = a1_11;
            tile_b[e + 12u] = a1_12;
            tile_b[e + 13u] = a1_13;
            tile_b[e + 14u] = a1_14;
            tile_b[e + 15u] = a1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m1, ml.x);
            let c0 = exp(m1 - mn);
            let c1 = exp(ml.x - mn);
            l1 = l1 * c0 + ml.y * c1;
            m1 = mn;
            a1_0 = a1_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a1_1 = a1_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a1_2 = a1_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a1_3 = a1_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a1_4 = a1_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a1_5 = a1_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a1_6 = a1_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a1_7 = a1_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a1_8 = a1_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a1_9 = a1_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a1_10 = a1_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a1_11 = a1_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a1_12 = a1_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a1_13 = a1_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a1_14 = a1_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a1_15 = a1_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m2, l2);
        if (j < 1u) {
            tile_a[e + 0u] = a2_0;
            tile_a[e + 1u] = a2_1;
            tile_a[e + 2u] = a2_2;
            tile_a[e + 3u] = a2_3;
            tile_a[e + 4u] = a2_4;
            tile_a[e + 5u] = a2_5;
            tile_a[e + 6u] = a2_6;
            tile_a[e + 7u] = a2_7;
            tile_a[e + 8u] = a2_8;
            tile_a[e + 9u] = a2_9;
            tile_a[e + 10u] = a2_10;
            tile_a[e + 11u] = a2_11;
            tile_a[e + 12u] = a2_12;
            tile_a[e + 13u] = a2_13;
            tile_a[e + 14u] = a2_14;
            tile_a[e + 15u] = a2_15;
        } else {
            tile_b[e + 0u] = a2_0;
            tile_b[e + 1u] = a2_1;
            tile_b[e + 2u] = a2_2;
            tile_b[e + 3u] = a2_3;
            tile_b[e + 4u] = a2_4;
            tile_b[e + 5u] = a2_5;
            tile_b[e + 6u] = a2_6;
            tile_b[e + 7u] = a2_7;
            tile_b[e + 8u] = a2_8;
            tile_b[e + 9u] = a2_9;
            tile_b[e + 10u] = a2_10;
            tile_b[e + 11u] = a2_11;
            tile_b[e + 12u] = a2_12;
            tile_b[e + 13u] = a2_13;
            tile_b[e + 14u] = a2_14;
            tile_b[e + 15u] = a2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m2, ml.x);
            let c0 = exp(m2 - mn);
            let c1 = exp(ml.x - mn);
            l2 = l2 * c0 + ml.y * c1;
            m2 = mn;
            a2_0 = a2_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a2_1 = a2_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a2_2 = a2_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a2_3 = a2_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a2_4 = a2_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a2_5 = a2_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a2_6 = a2_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a2_7 = a2_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a2_8 = a2_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a2_9 = a2_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a2_10 = a2_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a2_11 = a2_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a2_12 = a2_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a2_13 = a2_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a2_14 = a2_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a2_15 = a2_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
        {
            let ml = tile_s[(1u * 16u + slot) % 64u];
            let mn = max(m2, ml.x);
            let c0 = exp(m2 - mn);
            let c1 = exp(ml.x - mn);
            l2 = l2 * c0 + ml.y * c1;
            m2 = mn;
            a2_0 = a2_0 * c0 + tile_b[((0u * 16u + slot) * 16u) + 0u] * c1;
            a2_1 = a2_1 * c0 + tile_b[((0u * 16u + slot) * 16u) + 1u] * c1;
            a2_2 = a2_2 * c0 + tile_b[((0u * 16u + slot) * 16u) + 2u] * c1;
            a2_3 = a2_3 * c0 + tile_b[((0u * 16u + slot) * 16u) + 3u] * c1;
            a2_4 = a2_4 * c0 + tile_b[((0u * 16u + slot) * 16u) + 4u] * c1;
            a2_5 = a2_5 * c0 + tile_b[((0u * 16u + slot) * 16u) + 5u] * c1;
            a2_6 = a2_6 * c0 + tile_b[((0u * 16u + slot) * 16u) + 6u] * c1;
            a2_7 = a2_7 * c0 + tile_b[((0u * 16u + slot) * 16u) + 7u] * c1;
            a2_8 = a2_8 * c0 + tile_b[((0u * 16u + slot) * 16u) + 8u] * c1;
            a2_9 = a2_9 * c0 + tile_b[((0u * 16u + slot) * 16u) + 9u] * c1;
            a2_10 = a2_10 * c0 + tile_b[((0u * 16u + slot) * 16u) + 10u] * c1;
            a2_11 = a2_11 * c0 + tile_b[((0u * 16u + slot) * 16u) + 11u] * c1;
            a2_12 = a2_12 * c0 + tile_b[((0u * 16u + slot) * 16u) + 12u] * c1;
            a2_13 = a2_13 * c0 + tile_b[((0u * 16u + slot) * 16u) + 13u] * c1;
            a2_14 = a2_14 * c0 + tile_b[((0u * 16u + slot) * 16u) + 14u] * c1;
            a2_15 = a2_15 * c0 + tile_b[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m2, l2);
        if (j < 1u) {
            tile_a[e + 0u] = a2_0;
            tile_a[e + 1u] = a2_1;
            tile_a[e + 2u] = a2_2;
            tile_a[e + 3u] = a2_3;
            tile_a[e + 4u] = a2_4;
            tile_a[e + 5u] = a2_5;
            tile_a[e + 6u] = a2_6;
            tile_a[e + 7u] = a2_7;
            tile_a[e + 8u] = a2_8;
            tile_a[e + 9u] = a2_9;
            tile_a[e + 10u] = a2_10;
            tile_a[e + 11u] = a2_11;
            tile_a[e + 12u] = a2_12;
            tile_a[e + 13u] = a2_13;
            tile_a[e + 14u] = a2_14;
            tile_a[e + 15u] = a2_15;
        } else {
            tile_b[e + 0u] = a2_0;
            tile_b[e + 1u] = a2_1;
            tile_b[e + 2u] = a2_2;
            tile_b[e + 3u] = a2_3;
            tile_b[e + 4u] = a2_4;
            tile_b[e + 5u] = a2_5;
            tile_b[e + 6u] = a2_6;
            tile_b[e + 7u] = a2_7;
            tile_b[e + 8u] = a2_8;
            tile_b[e + 9u] = a2_9;
            tile_b[e + 10u] = a2_10;
            tile_b[e + 11u] = a2_11;
            tile_b[e + 12u] = a2_12;
            tile_b[e + 13u] = a2_13;
            tile_b[e + 14u] = a2_14;
            tile_b[e + 15u] = a2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m2, ml.x);
            let c0 = exp(m2 - mn);
            let c1 = exp(ml.x - mn);
            l2 = l2 * c0 + ml.y * c1;
            m2 = mn;
            a2_0 = a2_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a2_1 = a2_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a2_2 = a2_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a2_3 = a2_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a2_4 = a2_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a2_5 = a2_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a2_6 = a2_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a2_7 = a2_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a2_8 = a2_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a2_9 = a2_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a2_10 = a2_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a2_11 = a2_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a2_12 = a2_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a2_13 = a2_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a2_14 = a2_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a2_15 = a2_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m3, l3);
        if (j < 1u) {
            tile_a[e + 0u] = a3_0;
            tile_a[e + 1u] = a3_1;
            tile_a[e + 2u] = a3_2;
            tile_a[e + 3u] = a3_3;
            tile_a[e + 4u] = a3_4;
            tile_a[e + 5u] = a3_5;
            tile_a[e + 6u] = a3_6;
            tile_a[e + 7u] = a3_7;
            tile_a[e + 8u] = a3_8;
            tile_a[e + 9u] = a3_9;
            tile_a[e + 10u] = a3_10;
            tile_a[e + 11u] = a3_11;
            tile_a[e + 12u] = a3_12;
            tile_a[e + 13u] = a3_13;
            tile_a[e + 14u] = a3_14;
            tile_a[e + 15u] = a3_15;
        } else {
            tile_b[e + 0u] = a3_0;
            tile_b[e + 1u] = a3_1;
            tile_b[e + 2u] = a3_2;
            tile_b[e + 3u] = a3_3;
            tile_b[e + 4u] = a3_4;
            tile_b[e + 5u] = a3_5;
            tile_b[e + 6u] = a3_6;
            tile_b[e + 7u] = a3_7;
            tile_b[e + 8u] = a3_8;
            tile_b[e + 9u] = a3_9;
            tile_b[e + 10u] = a3_10;
            tile_b[e + 11u] = a3_11;
            tile_b[e + 12u] = a3_12;
            tile_b[e + 13u] = a3_13;
            tile_b[e + 14u] = a3_14;
            tile_b[e + 15u] = a3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m3, ml.x);
            let c0 = exp(m3 - mn);
            let c1 = exp(ml.x - mn);
            l3 = l3 * c0 + ml.y * c1;
            m3 = mn;
            a3_0 = a3_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a3_1 = a3_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a3_2 = a3_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a3_3 = a3_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a3_4 = a3_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a3_5 = a3_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a3_6 = a3_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a3_7 = a3_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a3_8 = a3_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a3_9 = a3_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a3_10 = a3_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a3_11 = a3_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a3_12 = a3_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a3_13 = a3_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a3_14 = a3_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a3_15 = a3_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
        {
            let ml = tile_s[(1u * 16u + slot) % 64u];
            let mn = max(m3, ml.x);
            let c0 = exp(m3 - mn);
            let c1 = exp(ml.x - mn);
            l3 = l3 * c0 + ml.y * c1;
            m3 = mn;
            a3_0 = a3_0 * c0 + tile_b[((0u * 16u + slot) * 16u) + 0u] * c1;
            a3_1 = a3_1 * c0 + tile_b[((0u * 16u + slot) * 16u) + 1u] * c1;
            a3_2 = a3_2 * c0 + tile_b[((0u * 16u + slot) * 16u) + 2u] * c1;
            a3_3 = a3_3 * c0 + tile_b[((0u * 16u + slot) * 16u) + 3u] * c1;
            a3_4 = a3_4 * c0 + tile_b[((0u * 16u + slot) * 16u) + 4u] * c1;
            a3_5 = a3_5 * c0 + tile_b[((0u * 16u + slot) * 16u) + 5u] * c1;
            a3_6 = a3_6 * c0 + tile_b[((0u * 16u + slot) * 16u) + 6u] * c1;
            a3_7 = a3_7 * c0 + tile_b[((0u * 16u + slot) * 16u) + 7u] * c1;
            a3_8 = a3_8 * c0 + tile_b[((0u * 16u + slot) * 16u) + 8u] * c1;
            a3_9 = a3_9 * c0 + tile_b[((0u * 16u + slot) * 16u) + 9u] * c1;
            a3_10 = a3_10 * c0 + tile_b[((0u * 16u + slot) * 16u) + 10u] * c1;
            a3_11 = a3_11 * c0 + tile_b[((0u * 16u + slot) * 16u) + 11u] * c1;
            a3_12 = a3_12 * c0 + tile_b[((0u * 16u + slot) * 16u) + 12u] * c1;
            a3_13 = a3_13 * c0 + tile_b[((0u * 16u + slot) * 16u) + 13u] * c1;
            a3_14 = a3_14 * c0 + tile_b[((0u * 16u + slot) * 16u) + 14u] * c1;
            a3_15 = a3_15 * c0 + tile_b[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        tile_s[(j * 16u + slot) % 64u] = vec2<f32>(m3, l3);
        if (j < 1u) {
            tile_a[e + 0u] = a3_0;
            tile_a[e + 1u] = a3_1;
            tile_a[e + 2u] = a3_2;
            tile_a[e + 3u] = a3_3;
            tile_a[e + 4u] = a3_4;
            tile_a[e + 5u] = a3_5;
            tile_a[e + 6u] = a3_6;
            tile_a[e + 7u] = a3_7;
            tile_a[e + 8u] = a3_8;
            tile_a[e + 9u] = a3_9;
            tile_a[e + 10u] = a3_10;
            tile_a[e + 11u] = a3_11;
            tile_a[e + 12u] = a3_12;
            tile_a[e + 13u] = a3_13;
            tile_a[e + 14u] = a3_14;
            tile_a[e + 15u] = a3_15;
        } else {
            tile_b[e + 0u] = a3_0;
            tile_b[e + 1u] = a3_1;
            tile_b[e + 2u] = a3_2;
            tile_b[e + 3u] = a3_3;
            tile_b[e + 4u] = a3_4;
            tile_b[e + 5u] = a3_5;
            tile_b[e + 6u] = a3_6;
            tile_b[e + 7u] = a3_7;
            tile_b[e + 8u] = a3_8;
            tile_b[e + 9u] = a3_9;
            tile_b[e + 10u] = a3_10;
            tile_b[e + 11u] = a3_11;
            tile_b[e + 12u] = a3_12;
            tile_b[e + 13u] = a3_13;
            tile_b[e + 14u] = a3_14;
            tile_b[e + 15u] = a3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        {
            let ml = tile_s[(0u * 16u + slot) % 64u];
            let mn = max(m3, ml.x);
            let c0 = exp(m3 - mn);
            let c1 = exp(ml.x - mn);
            l3 = l3 * c0 + ml.y * c1;
            m3 = mn;
            a3_0 = a3_0 * c0 + tile_a[((0u * 16u + slot) * 16u) + 0u] * c1;
            a3_1 = a3_1 * c0 + tile_a[((0u * 16u + slot) * 16u) + 1u] * c1;
            a3_2 = a3_2 * c0 + tile_a[((0u * 16u + slot) * 16u) + 2u] * c1;
            a3_3 = a3_3 * c0 + tile_a[((0u * 16u + slot) * 16u) + 3u] * c1;
            a3_4 = a3_4 * c0 + tile_a[((0u * 16u + slot) * 16u) + 4u] * c1;
            a3_5 = a3_5 * c0 + tile_a[((0u * 16u + slot) * 16u) + 5u] * c1;
            a3_6 = a3_6 * c0 + tile_a[((0u * 16u + slot) * 16u) + 6u] * c1;
            a3_7 = a3_7 * c0 + tile_a[((0u * 16u + slot) * 16u) + 7u] * c1;
            a3_8 = a3_8 * c0 + tile_a[((0u * 16u + slot) * 16u) + 8u] * c1;
            a3_9 = a3_9 * c0 + tile_a[((0u * 16u + slot) * 16u) + 9u] * c1;
            a3_10 = a3_10 * c0 + tile_a[((0u * 16u + slot) * 16u) + 10u] * c1;
            a3_11 = a3_11 * c0 + tile_a[((0u * 16u + slot) * 16u) + 11u] * c1;
            a3_12 = a3_12 * c0 + tile_a[((0u * 16u + slot) * 16u) + 12u] * c1;
            a3_13 = a3_13 * c0 + tile_a[((0u * 16u + slot) * 16u) + 13u] * c1;
            a3_14 = a3_14 * c0 + tile_a[((0u * 16u + slot) * 16u) + 14u] * c1;
            a3_15 = a3_15 * c0 + tile_a[((0u * 16u + slot) * 16u) + 15u] * c1;
        }
    }
    if (split == 0u && live0) {
        out[rb0 + 0u] = a0_0 / l0;
        out[rb0 + 1u] = a0_1 / l0;
        out[rb0 + 2u] = a0_2 / l0;
        out[rb0 + 3u] = a0_3 / l0;
        out[rb0 + 4u] = a0_4 / l0;
        out[rb0 + 5u] = a0_5 / l0;
        out[rb0 + 6u] = a0_6 / l0;
        out[rb0 + 7u] = a0_7 / l0;
        out[rb0 + 8u] = a0_8 / l0;
        out[rb0 + 9u] = a0_9 / l0;
        out[rb0 + 10u] = a0_10 / l0;
        out[rb0 + 11u] = a0_11 / l0;
        out[rb0 + 12u] = a0_12 / l0;
        out[rb0 + 13u] = a0_13 / l0;
        out[rb0 + 14u] = a0_14 / l0;
        out[rb0 + 15u] = a0_15 / l0;
    }
    if (split == 0u && live1) {
        out[rb1 + 0u] = a1_0 / l1;
        out[rb1 + 1u] = a1_1 / l1;
        out[rb1 + 2u] = a1_2 / l1;
        out[rb1 + 3u] = a1_3 / l1;
        out[rb1 + 4u] = a1_4 / l1;
        out[rb1 + 5u] = a1_5 / l1;
        out[rb1 + 6u] = a1_6 / l1;
        out[rb1 + 7u] = a1_7 / l1;
        out[rb1 + 8u] = a1_8 / l1;
        out[rb1 + 9u] = a1_9 / l1;
        out[rb1 + 10u] = a1_10 / l1;
        out[rb1 + 11u] = a1_11 / l1;
        out[rb1 + 12u] = a1_12 / l1;
        out[rb1 + 13u] = a1_13 / l1;
        out[rb1 + 14u] = a1_14 / l1;
        out[rb1 + 15u] = a1_15 / l1;
    }
    if (split == 0u && live2) {
        out[rb2 + 0u] = a2_0 / l2;
        out[rb2 + 1u] = a2_1 / l2;
        out[rb2 + 2u] = a2_2 / l2;
        out[rb2 + 3u] = a2_3 / l2;
        out[rb2 + 4u] = a2_4 / l2;
        out[rb2 + 5u] = a2_5 / l2;
        out[rb2 + 6u] = a2_6 / l2;
        out[rb2 + 7u] = a2_7 / l2;
        out[rb2 + 8u] = a2_8 / l2;
        out[rb2 + 9u] = a2_9 / l2;
        out[rb2 + 10u] = a2_10 / l2;
        out[rb2 + 11u] = a2_11 / l2;
        out[rb2 + 12u] = a2_12 / l2;
        out[rb2 + 13u] = a2_13 / l2;
        out[rb2 + 14u] = a2_14 / l2;
        out[rb2 + 15u] = a2_15 / l2;
    }
    if (split == 0u && live3) {
        out[rb3 + 0u] = a3_0 / l3;
        out[rb3 + 1u] = a3_1 / l3;
        out[rb3 + 2u] = a3_2 / l3;
        out[rb3 + 3u] = a3_3 / l3;
        out[rb3 + 4u] = a3_4 / l3;
        out[rb3 + 5u] = a3_5 / l3;
        out[rb3 + 6u] = a3_6 / l3;
        out[rb3 + 7u] = a3_7 / l3;
        out[rb3 + 8u] = a3_8 / l3;
        out[rb3 + 9u] = a3_9 / l3;
        out[rb3 + 10u] = a3_10 / l3;
        out[rb3 + 11u] = a3_11 / l3;
        out[rb3 + 12u] = a3_12 / l3;
        out[rb3 + 13u] = a3_13 / l3;
        out[rb3 + 14u] = a3_14 / l3;
        out[rb3 + 15u] = a3_15 / l3;
    }
}

fn attention_backward_q_hd64(d: Dims, lid: u32, b: u32) {
    let blocks = (d.t + 63u) / 64u;
    let h = b / blocks;
    let slot = lid % 16u;
    let split = lid / 16u;
    let ib = (b % blocks) * 64u + slot;
    let kvh = h / (d.heads / d.kv_heads);
    let live0 = ib + 0u < d.t;
    let i0 = min(ib + 0u, d.t - 1u);
    let rb0 = (i0 * d.heads + h) * 16u;
    let kr0 = key_ranges(d, i0);
    let lows0 = key_lows(d, kr0);
    let live1 = ib + 16u < d.t;
    let i1 = min(ib + 16u, d.t - 1u);
    let rb1 = (i1 * d.heads + h) * 16u;
    let kr1 = key_ranges(d, i1);
    let lows1 = key_lows(d, kr1);
    let live2 = ib + 32u < d.t;
    let i2 = min(ib + 32u, d.t - 1u);
    let rb2 = (i2 * d.heads + h) * 16u;
    let kr2 = key_ranges(d, i2);
    let lows2 = key_lows(d, kr2);
    let live3 = ib + 48u < d.t;
    let i3 = min(ib + 48u, d.t - 1u);
    let rb3 = (i3 * d.heads + h) * 16u;
    let kr3 = key_ranges(d, i3);
    let lows3 = key_lows(d, kr3);
    let kmax = workgroup_max(lid, max(max(max(max(0u, select(0u, kr0.z, live0)), select(0u, kr1.z, live1)), select(0u, kr2.z, live2)), select(0u, kr3.z, live3)));
    let kmin = walk_start(d, lid, min(min(min(min(0xffffffffu, select(0xffffffffu, first_key(kr0, lows0), live0)), select(0xffffffffu, first_key(kr1, lows1), live1)), select(0xffffffffu, first_key(kr2, lows2), live2)), select(0xffffffffu, first_key(kr3, lows3), live3)));
    let klast = max(kmax, 1u) - 1u;
    let q0_0 = q[rb0 + 0u] * p.scale;
    let q0_1 = q[rb0 + 1u] * p.scale;
    let q0_2 = q[rb0 + 2u] * p.scale;
    let q0_3 = q[rb0 + 3u] * p.scale;
    let q0_4 = q[rb0 + 4u] * p.scale;
    let q0_5 = q[rb0 + 5u] * p.scale;
    let q0_6 = q[rb0 + 6u] * p.scale;
    let q0_7 = q[rb0 + 7u] * p.scale;
    let q0_8 = q[rb0 + 8u] * p.scale;
    let q0_9 = q[rb0 + 9u] * p.scale;
    let q0_10 = q[rb0 + 10u] * p.scale;
    let q0_11 = q[rb0 + 11u] * p.scale;
    let q0_12 = q[rb0 + 12u] * p.scale;
    let q0_13 = q[rb0 + 13u] * p.scale;
    let q0_14 = q[rb0 + 14u] * p.scale;
    let q0_15 = q[rb0 + 15u] * p.scale;
    let q1_0 = q[rb1 + 0u] * p.scale;
    let q1_1 = q[rb1 + 1u] * p.scale;
    let q1_2 = q[rb1 + 2u] * p.scale;
    let q1_3 = q[rb1 + 3u] * p.scale;
    let q1_4 = q[rb1 + 4u] * p.scale;
    let q1_5 = q[rb1 + 5u] * p.scale;
    let q1_6 = q[rb1 + 6u] * p.scale;
    let q1_7 = q[rb1 + 7u] * p.scale;
    let q1_8 = q[rb1 + 8u] * p.scale;
    let q1_9 = q[rb1 + 9u] * p.scale;
    let q1_10 = q[rb1 + 10u] * p.scale;
    let q1_11 = q[rb1 + 11u] * p.scale;
    let q1_12 = q[rb1 + 12u] * p.scale;
    let q1_13 = q[rb1 + 13u] * p.scale;
    let q1_14 = q[rb1 + 14u] * p.scale;
    let q1_15 = q[rb1 + 15u] * p.scale;
    let q2_0 = q[rb2 + 0u] * p.scale;
    let q2_1 = q[rb2 + 1u] * p.scale;
    let q2_2 = q[rb2 + 2u] * p.scale;
    let q2_3 = q[rb2 + 3u] * p.scale;
    let q2_4 = q[rb2 + 4u] * p.scale;
    let q2_5 = q[rb2 + 5u] * p.scale;
    let q2_6 = q[rb2 + 6u] * p.scale;
    let q2_7 = q[rb2 + 7u] * p.scale;
    let q2_8 = q[rb2 + 8u] * p.scale;
    let q2_9 = q[rb2 + 9u] * p.scale;
    let q2_10 = q[rb2 + 10u] * p.scale;
    let q2_11 = q[rb2 + 11u] * p.scale;
    let q2_12 = q[rb2 + 12u] * p.scale;
    let q2_13 = q[rb2 + 13u] * p.scale;
    let q2_14 = q[rb2 + 14u] * p.scale;
    let q2_15 = q[rb2 + 15u] * p.scale;
    let q3_0 = q[rb3 + 0u] * p.scale;
    let q3_1 = q[rb3 + 1u] * p.scale;
    let q3_2 = q[rb3 + 2u] * p.scale;
    let q3_3 = q[rb3 + 3u] * p.scale;
    let q3_4 = q[rb3 + 4u] * p.scale;
    let q3_5 = q[rb3 + 5u] * p.scale;
    let q3_6 = q[rb3 + 6u] * p.scale;
    let q3_7 = q[rb3 + 7u] * p.scale;
    let q3_8 = q[rb3 + 8u] * p.scale;
    let q3_9 = q[rb3 + 9u] * p.scale;
    let q3_10 = q[rb3 + 10u] * p.scale;
    let q3_11 = q[rb3 + 11u] * p.scale;
    let q3_12 = q[rb3 + 12u] * p.scale;
    let q3_13 = q[rb3 + 13u] * p.scale;
    let q3_14 = q[rb3 + 14u] * p.scale;
    let q3_15 = q[rb3 + 15u] * p.scale;
    let g0_0 = dout[rb0 + 0u];
    let g0_1 = dout[rb0 + 1u];
    let g0_2 = dout[rb0 + 2u];
    let g0_3 = dout[rb0 + 3u];
    let g0_4 = dout[rb0 + 4u];
    let g0_5 = dout[rb0 + 5u];
    let g0_6 = dout[rb0 + 6u];
    let g0_7 = dout[rb0 + 7u];
    let g0_8 = dout[rb0 + 8u];
    let g0_9 = dout[rb0 + 9u];
    let g0_10 = dout[rb0 + 10u];
    let g0_11 = dout[rb0 + 11u];
    let g0_12 = dout[rb0 + 12u];
    let g0_13 = dout[rb0 + 13u];
    let g0_14 = dout[rb0 + 14u];
    let g0_15 = dout[rb0 + 15u];
    let g1_0 = dout[rb1 + 0u];
    let g1_1 = dout[rb1 + 1u];
    let g1_2 = dout[rb1 + 2u];
    let g1_3 = dout[rb1 + 3u];
    let g1_4 = dout[rb1 + 4u];
    let g1_5 = dout[rb1 + 5u];
    let g1_6 = dout[rb1 + 6u];
    let g1_7 = dout[rb1 + 7u];
    let g1_8 = dout[rb1 + 8u];
    let g1_9 = dout[rb1 + 9u];
    let g1_10 = dout[rb1 + 10u];
    let g1_11 = dout[rb1 + 11u];
    let g1_12 = dout[rb1 + 12u];
    let g1_13 = dout[rb1 + 13u];
    let g1_14 = dout[rb1 + 14u];
    let g1_15 = dout[rb1 + 15u];
    let g2_0 = dout[rb2 + 0u];
    let g2_1 = dout[rb2 + 1u];
    let g2_2 = dout[rb2 + 2u];
    let g2_3 = dout[rb2 + 3u];
    let g2_4 = dout[rb2 + 4u];
    let g2_5 = dout[rb2 + 5u];
    let g2_6 = dout[rb2 + 6u];
    let g2_7 = dout[rb2 + 7u];
    let g2_8 = dout[rb2 + 8u];
    let g2_9 = dout[rb2 + 9u];
    let g2_10 = dout[rb2 + 10u];
    let g2_11 = dout[rb2 + 11u];
    let g2_12 = dout[rb2 + 12u];
    let g2_13 = dout[rb2 + 13u];
    let g2_14 = dout[rb2 + 14u];
    let g2_15 = dout[rb2 + 15u];
    let g3_0 = dout[rb3 + 0u];
    let g3_1 = dout[rb3 + 1u];
    let g3_2 = dout[rb3 + 2u];
    let g3_3 = dout[rb3 + 3u];
    let g3_4 = dout[rb3 + 4u];
    let g3_5 = dout[rb3 + 5u];
    let g3_6 = dout[rb3 + 6u];
    let g3_7 = dout[rb3 + 7u];
    let g3_8 = dout[rb3 + 8u];
    let g3_9 = dout[rb3 + 9u];
    let g3_10 = dout[rb3 + 10u];
    let g3_11 = dout[rb3 + 11u];
    let g3_12 = dout[rb3 + 12u];
    let g3_13 = dout[rb3 + 13u];
    let g3_14 = dout[rb3 + 14u];
    let g3_15 = dout[rb3 + 15u];
    let dsum0 = sum4(g0_0 * o[rb0 + 0u] + g0_1 * o[rb0 + 1u] + g0_2 * o[rb0 + 2u] + g0_3 * o[rb0 + 3u] + g0_4 * o[rb0 + 4u] + g0_5 * o[rb0 + 5u] + g0_6 * o[rb0 + 6u] + g0_7 * o[rb0 + 7u] + g0_8 * o[rb0 + 8u] + g0_9 * o[rb0 + 9u] + g0_10 * o[rb0 + 10u] + g0_11 * o[rb0 + 11u] + g0_12 * o[rb0 + 12u] + g0_13 * o[rb0 + 13u] + g0_14 * o[rb0 + 14u] + g0_15 * o[rb0 + 15u]);
    var m0 = -3.0e38;
    var l0 = 0.0;
    let dsum1 = sum4(g1_0 * o[rb1 + 0u] + g1_1 * o[rb1 + 1u] + g1_2 * o[rb1 + 2u] + g1_3 * o[rb1 + 3u] + g1_4 * o[rb1 + 4u] + g1_5 * o[rb1 + 5u] + g1_6 * o[rb1 + 6u] + g1_7 * o[rb1 + 7u] + g1_8 * o[rb1 + 8u] + g1_9 * o[rb1 + 9u] + g1_10 * o[rb1 + 10u] + g1_11 * o[rb1 + 11u] + g1_12 * o[rb1 + 12u] + g1_13 * o[rb1 + 13u] + g1_14 * o[rb1 + 14u] + g1_15 * o[rb1 + 15u]);
    var m1 = -3.0e38;
    var l1 = 0.0;
    let dsum2 = sum4(g2_0 * o[rb2 + 0u] + g2_1 * o[rb2 + 1u] + g2_2 * o[rb2 + 2u] + g2_3 * o[rb2 + 3u] + g2_4 * o[rb2 + 4u] + g2_5 * o[rb2 + 5u] + g2_6 * o[rb2 + 6u] + g2_7 * o[rb2 + 7u] + g2_8 * o[rb2 + 8u] + g2_9 * o[rb2 + 9u] + g2_10 * o[rb2 + 10u] + g2_11 * o[rb2 + 11u] + g2_12 * o[rb2 + 12u] + g2_13 * o[rb2 + 13u] + g2_14 * o[rb2 + 14u] + g2_15 * o[rb2 + 15u]);
    var m2 = -3.0e38;
    var l2 = 0.0;
    let dsum3 = sum4(g3_0 * o[rb3 + 0u] + g3_1 * o[rb3 + 1u] + g3_2 * o[rb3 + 2u] + g3_3 * o[rb3 + 3u] + g3_4 * o[rb3 + 4u] + g3_5 * o[rb3 + 5u] + g3_6 * o[rb3 + 6u] + g3_7 * o[rb3 + 7u] + g3_8 * o[rb3 + 8u] + g3_9 * o[rb3 + 9u] + g3_10 * o[rb3 + 10u] + g3_11 * o[rb3 + 11u] + g3_12 * o[rb3 + 12u] + g3_13 * o[rb3 + 13u] + g3_14 * o[rb3 + 14u] + g3_15 * o[rb3 + 15u]);
    var m3 = -3.0e38;
    var l3 = 0.0;
    // lse over the visible keys, each split its keys, then merged.
    for (var k = kmin + 4u * split; k < kmax; k += 16u) {
        let b0 = (min(k + 0u, klast) * d.kv_heads + kvh) * 16u;
        let b1 = (min(k + 1u, klast) * d.kv_heads + kvh) * 16u;
        let b2 = (min(k + 2u, klast) * d.kv_heads + kvh) * 16u;
        let b3 = (min(k + 3u, klast) * d.kv_heads + kvh) * 16u;
        let v00 = live0 && sees(kr0, lows0, k + 0u);
        let v01 = live0 && sees(kr0, lows0, k + 1u);
        let v02 = live0 && sees(kr0, lows0, k + 2u);
        let v03 = live0 && sees(kr0, lows0, k + 3u);
        let v10 = live1 && sees(kr1, lows1, k + 0u);
        let v11 = live1 && sees(kr1, lows1, k + 1u);
        let v12 = live1 && sees(kr1, lows1, k + 2u);
        let v13 = live1 && sees(kr1, lows1, k + 3u);
        let v20 = live2 && sees(kr2, lows2, k + 0u);
        let v21 = live2 && sees(kr2, lows2, k + 1u);
        let v22 = live2 && sees(kr2, lows2, k + 2u);
        let v23 = live2 && sees(kr2, lows2, k + 3u);
        let v30 = live3 && sees(kr3, lows3, k + 0u);
        let v31 = live3 && sees(kr3, lows3, k + 1u);
        let v32 = live3 && sees(kr3, lows3, k + 2u);
        let v33 = live3 && sees(kr3, lows3, k + 3u);
        var s00a = vec4<f32>(0.0);
        var s01a = vec4<f32>(0.0);
        var s02a = vec4<f32>(0.0);
        var s03a = vec4<f32>(0.0);
        var s10a = vec4<f32>(0.0);
        var s11a = vec4<f32>(0.0);
        var s12a = vec4<f32>(0.0);
        var s13a = vec4<f32>(0.0);
        var s20a = vec4<f32>(0.0);
        var s21a = vec4<f32>(0.0);
        var s22a = vec4<f32>(0.0);
        var s23a = vec4<f32>(0.0);
        var s30a = vec4<f32>(0.0);
        var s31a = vec4<f32>(0.0);
        var s32a = vec4<f32>(0.0);
        var s33a = vec4<f32>(0.0);
        let sk0_0 = kc[b0 + 0u];
        let sk1_0 = kc[b1 + 0u];
        let sk2_0 = kc[b2 + 0u];
        let sk3_0 = kc[b3 + 0u];
        s00a += q0_0 * sk0_0;
        s01a += q0_0 * sk1_0;
        s02a += q0_0 * sk2_0;
        s03a += q0_0 * sk3_0;
        s10a += q1_0 * sk0_0;
        s11a += q1_0 * sk1_0;
        s12a += q1_0 * sk2_0;
        s13a += q1_0 * sk3_0;
        s20a += q2_0 * sk0_0;
        s21a += q2_0 * sk1_0;
        s22a += q2_0 * sk2_0;
        s23a += q2_0 * sk3_0;
        s30a += q3_0 * sk0_0;
        s31a += q3_0 * sk1_0;
        s32a += q3_0 * sk2_0;
        s33a += q3_0 * sk3_0;
        let sk0_1 = kc[b0 + 1u];
        let sk1_1 = kc[b1 + 1u];
        let sk2_1 = kc[b2 + 1u];
        let sk3_1 = kc[b3 + 1u];
        s00a += q0_1 * sk0_1;
        s01a += q0_1 * sk1_1;
        s02a += q0_1 * sk2_1;
        s03a += q0_1 * sk3_1;
        s10a += q1_1 * sk0_1;
        s11a += q1_1 * sk1_1;
        s12a += q1_1 * sk2_1;
        s13a += q1_1 * sk3_1;
        s20a += q2_1 * sk0_1;
        s21a += q2_1 * sk1_1;
        s22a += q2_1 * sk2_1;
        s23a += q2_1 * sk3_1;
        s30a += q3_1 * sk0_1;
        s31a += q3_1 * sk1_1;
        s32a += q3_1 * sk2_1;
        s33a += q3_1 * sk3_1;
        let sk0_2 = kc[b0 + 2u];
        let sk1_2 = kc[b1 + 2u];
        let sk2_2 = kc[b2 + 2u];
        let sk3_2 = kc[b3 + 2u];
        s00a += q0_2 * sk0_2;
        s01a += q0_2 * sk1_2;
        s02a += q0_2 * sk2_2;
        s03a += q0_2 * sk3_2;
        s10a += q1_2 * sk0_2;
        s11a += q1_2 * sk1_2;
        s12a += q1_2 * sk2_2;
        s13a += q1_2 * sk3_2;
        s20a += q2_2 * sk0_2;
        s21a += q2_2 * sk1_2;
        s22a += q2_2 * sk2_2;
        s23a += q2_2 * sk3_2;
        s30a += q3_2 * sk0_2;
        s31a += q3_2 * sk1_2;
        s32a += q3_2 * sk2_2;
        s33a += q3_2 * sk3_2;
        let sk0_3 = kc[b0 + 3u];
        let sk1_3 = kc[b1 + 3u];
        let sk2_3 = kc[b2 + 3u];
        let sk3_3 = kc[b3 + 3u];
        s00a += q0_3 * sk0_3;
        s01a += q0_3 * sk1_3;
        s02a += q0_3 * sk2_3;
        s03a += q0_3 * sk3_3;
        s10a += q1_3 * sk0_3;
        s11a += q1_3 * sk1_3;
        s12a += q1_3 * sk2_3;
        s13a += q1_3 * sk3_3;
        s20a += q2_3 * sk0_3;
        s21a += q2_3 * sk1_3;
        s22a += q2_3 * sk2_3;
        s23a += q2_3 * sk3_3;
        s30a += q3_3 * sk0_3;
        s31a += q3_3 * sk1_3;
        s32a += q3_3 * sk2_3;
        s33a += q3_3 * sk3_3;
        let sk0_4 = kc[b0 + 4u];
        let sk1_4 = kc[b1 + 4u];
        let sk2_4 = kc[b2 + 4u];
        let sk3_4 = kc[b3 + 4u];
        s00a += q0_4 * sk0_4;
        s01a += q0_4 * sk1_4;
        s02a += q0_4 * sk2_4;
        s03a += q0_4 * sk3_4;
        s10a += q1_4 * sk0_4;
        s11a += q1_4 * sk1_4;
        s12a += q1_4 * sk2_4;
        s13a += q1_4 * sk3_4;
        s20a += q2_4 * sk0_4;
        s21a += q2_4 * sk1_4;
        s22a += q2_4 * sk2_4;
        s23a += q2_4 * sk3_4;
        s30a += q3_4 * sk0_4;
        s31a += q3_4 * sk1_4;
        s32a += q3_4 * sk2_4;
        s33a += q3_4 * sk3_4;
        let sk0_5 = kc[b0 + 5u];
        let sk1_5 = kc[b1 + 5u];
        let sk2_5 = kc[b2 + 5u];
        let sk3_5 = kc[b3 + 5u];
        s00a += q0_5 * sk0_5;
        s01a += q0_5 * sk1_5;
        s02a += q0_5 * sk2_5;
        s03a += q0_5 * sk3_5;
        s10a += q1_5 * sk0_5;
        s11a += q1_5 * sk1_5;
        s12a += q1_5 * sk2_5;
        s13a += q1_5 * sk3_5;
        s20a += q2_5 * sk0_5;
        s21a += q2_5 * sk1_5;
        s22a += q2_5 * sk2_5;
        s23a += q2_5 * sk3_5;
        s30a += q3_5 * sk0_5;
        s31a += q3_5 * sk1_5;
        s32a += q3_5 * sk2_5;
        s33a += q3_5 * sk3_5;
        let sk0_6 = kc[b0 + 6u];
        let sk1_6 = kc[b1 + 6u];
        let sk2_6 = kc[b2 + 6u];
        let sk3_6 = kc[b3 + 6u];
        s00a += q0_6 * sk0_6;
        s01a += q0_6 * sk1_6;
        s02a += q0_6 * sk2_6;
        s03a += q0_6 * sk3_6;
        s10a += q1_6 * sk0_6;
        s11a += q1_6 * sk1_6;
        s12a += q1_6 * sk2_6;
        s13a += q1_6 * sk3_6;
        s20a += q2_6 * sk0_6;
        s21a += q2_6 * sk1_6;
        s22a += q2_6 * sk2_6;
        s23a += q2_6 * sk3_6;
        s30a += q3_6 * sk0_6;
        s31a += q3_6 * sk1_6;
        s32a += q3_6 * sk2_6;
        s33a += q3_6 * sk3_6;
        let sk0_7 = kc[b0 + 7u];
        let sk1_7 = kc[b1 + 7u];
        let sk2_7 = kc[b2 + 7u];
        let sk3_7 = kc[b3 + 7u];
        s00a += q0_7 * sk0_7;
        s01a += q0_7 * sk1_7;
        s02a += q0_7 * sk2_7;
        s03a += q0_7 * sk3_7;
        s10a += q1_7 * sk0_7;
        s11a += q1_7 * sk1_7;
        s12a += q1_7 * sk2_7;
        s13a += q1_7 * sk3_7;
        s20a += q2_7 * sk0_7;
        s21a += q2_7 * sk1_7;
        s22a += q2_7 * sk2_7;
        s23a += q2_7 * sk3_7;
        s30a += q3_7 * sk0_7;
        s31a += q3_7 * sk1_7;
        s32a += q3_7 * sk2_7;
        s33a += q3_7 * sk3_7;
        let sk0_8 = kc[b0 + 8u];
        let sk1_8 = kc[b1 + 8u];
        let sk2_8 = kc[b2 + 8u];
        let sk3_8 = kc[b3 + 8u];
        s00a += q0_8 * sk0_8;
        s01a += q0_8 * sk1_8;
        s02a += q0_8 * sk2_8;
        s03a += q0_8 * sk3_8;
        s10a += q1_8 * sk0_8;
        s11a += q1_8 * sk1_8;
        s12a += q1_8 * sk2_8;
        s13a += q1_8 * sk3_8;
        s20a += q2_8 * sk0_8;
        s21a += q2_8 * sk1_8;
        s22a += q2_8 * sk2_8;
        s23a += q2_8 * sk3_8;
        s30a += q3_8 * sk0_8;
        s31a += q3_8 * sk1_8;
        s32a += q3_8 * sk2_8;
        s33a += q3_8 * sk3_8;
        let sk0_9 = kc[b0 + 9u];
        let sk1_9 = kc[b1 + 9u];
        let sk2_9 = kc[b2 + 9u];
        let sk3_9 = kc[b3 + 9u];
        s00a += q0_9 * sk0_9;
        s01a += q0_9 * sk1_9;
        s02a += q0_9 * sk2_9;
        s03a += q0_9 * sk3_9;
        s10a += q1_9 * sk0_9;
        s11a += q1_9 * sk1_9;
        s12a += q1_9 * sk2_9;
        s13a += q1_9 * sk3_9;
        s20a += q2_9 * sk0_9;
        s21a += q2_9 * sk1_9;
        s22a += q2_9 * sk2_9;
        s23a += q2_9 * sk3_9;
        s30a += q3_9 * sk0_9;
        s31a += q3_9 * sk1_9;
        s32a += q3_9 * sk2_9;
        s33a += q3_9 * sk3_9;
        let sk0_10 = kc[b0 + 10u];
        let sk1_10 = kc[b1 + 10u];
        let sk2_10 = kc[b2 + 10u];
        let sk3_10 = kc[b3 + 10u];
        s00a += q0_10 * sk0_10;
        s01a += q0_10 * sk1_10;
        s02a += q0_10 * sk2_10;
        s03a += q0_10 * sk3_10;
        s10a += q1_10 * sk0_10;
        s11a += q1_10 * sk1_10;
        s12a += q1_10 * sk2_10;
        s13a += q1_10 * sk3_10;
        s20a += q2_10 * sk0_10;
        s21a += q2_10 * sk1_10;
        s22a += q2_10 * sk2_10;
        s23a += q2_10 * sk3_10;
        s30a += q3_10 * sk0_10;
        s31a += q3_10 * sk1_10;
        s32a += q3_10 * sk2_10;
        s33a += q3_10 * sk3_10;
        let sk0_11 = kc[b0 + 11u];
        let sk1_11 = kc[b1 + 11u];
        let sk2_11 = kc[b2 + 11u];
        let sk3_11 = kc[b3 + 11u];
        s00a += q0_11 * sk0_11;
        s01a += q0_11 * sk1_11;
        s02a += q0_11 * sk2_11;
        s03a += q0_11 * sk3_11;
        s10a += q1_11 * sk0_11;
        s11a += q1_11 * sk1_11;
        s12a += q1_11 * sk2_11;
        s13a += q1_11 * sk3_11;
        s20a += q2_11 * sk0_11;
        s21a += q2_11 * sk1_11;
        s22a += q2_11 * sk2_11;
        s23a += q2_11 * sk3_11;
        s30a += q3_11 * sk0_11;
        s31a += q3_11 * sk1_11;
        s32a += q3_11 * sk2_11;
        s33a += q3_11 * sk3_11;
        let sk0_12 = kc[b0 + 12u];
        let sk1_12 = kc[b1 + 12u];
        let sk2_12 = kc[b2 + 12u];
        let sk3_12 = kc[b3 + 12u];
        s00a += q0_12 * sk0_12;
        s01a += q0_12 * sk1_12;
        s02a += q0_12 * sk2_12;
        s03a += q0_12 * sk3_12;
        s10a += q1_12 * sk0_12;
        s11a += q1_12 * sk1_12;
        s12a += q1_12 * sk2_12;
        s13a += q1_12 * sk3_12;
        s20a += q2_12 * sk0_12;
        s21a += q2_12 * sk1_12;
        s22a += q2_12 * sk2_12;
        s23a += q2_12 * sk3_12;
        s30a += q3_12 * sk0_12;
        s31a += q3_12 * sk1_12;
        s32a += q3_12 * sk2_12;
        s33a += q3_12 * sk3_12;
        let sk0_13 = kc[b0 + 13u];
        let sk1_13 = kc[b1 + 13u];
        let sk2_13 = kc[b2 + 13u];
        let sk3_13 = kc[b3 + 13u];
        s00a += q0_13 * sk0_13;
        s01a += q0_13 * sk1_13;
        s02a += q0_13 * sk2_13;
        s03a += q0_13 * sk3_13;
        s10a += q1_13 * sk0_13;
        s11a += q1_13 * sk1_13;
        s12a += q1_13 * sk2_13;
        s13a += q1_13 * sk3_13;
        s20a += q2_13 * sk0_13;
        s21a += q2_13 * sk1_13;
        s22a += q2_13 * sk2_13;
        s23a += q2_13 * sk3_13;
        s30a += q3_13 * sk0_13;
        s31a += q3_13 * sk1_13;
        s32a += q3_13 * sk2_13;
        s33a += q3_13 * sk3_13;
        let sk0_14 = kc[b0 + 14u];
        let sk1_14 = kc[b1 + 14u];
        let sk2_14 = kc[b2 + 14u];
        let sk3_14 = kc[b3 + 14u];
        s00a += q0_14 * sk0_14;
        s01a += q0_14 * sk1_14;
        s02a += q0_14 * sk2_14;
        s03a += q0_14 * sk3_14;
        s10a += q1_14 * sk0_14;
        s11a += q1_14 * sk1_14;
        s12a += q1_14 * sk2_14;
        s13a += q1_14 * sk3_14;
        s20a += q2_14 * sk0_14;
        s21a += q2_14 * sk1_14;
        s22a += q2_14 * sk2_14;
        s23a += q2_14 * sk3_14;
        s30a += q3_14 * sk0_14;
        s31a += q3_14 * sk1_14;
        s32a += q3_14 * sk2_14;
        s33a += q3_14 * sk3_14;
        let sk0_15 = kc[b0 + 15u];
        let sk1_15 = kc[b1 + 15u];
        let sk2_15 = kc[b2 + 15u];
        let sk3_15 = kc[b3 + 15u];
        s00a += q0_15 * sk0_15;
        s01a += q0_15 * sk1_15;
        s02a += q0_15 * sk2_15;
        s03a += q0_15 * sk3_15;
        s10a += q1_15 * sk0_15;
        s11a += q1_15 * sk1_15;
        s12a += q1_15 * sk2_15;
        s13a += q1_15 * sk3_15;
        s20a += q2_15 * sk0_15;
        s21a += q2_15 * sk1_15;
        s22a += q2_15 * sk2_15;
        s23a += q2_15 * sk3_15;
        s30a += q3_15 * sk0_15;
        s31a += q3_15 * sk1_15;
        s32a += q3_15 * sk2_15;
        s33a += q3_15 * sk3_15;
        let s00 = select(-3.0e38, sum4(s00a), v00);
        let s01 = select(-3.0e38, sum4(s01a), v01);
        let s02 = select(-3.0e38, sum4(s02a), v02);
        let s03 = select(-3.0e38, sum4(s03a), v03);
        let mn0 = max(m0, max(max(s00, s01), max(s02, s03)));
        let w00 = select(0.0, exp(s00 - mn0), v00);
        let w01 = select(0.0, exp(s01 - mn0), v01);
        let w02 = select(0.0, exp(s02 - mn0), v02);
        let w03 = select(0.0, exp(s03 - mn0), v03);
        l0 = l0 * exp(m0 - mn0) + ((w00 + w01) + (w02 + w03));
        m0 = mn0;
        let s10 = select(-3.0e38, sum4(s10a), v10);
        let s11 = select(-3.0e38, sum4(s11a), v11);
        let s12 = select(-3.0e38, sum4(s12a), v12);
        let s13 = select(-3.0e38, sum4(s13a), v13);
        let mn1 = max(m1, max(max(s10, s11), max(s12, s13)));
        let w10 = select(0.0, exp(s10 - mn1), v10);
        let w11 = select(0.0, exp(s11 - mn1), v11);
        let w12 = select(0.0, exp(s12 - mn1), v12);
        let w13 = select(0.0, exp(s13 - mn1), v13);
        l1 = l1 * exp(m1 - mn1) + ((w10 + w11) + (w12 + w13));
        m1 = mn1;
        let s20 = select(-3.0e38, sum4(s20a), v20);
        let s21 = select(-3.0e38, sum4(s21a), v21);
        let s22 = select(-3.0e38, sum4(s22a), v22);
        let s23 = select(-3.0e38, sum4(s23a), v23);
        let mn2 = max(m2, max(max(s20, s21), max(s22, s23)));
        let w20 = select(0.0, exp(s20 - mn2), v20);
        let w21 = select(0.0, exp(s21 - mn2), v21);
        let w22 = select(0.0, exp(s22 - mn2), v22);
        let w23 = select(0.0, exp(s23 - mn2), v23);
        l2 = l2 * exp(m2 - mn2) + ((w20 + w21) + (w22 + w23));
        m2 = mn2;
        let s30 = select(-3.0e38, sum4(s30a), v30);
        let s31 = select(-3.0e38, sum4(s31a), v31);
        let s32 = select(-3.0e38, sum4(s32a), v32);
        let s33 = select(-3.0e38, sum4(s33a), v33);
        let mn3 = max(m3, max(max(s30, s31), max(s32, s33)));
        let w30 = select(0.0, exp(s30 - mn3), v30);
        let w31 = select(0.0, exp(s31 - mn3), v31);
        let w32 = select(0.0, exp(s32 - mn3), v32);
        let w33 = select(0.0, exp(s33 - mn3), v33);
        l3 = l3 * exp(m3 - mn3) + ((w30 + w31) + (w32 + w33));
        m3 = mn3;
    }
    workgroupBarrier();
    tile_s[lid] = vec2<f32>(m0, l0);
    workgroupBarrier();
    {
        var mm = -3.0e38;
        var ll = 0.0;
        let p0 = tile_s[0u + slot];
        let mn0 = max(mm, p0.x);
        ll = ll * exp(mm - mn0) + p0.y * exp(p0.x - mn0);
        mm = mn0;
        let p1 = tile_s[16u + slot];
        let mn1 = max(mm, p1.x);
        ll = ll * exp(mm - mn1) + p1.y * exp(p1.x - mn1);
        mm = mn1;
        let p2 = tile_s[32u + slot];
        let mn2 = max(mm, p2.x);
        ll = ll * exp(mm - mn2) + p2.y * exp(p2.x - mn2);
        mm = mn2;
        let p3 = tile_s[48u + slot];
        let mn3 = max(mm, p3.x);
        ll = ll * exp(mm - mn3) + p3.y * exp(p3.x - mn3);
        mm = mn3;
        m0 = mm;
        l0 = ll;
    }
    workgroupBarrier();
    tile_s[lid] = vec2<f32>(m1, l1);
    workgroupBarrier();
    {
        var mm = -3.0e38;
        var ll = 0.0;
        let p0 = tile_s[0u + slot];
        let mn0 = max(mm, p0.x);
        ll = ll * exp(mm - mn0) + p0.y * exp(p0.x - mn0);
        mm = mn0;
        let p1 = tile_s[16u + slot];
        let mn1 = max(mm, p1.x);
        ll = ll * exp(mm - mn1) + p1.y * exp(p1.x - mn1);
        mm = mn1;
        let p2 = tile_s[32u + slot];
        let mn2 = max(mm, p2.x);
        ll = ll * exp(mm - mn2) + p2.y * exp(p2.x - mn2);
        mm = mn2;
        let p3 = tile_s[48u + slot];
        let mn3 = max(mm, p3.x);
        ll = ll * exp(mm - mn3) + p3.y * exp(p3.x - mn3);
        mm = mn3;
        m1 = mm;
        l1 = ll;
    }
    workgroupBarrier();
    tile_s[lid] = vec2<f32>(m2, l2);
    workgroupBarrier();
    {
        var mm = -3.0e38;
        var ll = 0.0;
        let p0 = tile_s[0u + slot];
        let mn0 = max(mm, p0.x);
        ll = ll * exp(mm - mn0) + p0.y * exp(p0.x - mn0);
        mm = mn0;
        let p1 = tile_s[16u + slot];
        let mn1 = max(mm, p1.x);
        ll = ll * exp(mm - mn1) + p1.y * exp(p1.x - mn1);
        mm = mn1;
        let p2 = tile_s[32u + slot];
        let mn2 = max(mm, p2.x);
        ll = ll * exp(mm - mn2) + p2.y * exp(p2.x - mn2);
        mm = mn2;
        let p3 = tile_s[48u + slot];
        let mn3 = max(mm, p3.x);
        ll = ll * exp(mm - mn3) + p3.y * exp(p3.x - mn3);
        mm = mn3;
        m2 = mm;
        l2 = ll;
    }
    workgroupBarrier();
    tile_s[lid] = vec2<f32>(m3, l3);
    workgroupBarrier();
    {
        var mm = -3.0e38;
        var ll = 0.0;
        let p0 = tile_s[0u + slot];
        let mn0 = max(mm, p0.x);
        ll = ll * exp(mm - mn0) + p0.y * exp(p0.x - mn0);
        mm = mn0;
        let p1 = tile_s[16u + slot];
        let mn1 = max(mm, p1.x);
        ll = ll * exp(mm - mn1) + p1.y * exp(p1.x - mn1);
        mm = mn1;
        let p2 = tile_s[32u + slot];
        let mn2 = max(mm, p2.x);
        ll = ll * exp(mm - mn2) + p2.y * exp(p2.x - mn2);
        mm = mn2;
        let p3 = tile_s[48u + slot];
        let mn3 = max(mm, p3.x);
        ll = ll * exp(mm - mn3) + p3.y * exp(p3.x - mn3);
        mm = mn3;
        m3 = mm;
        l3 = ll;
    }
    let lse0 = m0 + log(l0);
    if (split == 0u && live0) {
        stats[2u * (i0 * d.heads + h)] = lse0;
        stats[2u * (i0 * d.heads + h) + 1u] = dsum0;
    }
    var a0_0 = vec4<f32>(0.0);
    var a0_1 = vec4<f32>(0.0);
    var a0_2 = vec4<f32>(0.0);
    var a0_3 = vec4<f32>(0.0);
    var a0_4 = vec4<f32>(0.0);
    var a0_5 = vec4<f32>(0.0);
    var a0_6 = vec4<f32>(0.0);
    var a0_7 = vec4<f32>(0.0);
    var a0_8 = vec4<f32>(0.0);
    var a0_9 = vec4<f32>(0.0);
    var a0_10 = vec4<f32>(0.0);
    var a0_11 = vec4<f32>(0.0);
    var a0_12 = vec4<f32>(0.0);
    var a0_13 = vec4<f32>(0.0);
    var a0_14 = vec4<f32>(0.0);
    var a0_15 = vec4<f32>(0.0);
    let lse1 = m1 + log(l1);
    if (split == 0u && live1) {
        stats[2u * (i1 * d.heads + h)] = lse1;
        stats[2u * (i1 * d.heads + h) + 1u] = dsum1;
    }
    var a1_0 = vec4<f32>(0.0);
    var a1_1 = vec4<f32>(0.0);
    var a1_2 = vec4<f32>(0.0);
    var a1_3 = vec4<f32>(0.0);
    var a1_4 = vec4<f32>(0.0);
    var a1_5 = vec4<f32>(0.0);
    var a1_6 = vec4<f32>(0.0);
    var a1_7 = vec4<f32>(0.0);
    var a1_8 = vec4<f32>(0.0);
    var a1_9 = vec4<f32>(0.0);
    var a1_10 = vec4<f32>(0.0);
    var a1_11 = vec4<f32>(0.0);
    var a1_12 = vec4<f32>(0.0);
    var a1_13 = vec4<f32>(0.0);
    var a1_14 = vec4<f32>(0.0);
    var a1_15 = vec4<f32>(0.0);
    let lse2 = m2 + log(l2);
    if (split == 0u && live2) {
        stats[2u * (i2 * d.heads + h)] = lse2;
        stats[2u * (i2 * d.heads + h) + 1u] = dsum2;
    }
    var a2_0 = vec4<f32>(0.0);
    var a2_1 = vec4<f32>(0.0);
    var a2_2 = vec4<f32>(0.0);
    var a2_3 = vec4<f32>(0.0);
    var a2_4 = vec4<f32>(0.0);
    var a2_5 = vec4<f32>(0.0);
    var a2_6 = vec4<f32>(0.0);
    var a2_7 = vec4<f32>(0.0);
    var a2_8 = vec4<f32>(0.0);
    var a2_9 = vec4<f32>(0.0);
    var a2_10 = vec4<f32>(0.0);
    var a2_11 = vec4<f32>(0.0);
    var a2_12 = vec4<f32>(0.0);
    var a2_13 = vec4<f32>(0.0);
    var a2_14 = vec4<f32>(0.0);
    var a2_15 = vec4<f32>(0.0);
    let lse3 = m3 + log(l3);
    if (split == 0u && live3) {
        stats[2u * (i3 * d.heads + h)] = lse3;
        stats[2u * (i3 * d.heads + h) + 1u] = dsum3;
    }
    var a3_0 = vec4<f32>(0.0);
    var a3_1 = vec4<f32>(0.0);
    var a3_2 = vec4<f32>(0.0);
    var a3_3 = vec4<f32>(0.0);
    var a3_4 = vec4<f32>(0.0);
    var a3_5 = vec4<f32>(0.0);
    var a3_6 = vec4<f32>(0.0);
    var a3_7 = vec4<f32>(0.0);
    var a3_8 = vec4<f32>(0.0);
    var a3_9 = vec4<f32>(0.0);
    var a3_10 = vec4<f32>(0.0);
    var a3_11 = vec4<f32>(0.0);
    var a3_12 = vec4<f32>(0.0);
    var a3_13 = vec4<f32>(0.0);
    var a3_14 = vec4<f32>(0.0);
    var a3_15 = vec4<f32>(0.0);
    // dq = scale Σ_j P_ij (dout_i · v_j - D_i) k_j, each split its keys, then summed.
    for (var k = kmin + 4u * split; k < kmax; k += 16u) {
        let b0 = (min(k + 0u, klast) * d.kv_heads + kvh) * 16u;
        let b1 = (min(k + 1u, klast) * d.kv_heads + kvh) * 16u;
        let b2 = (min(k + 2u, klast) * d.kv_heads + kvh) * 16u;
        let b3 = (min(k + 3u, klast) * d.kv_heads + kvh) * 16u;
        let v00 = live0 && sees(kr0, lows0, k + 0u);
        let v01 = live0 && sees(kr0, lows0, k + 1u);
        let v02 = live0 && sees(kr0, lows0, k + 2u);
        let v03 = live0 && sees(kr0, lows0, k + 3u);
        let v10 = live1 && sees(kr1, lows1, k + 0u);
        let v11 = live1 && sees(kr1, lows1, k + 1u);
        let v12 = live1 && sees(kr1, lows1, k + 2u);
        let v13 = live1 && sees(kr1, lows1, k + 3u);
        let v20 = live2 && sees(kr2, lows2, k + 0u);
        let v21 = live2 && sees(kr2, lows2, k + 1u);
        let v22 = live2 && sees(kr2, lows2, k + 2u);
        let v23 = live2 && sees(kr2, lows2, k + 3u);
        let v30 = live3 && sees(kr3, lows3, k + 0u);
        let v31 = live3 && sees(kr3, lows3, k + 1u);
        let v32 = live3 && sees(kr3, lows3, k + 2u);
        let v33 = live3 && sees(kr3, lows3, k + 3u);
        var s00a = vec4<f32>(0.0);
        var s01a = vec4<f32>(0.0);
        var s02a = vec4<f32>(0.0);
        var s03a = vec4<f32>(0.0);
        var s10a = vec4<f32>(0.0);
        var s11a = vec4<f32>(0.0);
        var s12a = vec4<f32>(0.0);
        var s13a = vec4<f32>(0.0);
        var s20a = vec4<f32>(0.0);
        var s21a = vec4<f32>(0.0);
        var s22a = vec4<f32>(0.0);
        var s23a = vec4<f32>(0.0);
        var s30a = vec4<f32>(0.0);
        var s31a = vec4<f32>(0.0);
        var s32a = vec4<f32>(0.0);
        var s33a = vec4<f32>(0.0);
        let sk0_0 = kc[b0 + 0u];
        let sk1_0 = kc[b1 + 0u];
        let sk2_0 = kc[b2 + 0u];
        let sk3_0 = kc[b3 + 0u];
        s00a += q0_0 * sk0_0;
        s01a += q0_0 * sk1_0;
        s02a += q0_0 * sk2_0;
        s03a += q0_0 * sk3_0;
        s10a += q1_0 * sk0_0;
        s11a += q1_0 * sk1_0;
        s12a += q1_0 * sk2_0;
        s13a += q1_0 * sk3_0;
        s20a += q2_0 * sk0_0;
        s21a += q2_0 * sk1_0;
        s22a += q2_0 * sk2_0;
        s23a += q2_0 * sk3_0;
        s30a += q3_0 * sk0_0;
        s31a += q3_0 * sk1_0;
        s32a += q3_0 * sk2_0;
        s33a += q3_0 * sk3_0;
        let sk0_1 = kc[b0 + 1u];
        let sk1_1 = kc[b1 + 1u];
        let sk2_1 = kc[b2 + 1u];
        let sk3_1 = kc[b3 + 1u];
        s00a += q0_1 * sk0_1;
        s01a += q0_1 * sk1_1;
        s02a += q0_1 * sk2_1;
        s03a += q0_1 * sk3_1;
        s10a += q1_1 * sk0_1;
        s11a += q1_1 * sk1_1;
        s12a += q1_1 * sk2_1;
        s13a += q1_1 * sk3_1;
        s20a += q2_1 * sk0_1;
        s21a += q2_1 * sk1_1;
        s22a += q2_1 * sk2_1;
        s23a += q2_1 * sk3_1;
        s30a += q3_1 * sk0_1;
        s31a += q3_1 * sk1_1;
        s32a += q3_1 * sk2_1;
        s33a += q3_1 * sk3_1;
        let sk0_2 = kc[b0 + 2u];
        let sk1_2 = kc[b1 + 2u];
        let sk2_2 = kc[b2 + 2u];
        let sk3_2 = kc[b3 + 2u];
        s00a += q0_2 * sk0_2;
        s01a += q0_2 * sk1_2;
        s02a += q0_2 * sk2_2;
        s03a += q0_2 * sk3_2;
        s10a += q1_2 * sk0_2;
        s11a += q1_2 * sk1_2;
        s12a += q1_2 * sk2_2;
        s13a += q1_2 * sk3_2;
        s20a += q2_2 * sk0_2;
        s21a += q2_2 * sk1_2;
        s22a += q2_2 * sk2_2;
        s23a += q2_2 * sk3_2;
        s30a += q3_2 * sk0_2;
        s31a += q3_2 * sk1_2;
        s32a += q3_2 * sk2_2;
        s33a += q3_2 * sk3_2;
        let sk0_3 = kc[b0 + 3u];
        let sk1_3 = kc[b1 + 3u];
        let sk2_3 = kc[b2 + 3u];
        let sk3_3 = kc[b3 + 3u];
        s00a += q0_3 * sk0_3;
        s01a += q0_3 * sk1_3;
        s02a += q0_3 * sk2_3;
        s03a += q0_3 * sk3_3;
        s10a += q1_3 * sk0_3;
        s11a += q1_3 * sk1_3;
        s12a += q1_3 * sk2_3;
        s13a += q1_3 * sk3_3;
        s20a += q2_3 * sk0_3;
        s21a += q2_3 * sk1_3;
        s22a += q2_3 * sk2_3;
        s23a += q2_3 * sk3_3;
        s30a += q3_3 * sk0_3;
        s31a += q3_3 * sk1_3;
        s32a += q3_3 * sk2_3;
        s33a += q3_3 * sk3_3;
        let sk0_4 = kc[b0 + 4u];
        let sk1_4 = kc[b1 + 4u];
        let sk2_4 = kc[b2 + 4u];
        let sk3_4 = kc[b3 + 4u];
        s00a += q0_4 * sk0_4;
        s01a += q0_4 * sk1_4;
        s02a += q0_4 * sk2_4;
        s03a += q0_4 * sk3_4;
        s10a += q1_4 * sk0_4;
        s11a += q1_4 * sk1_4;
        s12a += q1_4 * sk2_4;
        s13a += q1_4 * sk3_4;
        s20a += q2_4 * sk0_4;
        s21a += q2_4 * sk1_4;
        s22a += q2_4 * sk2_4;
        s23a += q2_4 * sk3_4;
        s30a += q3_4 * sk0_4;
        s31a += q3_4 * sk1_4;
        s32a += q3_4 * sk2_4;
        s33a += q3_4 * sk3_4;
        let sk0_5 = kc[b0 + 5u];
        let sk1_5 = kc[b1 + 5u];
        let sk2_5 = kc[b2 + 5u];
        let sk3_5 = kc[b3 + 5u];
        s00a += q0_5 * sk0_5;
        s01a += q0_5 * sk1_5;
        s02a += q0_5 * sk2_5;
        s03a += q0_5 * sk3_5;
        s10a += q1_5 * sk0_5;
        s11a += q1_5 * sk1_5;
        s12a += q1_5 * sk2_5;
        s13a += q1_5 * sk3_5;
        s20a += q2_5 * sk0_5;
        s21a += q2_5 * sk1_5;
        s22a += q2_5 * sk2_5;
        s23a += q2_5 * sk3_5;
        s30a += q3_5 * sk0_5;
        s31a += q3_5 * sk1_5;
        s32a += q3_5 * sk2_5;
        s33a += q3_5 * sk3_5;
        let sk0_6 = kc[b0 + 6u];
        let sk1_6 = kc[b1 + 6u];
        let sk2_6 = kc[b2 + 6u];
        let sk3_6 = kc[b3 + 6u];
        s00a += q0_6 * sk0_6;
        s01a += q0_6 * sk1_6;
        s02a += q0_6 * sk2_6;
        s03a += q0_6 * sk3_6;
        s10a += q1_6 * sk0_6;
        s11a += q1_6 * sk1_6;
        s12a += q1_6 * sk2_6;
        s13a += q1_6 * sk3_6;
        s20a += q2_6 * sk0_6;
        s21a += q2_6 * sk1_6;
        s22a += q2_6 * sk2_6;
        s23a += q2_6 * sk3_6;
        s30a += q3_6 * sk0_6;
        s31a += q3_6 * sk1_6;
        s32a += q3_6 * sk2_6;
        s33a += q3_6 * sk3_6;
        let sk0_7 = kc[b0 + 7u];
        let sk1_7 = kc[b1 + 7u];
        let sk2_7 = kc[b2 + 7u];
        let sk3_7 = kc[b3 + 7u];
        s00a += q0_7 * sk0_7;
        s01a += q0_7 * sk1_7;
        s02a += q0_7 * sk2_7;
        s03a += q0_7 * sk3_7;
        s10a += q1_7 * sk0_7;
        s11a += q1_7 * sk1_7;
        s12a += q1_7 * sk2_7;
        s13a += q1_7 * sk3_7;
        s20a += q2_7 * sk0_7;
        s21a += q2_7 * sk1_7;
        s22a += q2_7 * sk2_7;
        s23a += q2_7 * sk3_7;
        s30a += q3_7 * sk0_7;
        s31a += q3_7 * sk1_7;
        s32a += q3_7 * sk2_7;
        s33a += q3_7 * sk3_7;
        let sk0_8 = kc[b0 + 8u];
        let sk1_8 = kc[b1 + 8u];
        let sk2_8 = kc[b2 + 8u];
        let sk3_8 = kc[b3 + 8u];
        s00a += q0_8 * sk0_8;
        s01a += q0_8 * sk1_8;
        s02a += q0_8 * sk2_8;
        s03a += q0_8 * sk3_8;
        s10a += q1_8 * sk0_8;
        s11a += q1_8 * sk1_8;
        s12a += q1_8 * sk2_8;
        s13a += q1_8 * sk3_8;
        s20a += q2_8 * sk0_8;
        s21a += q2_8 * sk1_8;
        s22a += q2_8 * sk2_8;
        s23a += q2_8 * sk3_8;
        s30a += q3_8 * sk0_8;
        s31a += q3_8 * sk1_8;
        s32a += q3_8 * sk2_8;
        s33a += q3_8 * sk3_8;
        let sk0_9 = kc[b0 + 9u];
        let sk1_9 = kc[b1 + 9u];
        let sk2_9 = kc[b2 + 9u];
        let sk3_9 = kc[b3 + 9u];
        s00a += q0_9 * sk0_9;
        s01a += q0_9 * sk1_9;
        s02a += q0_9 * sk2_9;
        s03a += q0_9 * sk3_9;
        s10a += q1_9 * sk0_9;
        s11a += q1_9 * sk1_9;
        s12a += q1_9 * sk2_9;
        s13a += q1_9 * sk3_9;
        s20a += q2_9 * sk0_9;
        s21a += q2_9 * sk1_9;
        s22a += q2_9 * sk2_9;
        s23a += q2_9 * sk3_9;
        s30a += q3_9 * sk0_9;
        s31a += q3_9 * sk1_9;
        s32a += q3_9 * sk2_9;
        s33a += q3_9 * sk3_9;
        let sk0_10 = kc[b0 + 10u];
        let sk1_10 = kc[b1 + 10u];
        let sk2_10 = kc[b2 + 10u];
        let sk3_10 = kc[b3 + 10u];
        s00a += q0_10 * sk0_10;
        s01a += q0_10 * sk1_10;
        s02a += q0_10 * sk2_10;
        s03a += q0_10 * sk3_10;
        s10a += q1_10 * sk0_10;
        s11a += q1_10 * sk1_10;
        s12a += q1_10 * sk2_10;
        s13a += q1_10 * sk3_10;
        s20a += q2_10 * sk0_10;
        s21a += q2_10 * sk1_10;
        s22a += q2_10 * sk2_10;
        s23a += q2_10 * sk3_10;
        s30a += q3_10 * sk0_10;
        s31a += q3_10 * sk1_10;
        s32a += q3_10 * sk2_10;
        s33a += q3_10 * sk3_10;
        let sk0_11 = kc[b0 + 11u];
        let sk1_11 = kc[b1 + 11u];
        let sk2_11 = kc[b2 + 11u];
        let sk3_11 = kc[b3 + 11u];
        s00a += q0_11 * sk0_11;
        s01a += q0_11 * sk1_11;
        s02a += q0_11 * sk2_11;
        s03a += q0_11 * sk3_11;
        s10a += q1_11 * sk0_11;
        s11a += q1_11 * sk1_11;
        s12a += q1_11 * sk2_11;
        s13a += q1_11 * sk3_11;
        s20a += q2_11 * sk0_11;
        s21a += q2_11 * sk1_11;
        s22a += q2_11 * sk2_11;
        s23a += q2_11 * sk3_11;
        s30a += q3_11 * sk0_11;
        s31a += q3_11 * sk1_11;
        s32a += q3_11 * sk2_11;
        s33a += q3_11 * sk3_11;
        let sk0_12 = kc[b0 + 12u];
        let sk1_12 = kc[b1 + 12u];
        let sk2_12 = kc[b2 + 12u];
        let sk3_12 = kc[b3 + 12u];
        s00a += q0_12 * sk0_12;
        s01a += q0_12 * sk1_12;
        s02a += q0_12 * sk2_12;
        s03a += q0_12 * sk3_12;
        s10a += q1_12 * sk0_12;
        s11a += q1_12 * sk1_12;
        s12a += q1_12 * sk2_12;
        s13a += q1_12 * sk3_12;
        s20a += q2_12 * sk0_12;
        s21a += q2_12 * sk1_12;
        s22a += q2_12 * sk2_12;
        s23a += q2_12 * sk3_12;
        s30a += q3_12 * sk0_12;
        s31a += q3_12 * sk1_12;
        s32a += q3_12 * sk2_12;
        s33a += q3_12 * sk3_12;
        let sk0_13 = kc[b0 + 13u];
        let sk1_13 = kc[b1 + 13u];
        let sk2_13 = kc[b2 + 13u];
        let sk3_13 = kc[b3 + 13u];
        s00a += q0_13 * sk0_13;
        s01a += q0_13 * sk1_13;
        s02a += q0_13 * sk2_13;
        s03a += q0_13 * sk3_13;
        s10a += q1_13 * sk0_13;
        s11a += q1_13 * sk1_13;
        s12a += q1_13 * sk2_13;
        s13a += q1_13 * sk3_13;
        s20a += q2_13 * sk0_13;
        s21a += q2_13 * sk1_13;
        s22a += q2_13 * sk2_13;
        s23a += q2_13 * sk3_13;
        s30a += q3_13 * sk0_13;
        s31a += q3_13 * sk1_13;
        s32a += q3_13 * sk2_13;
        s33a += q3_13 * sk3_13;
        let sk0_14 = kc[b0 + 14u];
        let sk1_14 = kc[b1 + 14u];
        let sk2_14 = kc[b2 + 14u];
        let sk3_14 = kc[b3 + 14u];
        s00a += q0_14 * sk0_14;
        s01a += q0_14 * sk1_14;
        s02a += q0_14 * sk2_14;
        s03a += q0_14 * sk3_14;
        s10a += q1_14 * sk0_14;
        s11a += q1_14 * sk1_14;
        s12a += q1_14 * sk2_14;
        s13a += q1_14 * sk3_14;
        s20a += q2_14 * sk0_14;
        s21a += q2_14 * sk1_14;
        s22a += q2_14 * sk2_14;
        s23a += q2_14 * sk3_14;
        s30a += q3_14 * sk0_14;
        s31a += q3_14 * sk1_14;
        s32a += q3_14 * sk2_14;
        s33a += q3_14 * sk3_14;
        let sk0_15 = kc[b0 + 15u];
        let sk1_15 = kc[b1 + 15u];
        let sk2_15 = kc[b2 + 15u];
        let sk3_15 = kc[b3 + 15u];
        s00a += q0_15 * sk0_15;
        s01a += q0_15 * sk1_15;
        s02a += q0_15 * sk2_15;
        s03a += q0_15 * sk3_15;
        s10a += q1_15 * sk0_15;
        s11a += q1_15 * sk1_15;
        s12a += q1_15 * sk2_15;
        s13a += q1_15 * sk3_15;
        s20a += q2_15 * sk0_15;
        s21a += q2_15 * sk1_15;
        s22a += q2_15 * sk2_15;
        s23a += q2_15 * sk3_15;
        s30a += q3_15 * sk0_15;
        s31a += q3_15 * sk1_15;
        s32a += q3_15 * sk2_15;
        s33a += q3_15 * sk3_15;
        var e00a = vec4<f32>(0.0);
        var e01a = vec4<f32>(0.0);
        var e02a = vec4<f32>(0.0);
        var e03a = vec4<f32>(0.0);
        var e10a = vec4<f32>(0.0);
        var e11a = vec4<f32>(0.0);
        var e12a = vec4<f32>(0.0);
        var e13a = vec4<f32>(0.0);
        var e20a = vec4<f32>(0.0);
        var e21a = vec4<f32>(0.0);
        var e22a = vec4<f32>(0.0);
        var e23a = vec4<f32>(0.0);
        var e30a = vec4<f32>(0.0);
        var e31a = vec4<f32>(0.0);
        var e32a = vec4<f32>(0.0);
        var e33a = vec4<f32>(0.0);
        let ek0_0 = vc[b0 + 0u];
        let ek1_0 = vc[b1 + 0u];
        let ek2_0 = vc[b2 + 0u];
        let ek3_0 = vc[b3 + 0u];
        e00a += g0_0 * ek0_0;
        e01a += g0_0 * ek1_0;
        e02a += g0_0 * ek2_0;
        e03a += g0_0 * ek3_0;
        e10a += g1_0 * ek0_0;
        e11a += g1_0 * ek1_0;
        e12a += g1_0 * ek2_0;
        e13a += g1_0 * ek3_0;
        e20a += g2_0 * ek0_0;
        e21a += g2_0 * ek1_0;
        e22a += g2_0 * ek2_0;
        e23a += g2_0 * ek3_0;
        e30a += g3_0 * ek0_0;
        e31a += g3_0 * ek1_0;
        e32a += g3_0 * ek2_0;
        e33a += g3_0 * ek3_0;
        let ek0_1 = vc[b0 + 1u];
        let ek1_1 = vc[b1 + 1u];
        let ek2_1 = vc[b2 + 1u];
        let ek3_1 = vc[b3 + 1u];
        e00a += g0_1 * ek0_1;
        e01a += g0_1 * ek1_1;
        e02a += g0_1 * ek2_1;
        e03a += g0_1 * ek3_1;
        e10a += g1_1 * ek0_1;
        e11a += g1_1 * ek1_1;
        e12a += g1_1 * ek2_1;
        e13a += g1_1 * ek3_1;
        e20a += g2_1 * ek0_1;
        e21a += g2_1 * ek1_1;
        e22a += g2_1 * ek2_1;
        e23a += g2_1 * ek3_1;
        e30a += g3_1 * ek0_1;
        e31a += g3_1 * ek1_1;
        e32a += g3_1 * ek2_1;
        e33a += g3_1 * ek3_1;
        let ek0_2 = vc[b0 + 2u];
        let ek1_2 = vc[b1 + 2u];
        let ek2_2 = vc[b2 + 2u];
        let ek3_2 = vc[b3 + 2u];
        e00a += g0_2 * ek0_2;
        e01a += g0_2 * ek1_2;
        e02a += g0_2 * ek2_2;
        e03a += g0_2 * ek3_2;
        e10a += g1_2 * ek0_2;
        e11a += g1_2 * ek1_2;
        e12a += g1_2 * ek2_2;
        e13a += g1_2 * ek3_2;
        e20a += g2_2 * ek0_2;
        e21a += g2_2 * ek1_2;
        e22a += g2_2 * ek2_2;
        e23a += g2_2 * ek3_2;
        e30a += g3_2 * ek0_2;
        e31a += g3_2 * ek1_2;
        e32a += g3_2 * ek2_2;
        e33a += g3_2 * ek3_2;
        let ek0_3 = vc[b0 + 3u];
        let ek1_3 = vc[b1 + 3u];
        let ek2_3 = vc[b2 + 3u];
        let ek3_3 = vc[b3 + 3u];
        e00a += g0_3 * ek0_3;
        e01a += g0_3 * ek1_3;
        e02a += g0_3 * ek2_3;
        e03a += g0_3 * ek3_3;
        e10a += g1_3 * ek0_3;
        e11a += g1_3 * ek1_3;
        e12a += g1_3 * ek2_3;
        e13a += g1_3 * ek3_3;
        e20a += g2_3 * ek0_3;
        e21a += g2_3 * ek1_3;
        e22a += g2_3 * ek2_3;
        e23a += g2_3 * ek3_3;
        e30a += g3_3 * ek0_3;
        e31a += g3_3 * ek1_3;
        e32a += g3_3 * ek2_3;
        e33a += g3_3 * ek3_3;
        let ek0_4 = vc[b0 + 4u];
        let ek1_4 = vc[b1 + 4u];
        let ek2_4 = vc[b2 + 4u];
        let ek3_4 = vc[b3 + 4u];
        e00a += g0_4 * ek0_4;
        e01a += g0_4 * ek1_4;
        e02a += g0_4 * ek2_4;
        e03a += g0_4 * ek3_4;
        e10a += g1_4 * ek0_4;
        e11a += g1_4 * ek1_4;
        e12a += g1_4 * ek2_4;
        e13a += g1_4 * ek3_4;
        e20a += g2_4 * ek0_4;
        e21a += g2_4 * ek1_4;
        e22a += g2_4 * ek2_4;
        e23a += g2_4 * ek3_4;
        e30a += g3_4 * ek0_4;
        e31a += g3_4 * ek1_4;
        e32a += g3_4 * ek2_4;
        e33a += g3_4 * ek3_4;
        let ek0_5 = vc[b0 + 5u];
        let ek1_5 = vc[b1 + 5u];
        let ek2_5 = vc[b2 + 5u];
        let ek3_5 = vc[b3 + 5u];
        e00a += g0_5 * ek0_5;
        e01a += g0_5 * ek1_5;
        e02a += g0_5 * ek2_5;
        e03a += g0_5 * ek3_5;
        e10a += g1_5 * ek0_5;
        e11a += g1_5 * ek1_5;
        e12a += g1_5 * ek2_5;
        e13a += g1_5 * ek3_5;
        e20a += g2_5 * ek0_5;
        e21a += g2_5 * ek1_5;
        e22a += g2_5 * ek2_5;
        e23a += g2_5 * ek3_5;
        e30a += g3_5 * ek0_5;
        e31a += g3_5 * ek1_5;
        e32a += g3_5 * ek2_5;
        e33a += g3_5 * ek3_5;
        let ek0_6 = vc[b0 + 6u];
        let ek1_6 = vc[b1 + 6u];
        let ek2_6 = vc[b2 + 6u];
        let ek3_6 = vc[b3 + 6u];
        e00a += g0_6 * ek0_6;
        e01a += g0_6 * ek1_6;
        e02a += g0_6 * ek2_6;
        e03a += g0_6 * ek3_6;
        e10a += g1_6 * ek0_6;
        e11a += g1_6 * ek1_6;
        e12a += g1_6 * ek2_6;
        e13a += g1_6 * ek3_6;
        e20a += g2_6 * ek0_6;
        e21a += g2_6 * ek1_6;
        e22a += g2_6 * ek2_6;
        e23a += g2_6 * ek3_6;
        e30a += g3_6 * ek0_6;
        e31a += g3_6 * ek1_6;
        e32a += g3_6 * ek2_6;
        e33a += g3_6 * ek3_6;
        let ek0_7 = vc[b0 + 7u];
        let ek1_7 = vc[b1 + 7u];
        let ek2_7 = vc[b2 + 7u];
        let ek3_7 = vc[b3 + 7u];
        e00a += g0_7 * ek0_7;
        e01a += g0_7 * ek1_7;
        e02a += g0_7 * ek2_7;
        e03a += g0_7 * ek3_7;
        e10a += g1_7 * ek0_7;
        e11a += g1_7 * ek1_7;
        e12a += g1_7 * ek2_7;
        e13a += g1_7 * ek3_7;
        e20a += g2_7 * ek0_7;
        e21a += g2_7 * ek1_7;
        e22a += g2_7 * ek2_7;
        e23a += g2_7 * ek3_7;
        e30a += g3_7 * ek0_7;
        e31a += g3_7 * ek1_7;
        e32a += g3_7 * ek2_7;
        e33a += g3_7 * ek3_7;
        let ek0_8 = vc[b0 + 8u];
        let ek1_8 = vc[b1 + 8u];
        let ek2_8 = vc[b2 + 8u];
        let ek3_8 = vc[b3 + 8u];
        e00a += g0_8 * ek0_8;
        e01a += g0_8 * ek1_8;
        e02a += g0_8 * ek2_8;
        e03a += g0_8 * ek3_8;
        e10a += g1_8 * ek0_8;
        e11a += g1_8 * ek1_8;
        e12a += g1_8 * ek2_8;
        e13a += g1_8 * ek3_8;
        e20a += g2_8 * ek0_8;
        e21a += g2_8 * ek1_8;
        e22a += g2_8 * ek2_8;
        e23a += g2_8 * ek3_8;
        e30a += g3_8 * ek0_8;
        e31a += g3_8 * ek1_8;
        e32a += g3_8 * ek2_8;
        e33a += g3_8 * ek3_8;
        let ek0_9 = vc[b0 + 9u];
        let ek1_9 = vc[b1 + 9u];
        let ek2_9 = vc[b2 + 9u];
        let ek3_9 = vc[b3 + 9u];
        e00a += g0_9 * ek0_9;
        e01a += g0_9 * ek1_9;
        e02a += g0_9 * ek2_9;
        e03a += g0_9 * ek3_9;
        e10a += g1_9 * ek0_9;
        e11a += g1_9 * ek1_9;
        e12a += g1_9 * ek2_9;
        e13a += g1_9 * ek3_9;
        e20a += g2_9 * ek0_9;
        e21a += g2_9 * ek1_9;
        e22a += g2_9 * ek2_9;
        e23a += g2_9 * ek3_9;
        e30a += g3_9 * ek0_9;
        e31a += g3_9 * ek1_9;
        e32a += g3_9 * ek2_9;
        e33a += g3_9 * ek3_9;
        let ek0_10 = vc[b0 + 10u];
        let ek1_10 = vc[b1 + 10u];
        let ek2_10 = vc[b2 + 10u];
        let ek3_10 = vc[b3 + 10u];
        e00a += g0_10 * ek0_10;
        e01a += g0_10 * ek1_10;
        e02a += g0_10 * ek2_10;
        e03a += g0_10 * ek3_10;
        e10a += g1_10 * ek0_10;
        e11a += g1_10 * ek1_10;
        e12a += g1_10 * ek2_10;
        e13a += g1_10 * ek3_10;
        e20a += g2_10 * ek0_10;
        e21a += g2_10 * ek1_10;
        e22a += g2_10 * ek2_10;
        e23a += g2_10 * ek3_10;
        e30a += g3_10 * ek0_10;
        e31a += g3_10 * ek1_10;
        e32a += g3_10 * ek2_10;
        e33a += g3_10 * ek3_10;
        let ek0_11 = vc[b0 + 11u];
        let ek1_11 = vc[b1 + 11u];
        let ek2_11 = vc[b2 + 11u];
        let ek3_11 = vc[b3 + 11u];
        e00a += g0_11 * ek0_11;
        e01a += g0_11 * ek1_11;
        e02a += g0_11 * ek2_11;
        e03a += g0_11 * ek3_11;
        e10a += g1_11 * ek0_11;
        e11a += g1_11 * ek1_11;
        e12a += g1_11 * ek2_11;
        e13a += g1_11 * ek3_11;
        e20a += g2_11 * ek0_11;
        e21a += g2_11 * ek1_11;
        e22a += g2_11 * ek2_11;
        e23a += g2_11 * ek3_11;
        e30a += g3_11 * ek0_11;
        e31a += g3_11 * ek1_11;
        e32a += g3_11 * ek2_11;
        e33a += g3_11 * ek3_11;
        let ek0_12 = vc[b0 + 12u];
        let ek1_12 = vc[b1 + 12u];
        let ek2_12 = vc[b2 + 12u];
        let ek3_12 = vc[b3 + 12u];
        e00a += g0_12 * ek0_12;
        e01a += g0_12 * ek1_12;
        e02a += g0_12 * ek2_12;
        e03a += g0_12 * ek3_12;
        e10a += g1_12 * ek0_12;
        e11a += g1_12 * ek1_12;
        e12a += g1_12 * ek2_12;
        e13a += g1_12 * ek3_12;
        e20a += g2_12 * ek0_12;
        e21a += g2_12 * ek1_12;
        e22a += g2_12 * ek2_12;
        e23a += g2_12 * ek3_12;
        e30a += g3_12 * ek0_12;
        e31a += g3_12 * ek1_12;
        e32a += g3_12 * ek2_12;
        e33a += g3_12 * ek3_12;
        let ek0_13 = vc[b0 + 13u];
        let ek1_13 = vc[b1 + 13u];
        let ek2_13 = vc[b2 + 13u];
        let ek3_13 = vc[b3 + 13u];
        e00a += g0_13 * ek0_13;
        e01a += g0_13 * ek1_13;
        e02a += g0_13 * ek2_13;
        e03a += g0_13 * ek3_13;
        e10a += g1_13 * ek0_13;
        e11a += g1_13 * ek1_13;
        e12a += g1_13 * ek2_13;
        e13a += g1_13 * ek3_13;
        e20a += g2_13 * ek0_13;
        e21a += g2_13 * ek1_13;
        e22a += g2_13 * ek2_13;
        e23a += g2_13 * ek3_13;
        e30a += g3_13 * ek0_13;
        e31a += g3_13 * ek1_13;
        e32a += g3_13 * ek2_13;
        e33a += g3_13 * ek3_13;
        let ek0_14 = vc[b0 + 14u];
        let ek1_14 = vc[b1 + 14u];
        let ek2_14 = vc[b2 + 14u];
        let ek3_14 = vc[b3 + 14u];
        e00a += g0_14 * ek0_14;
        e01a += g0_14 * ek1_14;
        e02a += g0_14 * ek2_14;
        e03a += g0_14 * ek3_14;
        e10a += g1_14 * ek0_14;
        e11a += g1_14 * ek1_14;
        e12a += g1_14 * ek2_14;
        e13a += g1_14 * ek3_14;
        e20a += g2_14 * ek0_14;
        e21a += g2_14 * ek1_14;
        e22a += g2_14 * ek2_14;
        e23a += g2_14 * ek3_14;
        e30a += g3_14 * ek0_14;
        e31a += g3_14 * ek1_14;
        e32a += g3_14 * ek2_14;
        e33a += g3_14 * ek3_14;
        let ek0_15 = vc[b0 + 15u];
        let ek1_15 = vc[b1 + 15u];
        let ek2_15 = vc[b2 + 15u];
        let ek3_15 = vc[b3 + 15u];
        e00a += g0_15 * ek0_15;
        e01a += g0_15 * ek1_15;
        e02a += g0_15 * ek2_15;
        e03a += g0_15 * ek3_15;
        e10a += g1_15 * ek0_15;
        e11a += g1_15 * ek1_15;
        e12a += g1_15 * ek2_15;
        e13a += g1_15 * ek3_15;
        e20a += g2_15 * ek0_15;
        e21a += g2_15 * ek1_15;
        e22a += g2_15 * ek2_15;
        e23a += g2_15 * ek3_15;
        e30a += g3_15 * ek0_15;
        e31a += g3_15 * ek1_15;
        e32a += g3_15 * ek2_15;
        e33a += g3_15 * ek3_15;
        let w00 = select(0.0, exp(sum4(s00a) - lse0) * (sum4(e00a) - dsum0), v00);
        let w01 = select(0.0, exp(sum4(s01a) - lse0) * (sum4(e01a) - dsum0), v01);
        let w02 = select(0.0, exp(sum4(s02a) - lse0) * (sum4(e02a) - dsum0), v02);
        let w03 = select(0.0, exp(sum4(s03a) - lse0) * (sum4(e03a) - dsum0), v03);
        let w10 = select(0.0, exp(sum4(s10a) - lse1) * (sum4(e10a) - dsum1), v10);
        let w11 = select(0.0, exp(sum4(s11a) - lse1) * (sum4(e11a) - dsum1), v11);
        let w12 = select(0.0, exp(sum4(s12a) - lse1) * (sum4(e12a) - dsum1), v12);
        let w13 = select(0.0, exp(sum4(s13a) - lse1) * (sum4(e13a) - dsum1), v13);
        let w20 = select(0.0, exp(sum4(s20a) - lse2) * (sum4(e20a) - dsum2), v20);
        let w21 = select(0.0, exp(sum4(s21a) - lse2) * (sum4(e21a) - dsum2), v21);
        let w22 = select(0.0, exp(sum4(s22a) - lse2) * (sum4(e22a) - dsum2), v22);
        let w23 = select(0.0, exp(sum4(s23a) - lse2) * (sum4(e23a) - dsum2), v23);
        let w30 = select(0.0, exp(sum4(s30a) - lse3) * (sum4(e30a) - dsum3), v30);
        let w31 = select(0.0, exp(sum4(s31a) - lse3) * (sum4(e31a) - dsum3), v31);
        let w32 = select(0.0, exp(sum4(s32a) - lse3) * (sum4(e32a) - dsum3), v32);
        let w33 = select(0.0, exp(sum4(s33a) - lse3) * (sum4(e33a) - dsum3), v33);
        a0_0 += w00 * sk0_0 + w01 * sk1_0 + w02 * sk2_0 + w03 * sk3_0;
        a1_0 += w10 * sk0_0 + w11 * sk1_0 + w12 * sk2_0 + w13 * sk3_0;
        a2_0 += w20 * sk0_0 + w21 * sk1_0 + w22 * sk2_0 + w23 * sk3_0;
        a3_0 += w30 * sk0_0 + w31 * sk1_0 + w32 * sk2_0 + w33 * sk3_0;
        a0_1 += w00 * sk0_1 + w01 * sk1_1 + w02 * sk2_1 + w03 * sk3_1;
        a1_1 += w10 * sk0_1 + w11 * sk1_1 + w12 * sk2_1 + w13 * sk3_1;
        a2_1 += w20 * sk0_1 + w21 * sk1_1 + w22 * sk2_1 + w23 * sk3_1;
        a3_1 += w30 * sk0_1 + w31 * sk1_1 + w32 * sk2_1 + w33 * sk3_1;
        a0_2 += w00 * sk0_2 + w01 * sk1_2 + w02 * sk2_2 + w03 * sk3_2;
        a1_2 += w10 * sk0_2 + w11 * sk1_2 + w12 * sk2_2 + w13 * sk3_2;
        a2_2 += w20 * sk0_2 + w21 * sk1_2 + w22 * sk2_2 + w23 * sk3_2;
        a3_2 += w30 * sk0_2 + w31 * sk1_2 + w32 * sk2_2 + w33 * sk3_2;
        a0_3 += w00 * sk0_3 + w01 * sk1_3 + w02 * sk2_3 + w03 * sk3_3;
        a1_3 += w10 * sk0_3 + w11 * sk1_3 + w12 * sk2_3 + w13 * sk3_3;
        a2_3 += w20 * sk0_3 + w21 * sk1_3 + w22 * sk2_3 + w23 * sk3_3;
        a3_3 += w30 * sk0_3 + w31 * sk1_3 + w32 * sk2_3 + w33 * sk3_3;
        a0_4 += w00 * sk0_4 + w01 * sk1_4 + w02 * sk2_4 + w03 * sk3_4;
        a1_4 += w10 * sk0_4 + w11 * sk1_4 + w12 * sk2_4 + w13 * sk3_4;
        a2_4 += w20 * sk0_4 + w21 * sk1_4 + w22 * sk2_4 + w23 * sk3_4;
        a3_4 += w30 * sk0_4 + w31 * sk1_4 + w32 * sk2_4 + w33 * sk3_4;
        a0_5 += w00 * sk0_5 + w01 * sk1_5 + w02 * sk2_5 + w03 * sk3_5;
        a1_5 += w10 * sk0_5 + w11 * sk1_5 + w12 * sk2_5 + w13 * sk3_5;
        a2_5 += w20 * sk0_5 + w21 * sk1_5 + w22 * sk2_5 + w23 * sk3_5;
        a3_5 += w30 * sk0_5 + w31 * sk1_5 + w32 * sk2_5 + w33 * sk3_5;
        a0_6 += w00 * sk0_6 + w01 * sk1_6 + w02 * sk2_6 + w03 * sk3_6;
        a1_6 += w10 * sk0_6 + w11 * sk1_6 + w12 * sk2_6 + w13 * sk3_6;
        a2_6 += w20 * sk0_6 + w21 * sk1_6 + w22 * sk2_6 + w23 * sk3_6;
        a3_6 += w30 * sk0_6 + w31 * sk1_6 + w32 * sk2_6 + w33 * sk3_6;
        a0_7 += w00 * sk0_7 + w01 * sk1_7 + w02 * sk2_7 + w03 * sk3_7;
        a1_7 += w10 * sk0_7 + w11 * sk1_7 + w12 * sk2_7 + w13 * sk3_7;
        a2_7 += w20 * sk0_7 + w21 * sk1_7 + w22 * sk2_7 + w23 * sk3_7;
        a3_7 += w30 * sk0_7 + w31 * sk1_7 + w32 * sk2_7 + w33 * sk3_7;
        a0_8 += w00 * sk0_8 + w01 * sk1_8 + w02 * sk2_8 + w03 * sk3_8;
        a1_8 += w10 * sk0_8 + w11 * sk1_8 + w12 * sk2_8 + w13 * sk3_8;
        a2_8 += w20 * sk0_8 + w21 * sk1_8 + w22 * sk2_8 + w23 * sk3_8;
        a3_8 += w30 * sk0_8 + w31 * sk1_8 + w32 * sk2_8 + w33 * sk3_8;
        a0_9 += w00 * sk0_9 + w01 * sk1_9 + w02 * sk2_9 + w03 * sk3_9;
        a1_9 += w10 * sk0_9 + w11 * sk1_9 + w12 * sk2_9 + w13 * sk3_9;
        a2_9 += w20 * sk0_9 + w21 * sk1_9 + w22 * sk2_9 + w23 * sk3_9;
        a3_9 += w30 * sk0_9 + w31 * sk1_9 + w32 * sk2_9 + w33 * sk3_9;
        a0_10 += w00 * sk0_10 + w01 * sk1_10 + w02 * sk2_10 + w03 * sk3_10;
        a1_10 += w10 * sk0_10 + w11 * sk1_10 + w12 * sk2_10 + w13 * sk3_10;
        a2_10 += w20 * sk0_10 + w21 * sk1_10 + w22 * sk2_10 + w23 * sk3_10;
        a3_10 += w30 * sk0_10 + w31 * sk1_10 + w32 * sk2_10 + w33 * sk3_10;
        a0_11 += w00 * sk0_11 + w01 * sk1_11 + w02 * sk2_11 + w03 * sk3_11;
        a1_11 += w10 * sk0_11 + w11 * sk1_11 + w12 * sk2_11 + w13 * sk3_11;
        a2_11 += w20 * sk0_11 + w21 * sk1_11 + w22 * sk2_11 + w23 * sk3_11;
        a3_11 += w30 * sk0_11 + w31 * sk1_11 + w32 * sk2_11 + w33 * sk3_11;
        a0_12 += w00 * sk0_12 + w01 * sk1_12 + w02 * sk2_12 + w03 * sk3_12;
        a1_12 += w10 * sk0_12 + w11 * sk1_12 + w12 * sk2_12 + w13 * sk3_12;
        a2_12 += w20 * sk0_12 + w21 * sk1_12 + w22 * sk2_12 + w23 * sk3_12;
        a3_12 += w30 * sk0_12 + w31 * sk1_12 + w32 * sk2_12 + w33 * sk3_12;
        a0_13 += w00 * sk0_13 + w01 * sk1_13 + w02 * sk2_13 + w03 * sk3_13;
        a1_13 += w10 * sk0_13 + w11 * sk1_13 + w12 * sk2_13 + w13 * sk3_13;
        a2_13 += w20 * sk0_13 + w21 * sk1_13 + w22 * sk2_13 + w23 * sk3_13;
        a3_13 += w30 * sk0_13 + w31 * sk1_13 + w32 * sk2_13 + w33 * sk3_13;
        a0_14 += w00 * sk0_14 + w01 * sk1_14 + w02 * sk2_14 + w03 * sk3_14;
        a1_14 += w10 * sk0_14 + w11 * sk1_14 + w12 * sk2_14 + w13 * sk3_14;
        a2_14 += w20 * sk0_14 + w21 * sk1_14 + w22 * sk2_14 + w23 * sk3_14;
        a3_14 += w30 * sk0_14 + w31 * sk1_14 + w32 * sk2_14 + w33 * sk3_14;
        a0_15 += w00 * sk0_15 + w01 * sk1_15 + w02 * sk2_15 + w03 * sk3_15;
        a1_15 += w10 * sk0_15 + w11 * sk1_15 + w12 * sk2_15 + w13 * sk3_15;
        a2_15 += w20 * sk0_15 + w21 * sk1_15 + w22 * sk2_15 + w23 * sk3_15;
        a3_15 += w30 * sk0_15 + w31 * sk1_15 + w32 * sk2_15 + w33 * sk3_15;
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a0_0;
            tile_a[e + 1u] = a0_1;
            tile_a[e + 2u] = a0_2;
            tile_a[e + 3u] = a0_3;
            tile_a[e + 4u] = a0_4;
            tile_a[e + 5u] = a0_5;
            tile_a[e + 6u] = a0_6;
            tile_a[e + 7u] = a0_7;
            tile_a[e + 8u] = a0_8;
            tile_a[e + 9u] = a0_9;
            tile_a[e + 10u] = a0_10;
            tile_a[e + 11u] = a0_11;
            tile_a[e + 12u] = a0_12;
            tile_a[e + 13u] = a0_13;
            tile_a[e + 14u] = a0_14;
            tile_a[e + 15u] = a0_15;
        } else {
            tile_b[e + 0u] = a0_0;
            tile_b[e + 1u] = a0_1;
            tile_b[e + 2u] = a0_2;
            tile_b[e + 3u] = a0_3;
            tile_b[e + 4u] = a0_4;
            tile_b[e + 5u] = a0_5;
            tile_b[e + 6u] = a0_6;
            tile_b[e + 7u] = a0_7;
            tile_b[e + 8u] = a0_8;
            tile_b[e + 9u] = a0_9;
            tile_b[e + 10u] = a0_10;
            tile_b[e + 11u] = a0_11;
            tile_b[e + 12u] = a0_12;
            tile_b[e + 13u] = a0_13;
            tile_b[e + 14u] = a0_14;
            tile_b[e + 15u] = a0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        a0_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        a0_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        a0_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        a0_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        a0_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        a0_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        a0_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        a0_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        a0_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        a0_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        a0_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        a0_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        a0_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        a0_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        a0_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        a0_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a0_0;
            tile_a[e + 1u] = a0_1;
            tile_a[e + 2u] = a0_2;
            tile_a[e + 3u] = a0_3;
            tile_a[e + 4u] = a0_4;
            tile_a[e + 5u] = a0_5;
            tile_a[e + 6u] = a0_6;
            tile_a[e + 7u] = a0_7;
            tile_a[e + 8u] = a0_8;
            tile_a[e + 9u] = a0_9;
            tile_a[e + 10u] = a0_10;
            tile_a[e + 11u] = a0_11;
            tile_a[e + 12u] = a0_12;
            tile_a[e + 13u] = a0_13;
            tile_a[e + 14u] = a0_14;
            tile_a[e + 15u] = a0_15;
        } else {
            tile_b[e + 0u] = a0_0;
            tile_b[e + 1u] = a0_1;
            tile_b[e + 2u] = a0_2;
            tile_b[e + 3u] = a0_3;
            tile_b[e + 4u] = a0_4;
            tile_b[e + 5u] = a0_5;
            tile_b[e + 6u] = a0_6;
            tile_b[e + 7u] = a0_7;
            tile_b[e + 8u] = a0_8;
            tile_b[e + 9u] = a0_9;
            tile_b[e + 10u] = a0_10;
            tile_b[e + 11u] = a0_11;
            tile_b[e + 12u] = a0_12;
            tile_b[e + 13u] = a0_13;
            tile_b[e + 14u] = a0_14;
            tile_b[e + 15u] = a0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a1_0;
            tile_a[e + 1u] = a1_1;
            tile_a[e + 2u] = a1_2;
            tile_a[e + 3u] = a1_3;
            tile_a[e + 4u] = a1_4;
            tile_a[e + 5u] = a1_5;
            tile_a[e + 6u] = a1_6;
            tile_a[e + 7u] = a1_7;
            tile_a[e + 8u] = a1_8;
            tile_a[e + 9u] = a1_9;
            tile_a[e + 10u] = a1_10;
            tile_a[e + 11u] = a1_11;
            tile_a[e + 12u] = a1_12;
            tile_a[e + 13u] = a1_13;
            tile_a[e + 14u] = a1_14;
            tile_a[e + 15u] = a1_15;
        } else {
            tile_b[e + 0u] = a1_0;
            tile_b[e + 1u] = a1_1;
            tile_b[e + 2u] = a1_2;
            tile_b[e + 3u] = a1_3;
            tile_b[e + 4u] = a1_4;
            tile_b[e + 5u] = a1_5;
            tile_b[e + 6u] = a1_6;
            tile_b[e + 7u] = a1_7;
            tile_b[e + 8u] = a1_8;
            tile_b[e + 9u] = a1_9;
            tile_b[e + 10u] = a1_10;
            tile_b[e + 11u] = a1_11;
            tile_b[e + 12u] = a1_12;
            tile_b[e + 13u] = a1_13;
            tile_b[e + 14u] = a1_14;
            tile_b[e + 15u] = a1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        a1_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        a1_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        a1_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        a1_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        a1_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        a1_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        a1_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        a1_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        a1_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        a1_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        a1_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        a1_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        a1_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        a1_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        a1_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        a1_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a1_0;
            tile_a[e + 1u] = a1_1;
            tile_a[e + 2u] = a1_2;
            tile_a[e + 3u] = a1_3;
            tile_a[e + 4u] = a1_4;
            tile_a[e + 5u] = a1_5;
            tile_a[e + 6u] = a1_6;
            tile_a[e + 7u] = a1_7;
            tile_a[e + 8u] = a1_8;
            tile_a[e + 9u] = a1_9;
            tile_a[e + 10u] = a1_10;
            tile_a[e + 11u] = a1_11;
            tile_a[e + 12u] = a1_12;
            tile_a[e + 13u] = a1_13;
            tile_a[e + 14u] = a1_14;
            tile_a[e + 15u] = a1_15;
        } else {
            tile_b[e + 0u] = a1_0;
            tile_b[e + 1u] = a1_1;
            tile_b[e + 2u] = a1_2;
            tile_b[e + 3u] = a1_3;
            tile_b[e + 4u] = a1_4;
            tile_b[e + 5u] = a1_5;
            tile_b[e + 6u] = a1_6;
            tile_b[e + 7u] = a1_7;
            tile_b[e + 8u] = a1_8;
            tile_b[e + 9u] = a1_9;
            tile_b[e + 10u] = a1_10;
            tile_b[e + 11u] = a1_11;
            tile_b[e + 12u] = a1_12;
            tile_b[e + 13u] = a1_13;
            tile_b[e + 14u] = a1_14;
            tile_b[e + 15u] = a1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a2_0;
            tile_a[e + 1u] = a2_1;
            tile_a[e + 2u] = a2_2;
            tile_a[e + 3u] = a2_3;
            tile_a[e + 4u] = a2_4;
            tile_a[e + 5u] = a2_5;
            tile_a[e + 6u] = a2_6;
            tile_a[e + 7u] = a2_7;
            tile_a[e + 8u] = a2_8;
            tile_a[e + 9u] = a2_9;
            tile_a[e + 10u] = a2_10;
            tile_a[e + 11u] = a2_11;
            tile_a[e + 12u] = a2_12;
            tile_a[e + 13u] = a2_13;
            tile_a[e + 14u] = a2_14;
            tile_a[e + 15u] = a2_15;
        } else {
            tile_b[e + 0u] = a2_0;
            tile_b[e + 1u] = a2_1;
            tile_b[e + 2u] = a2_2;
            tile_b[e + 3u] = a2_3;
            tile_b[e + 4u] = a2_4;
            tile_b[e + 5u] = a2_5;
            tile_b[e + 6u] = a2_6;
            tile_b[e + 7u] = a2_7;
            tile_b[e + 8u] = a2_8;
            tile_b[e + 9u] = a2_9;
            tile_b[e + 10u] = a2_10;
            tile_b[e + 11u] = a2_11;
            tile_b[e + 12u] = a2_12;
            tile_b[e + 13u] = a2_13;
            tile_b[e + 14u] = a2_14;
            tile_b[e + 15u] = a2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        a2_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        a2_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        a2_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        a2_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        a2_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        a2_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        a2_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        a2_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        a2_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        a2_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        a2_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        a2_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        a2_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        a2_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        a2_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        a2_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a2_0;
            tile_a[e + 1u] = a2_1;
            tile_a[e + 2u] = a2_2;
            tile_a[e + 3u] = a2_3;
            tile_a[e + 4u] = a2_4;
            tile_a[e + 5u] = a2_5;
            tile_a[e + 6u] = a2_6;
            tile_a[e + 7u] = a2_7;
            tile_a[e + 8u] = a2_8;
            tile_a[e + 9u] = a2_9;
            tile_a[e + 10u] = a2_10;
            tile_a[e + 11u] = a2_11;
            tile_a[e + 12u] = a2_12;
            tile_a[e + 13u] = a2_13;
            tile_a[e + 14u] = a2_14;
            tile_a[e + 15u] = a2_15;
        } else {
            tile_b[e + 0u] = a2_0;
            tile_b[e + 1u] = a2_1;
            tile_b[e + 2u] = a2_2;
            tile_b[e + 3u] = a2_3;
            tile_b[e + 4u] = a2_4;
            tile_b[e + 5u] = a2_5;
            tile_b[e + 6u] = a2_6;
            tile_b[e + 7u] = a2_7;
            tile_b[e + 8u] = a2_8;
            tile_b[e + 9u] = a2_9;
            tile_b[e + 10u] = a2_10;
            tile_b[e + 11u] = a2_11;
            tile_b[e + 12u] = a2_12;
            tile_b[e + 13u] = a2_13;
            tile_b[e + 14u] = a2_14;
            tile_b[e + 15u] = a2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a3_0;
            tile_a[e + 1u] = a3_1;
            tile_a[e + 2u] = a3_2;
            tile_a[e + 3u] = a3_3;
            tile_a[e + 4u] = a3_4;
            tile_a[e + 5u] = a3_5;
            tile_a[e + 6u] = a3_6;
            tile_a[e + 7u] = a3_7;
            tile_a[e + 8u] = a3_8;
            tile_a[e + 9u] = a3_9;
            tile_a[e + 10u] = a3_10;
            tile_a[e + 11u] = a3_11;
            tile_a[e + 12u] = a3_12;
            tile_a[e + 13u] = a3_13;
            tile_a[e + 14u] = a3_14;
            tile_a[e + 15u] = a3_15;
        } else {
            tile_b[e + 0u] = a3_0;
            tile_b[e + 1u] = a3_1;
            tile_b[e + 2u] = a3_2;
            tile_b[e + 3u] = a3_3;
            tile_b[e + 4u] = a3_4;
            tile_b[e + 5u] = a3_5;
            tile_b[e + 6u] = a3_6;
            tile_b[e + 7u] = a3_7;
            tile_b[e + 8u] = a3_8;
            tile_b[e + 9u] = a3_9;
            tile_b[e + 10u] = a3_10;
            tile_b[e + 11u] = a3_11;
            tile_b[e + 12u] = a3_12;
            tile_b[e + 13u] = a3_13;
            tile_b[e + 14u] = a3_14;
            tile_b[e + 15u] = a3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        a3_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        a3_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        a3_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        a3_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        a3_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        a3_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        a3_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        a3_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        a3_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        a3_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        a3_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        a3_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        a3_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        a3_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        a3_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        a3_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = a3_0;
            tile_a[e + 1u] = a3_1;
            tile_a[e + 2u] = a3_2;
            tile_a[e + 3u] = a3_3;
            tile_a[e + 4u] = a3_4;
            tile_a[e + 5u] = a3_5;
            tile_a[e + 6u] = a3_6;
            tile_a[e + 7u] = a3_7;
            tile_a[e + 8u] = a3_8;
            tile_a[e + 9u] = a3_9;
            tile_a[e + 10u] = a3_10;
            tile_a[e + 11u] = a3_11;
            tile_a[e + 12u] = a3_12;
            tile_a[e + 13u] = a3_13;
            tile_a[e + 14u] = a3_14;
            tile_a[e + 15u] = a3_15;
        } else {
            tile_b[e + 0u] = a3_0;
            tile_b[e + 1u] = a3_1;
            tile_b[e + 2u] = a3_2;
            tile_b[e + 3u] = a3_3;
            tile_b[e + 4u] = a3_4;
            tile_b[e + 5u] = a3_5;
            tile_b[e + 6u] = a3_6;
            tile_b[e + 7u] = a3_7;
            tile_b[e + 8u] = a3_8;
            tile_b[e + 9u] = a3_9;
            tile_b[e + 10u] = a3_10;
            tile_b[e + 11u] = a3_11;
            tile_b[e + 12u] = a3_12;
            tile_b[e + 13u] = a3_13;
            tile_b[e + 14u] = a3_14;
            tile_b[e + 15u] = a3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        a3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        a3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        a3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        a3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        a3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        a3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        a3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        a3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        a3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        a3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        a3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        a3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        a3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        a3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        a3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        a3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    if (split == 0u && live0) {
        dq[rb0 + 0u] = a0_0 * p.scale;
        dq[rb0 + 1u] = a0_1 * p.scale;
        dq[rb0 + 2u] = a0_2 * p.scale;
        dq[rb0 + 3u] = a0_3 * p.scale;
        dq[rb0 + 4u] = a0_4 * p.scale;
        dq[rb0 + 5u] = a0_5 * p.scale;
        dq[rb0 + 6u] = a0_6 * p.scale;
        dq[rb0 + 7u] = a0_7 * p.scale;
        dq[rb0 + 8u] = a0_8 * p.scale;
        dq[rb0 + 9u] = a0_9 * p.scale;
        dq[rb0 + 10u] = a0_10 * p.scale;
        dq[rb0 + 11u] = a0_11 * p.scale;
        dq[rb0 + 12u] = a0_12 * p.scale;
        dq[rb0 + 13u] = a0_13 * p.scale;
        dq[rb0 + 14u] = a0_14 * p.scale;
        dq[rb0 + 15u] = a0_15 * p.scale;
    }
    if (split == 0u && live1) {
        dq[rb1 + 0u] = a1_0 * p.scale;
        dq[rb1 + 1u] = a1_1 * p.scale;
        dq[rb1 + 2u] = a1_2 * p.scale;
        dq[rb1 + 3u] = a1_3 * p.scale;
        dq[rb1 + 4u] = a1_4 * p.scale;
        dq[rb1 + 5u] = a1_5 * p.scale;
        dq[rb1 + 6u] = a1_6 * p.scale;
        dq[rb1 + 7u] = a1_7 * p.scale;
        dq[rb1 + 8u] = a1_8 * p.scale;
        dq[rb1 + 9u] = a1_9 * p.scale;
        dq[rb1 + 10u] = a1_10 * p.scale;
        dq[rb1 + 11u] = a1_11 * p.scale;
        dq[rb1 + 12u] = a1_12 * p.scale;
        dq[rb1 + 13u] = a1_13 * p.scale;
        dq[rb1 + 14u] = a1_14 * p.scale;
        dq[rb1 + 15u] = a1_15 * p.scale;
    }
    if (split == 0u && live2) {
        dq[rb2 + 0u] = a2_0 * p.scale;
        dq[rb2 + 1u] = a2_1 * p.scale;
        dq[rb2 + 2u] = a2_2 * p.scale;
        dq[rb2 + 3u] = a2_3 * p.scale;
        dq[rb2 + 4u] = a2_4 * p.scale;
        dq[rb2 + 5u] = a2_5 * p.scale;
        dq[rb2 + 6u] = a2_6 * p.scale;
        dq[rb2 + 7u] = a2_7 * p.scale;
        dq[rb2 + 8u] = a2_8 * p.scale;
        dq[rb2 + 9u] = a2_9 * p.scale;
        dq[rb2 + 10u] = a2_10 * p.scale;
        dq[rb2 + 11u] = a2_11 * p.scale;
        dq[rb2 + 12u] = a2_12 * p.scale;
        dq[rb2 + 13u] = a2_13 * p.scale;
        dq[rb2 + 14u] = a2_14 * p.scale;
        dq[rb2 + 15u] = a2_15 * p.scale;
    }
    if (split == 0u && live3) {
        dq[rb3 + 0u] = a3_0 * p.scale;
        dq[rb3 + 1u] = a3_1 * p.scale;
        dq[rb3 + 2u] = a3_2 * p.scale;
        dq[rb3 + 3u] = a3_3 * p.scale;
        dq[rb3 + 4u] = a3_4 * p.scale;
        dq[rb3 + 5u] = a3_5 * p.scale;
        dq[rb3 + 6u] = a3_6 * p.scale;
        dq[rb3 + 7u] = a3_7 * p.scale;
        dq[rb3 + 8u] = a3_8 * p.scale;
        dq[rb3 + 9u] = a3_9 * p.scale;
        dq[rb3 + 10u] = a3_10 * p.scale;
        dq[rb3 + 11u] = a3_11 * p.scale;
        dq[rb3 + 12u] = a3_12 * p.scale;
        dq[rb3 + 13u] = a3_13 * p.scale;
        dq[rb3 + 14u] = a3_14 * p.scale;
        dq[rb3 + 15u] = a3_15 * p.scale;
    }
}

fn attention_backward_kv_hd64(d: Dims, lid: u32, b: u32) {
    let blocks = (d.t + 63u) / 64u;
    let kvh = b / blocks;
    let jb = (b % blocks) * 64u;
    let slot = lid % 16u;
    let split = lid / 16u;
    let group = d.heads / d.kv_heads;
    let live0 = jb + slot + 0u < d.t;
    let j0 = min(jb + slot + 0u, d.t - 1u);
    let kb0 = (j0 * d.kv_heads + kvh) * 16u;
    var end0 = d.t;
    var kpos0 = j0;
    if (d.packed != 0u) {
        end0 = spans[2u * j0 + 1u];
        if (j0 >= d.prefix) {
            kpos0 = d.prefix + j0 - spans[2u * j0];
        }
    }
    var first_end0 = end0;
    var reach0 = 0u;
    if (d.window != 0u) {
        first_end0 = min(end0, j0 + d.window);
        if (d.packed != 0u && j0 < d.prefix) {
            first_end0 = min(first_end0, d.prefix);
            if (j0 + d.window > d.prefix) {
                reach0 = j0 + d.window - d.prefix;
            }
        }
    }
    let live1 = jb + slot + 16u < d.t;
    let j1 = min(jb + slot + 16u, d.t - 1u);
    let kb1 = (j1 * d.kv_heads + kvh) * 16u;
    var end1 = d.t;
    var kpos1 = j1;
    if (d.packed != 0u) {
        end1 = spans[2u * j1 + 1u];
        if (j1 >= d.prefix) {
            kpos1 = d.prefix + j1 - spans[2u * j1];
        }
    }
    var first_end1 = end1;
    var reach1 = 0u;
    if (d.window != 0u) {
        first_end1 = min(end1, j1 + d.window);
        if (d.packed != 0u && j1 < d.prefix) {
            first_end1 = min(first_end1, d.prefix);
            if (j1 + d.window > d.prefix) {
                reach1 = j1 + d.window - d.prefix;
            }
        }
    }
    let live2 = jb + slot + 32u < d.t;
    let j2 = min(jb + slot + 32u, d.t - 1u);
    let kb2 = (j2 * d.kv_heads + kvh) * 16u;
    var end2 = d.t;
    var kpos2 = j2;
    if (d.packed != 0u) {
        end2 = spans[2u * j2 + 1u];
        if (j2 >= d.prefix) {
            kpos2 = d.prefix + j2 - spans[2u * j2];
        }
    }
    var first_end2 = end2;
    var reach2 = 0u;
    if (d.window != 0u) {
        first_end2 = min(end2, j2 + d.window);
        if (d.packed != 0u && j2 < d.prefix) {
            first_end2 = min(first_end2, d.prefix);
            if (j2 + d.window > d.prefix) {
                reach2 = j2 + d.window - d.prefix;
            }
        }
    }
    let live3 = jb + slot + 48u < d.t;
    let j3 = min(jb + slot + 48u, d.t - 1u);
    let kb3 = (j3 * d.kv_heads + kvh) * 16u;
    var end3 = d.t;
    var kpos3 = j3;
    if (d.packed != 0u) {
        end3 = spans[2u * j3 + 1u];
        if (j3 >= d.prefix) {
            kpos3 = d.prefix + j3 - spans[2u * j3];
        }
    }
    var first_end3 = end3;
    var reach3 = 0u;
    if (d.window != 0u) {
        first_end3 = min(end3, j3 + d.window);
        if (d.packed != 0u && j3 < d.prefix) {
            first_end3 = min(first_end3, d.prefix);
            if (j3 + d.window > d.prefix) {
                reach3 = j3 + d.window - d.prefix;
            }
        }
    }
    let qmax = workgroup_max(lid, max(max(max(max(0u, select(0u, first_end0, live0)), select(0u, first_end1, live1)), select(0u, first_end2, live2)), select(0u, first_end3, live3)));
    var reach_all = 0u;
    if (d.window != 0u) {
        reach_all = workgroup_max(lid, max(max(max(max(0u, select(0u, reach0, live0)), select(0u, reach1, live1)), select(0u, reach2, live2)), select(0u, reach3, live3)));
    }
    var seg = d.t;
    if (reach_all != 0u) {
        seg = d.prefix;
    }
    var qa = jb;
    var qe = qmax;
    let k0_0 = kc[kb0 + 0u] * p.scale;
    let k0_1 = kc[kb0 + 1u] * p.scale;
    let k0_2 = kc[kb0 + 2u] * p.scale;
    let k0_3 = kc[kb0 + 3u] * p.scale;
    let k0_4 = kc[kb0 + 4u] * p.scale;
    let k0_5 = kc[kb0 + 5u] * p.scale;
    let k0_6 = kc[kb0 + 6u] * p.scale;
    let k0_7 = kc[kb0 + 7u] * p.scale;
    let k0_8 = kc[kb0 + 8u] * p.scale;
    let k0_9 = kc[kb0 + 9u] * p.scale;
    let k0_10 = kc[kb0 + 10u] * p.scale;
    let k0_11 = kc[kb0 + 11u] * p.scale;
    let k0_12 = kc[kb0 + 12u] * p.scale;
    let k0_13 = kc[kb0 + 13u] * p.scale;
    let k0_14 = kc[kb0 + 14u] * p.scale;
    let k0_15 = kc[kb0 + 15u] * p.scale;
    let v0_0 = vc[kb0 + 0u];
    let v0_1 = vc[kb0 + 1u];
    let v0_2 = vc[kb0 + 2u];
    let v0_3 = vc[kb0 + 3u];
    let v0_4 = vc[kb0 + 4u];
    let v0_5 = vc[kb0 + 5u];
    let v0_6 = vc[kb0 + 6u];
    let v0_7 = vc[kb0 + 7u];
    let v0_8 = vc[kb0 + 8u];
    let v0_9 = vc[kb0 + 9u];
    let v0_10 = vc[kb0 + 10u];
    let v0_11 = vc[kb0 + 11u];
    let v0_12 = vc[kb0 + 12u];
    let v0_13 = vc[kb0 + 13u];
    let v0_14 = vc[kb0 + 14u];
    let v0_15 = vc[kb0 + 15u];
    var gk0_0 = vec4<f32>(0.0);
    var gv0_0 = vec4<f32>(0.0);
    var gk0_1 = vec4<f32>(0.0);
    var gv0_1 = vec4<f32>(0.0);
    var gk0_2 = vec4<f32>(0.0);
    var gv0_2 = vec4<f32>(0.0);
    var gk0_3 = vec4<f32>(0.0);
    var gv0_3 = vec4<f32>(0.0);
    var gk0_4 = vec4<f32>(0.0);
    var gv0_4 = vec4<f32>(0.0);
    var gk0_5 = vec4<f32>(0.0);
    var gv0_5 = vec4<f32>(0.0);
    var gk0_6 = vec4<f32>(0.0);
    var gv0_6 = vec4<f32>(0.0);
    var gk0_7 = vec4<f32>(0.0);
    var gv0_7 = vec4<f32>(0.0);
    var gk0_8 = vec4<f32>(0.0);
    var gv0_8 = vec4<f32>(0.0);
    var gk0_9 = vec4<f32>(0.0);
    var gv0_9 = vec4<f32>(0.0);
    var gk0_10 = vec4<f32>(0.0);
    var gv0_10 = vec4<f32>(0.0);
    var gk0_11 = vec4<f32>(0.0);
    var gv0_11 = vec4<f32>(0.0);
    var gk0_12 = vec4<f32>(0.0);
    var gv0_12 = vec4<f32>(0.0);
    var gk0_13 = vec4<f32>(0.0);
    var gv0_13 = vec4<f32>(0.0);
    var gk0_14 = vec4<f32>(0.0);
    var gv0_14 = vec4<f32>(0.0);
    var gk0_15 = vec4<f32>(0.0);
    var gv0_15 = vec4<f32>(0.0);
    let k1_0 = kc[kb1 + 0u] * p.scale;
    let k1_1 = kc[kb1 + 1u] * p.scale;
    let k1_2 = kc[kb1 + 2u] * p.scale;
    let k1_3 = kc[kb1 + 3u] * p.scale;
    let k1_4 = kc[kb1 + 4u] * p.scale;
    let k1_5 = kc[kb1 + 5u] * p.scale;
    let k1_6 = kc[kb1 + 6u] * p.scale;
    let k1_7 = kc[kb1 + 7u] * p.scale;
    let k1_8 = kc[kb1 + 8u] * p.scale;
    let k1_9 = kc[kb1 + 9u] * p.scale;
    let k1_10 = kc[kb1 + 10u] * p.scale;
    let k1_11 = kc[kb1 + 11u] * p.scale;
    let k1_12 = kc[kb1 + 12u] * p.scale;
    let k1_13 = kc[kb1 + 13u] * p.scale;
    let k1_14 = kc[kb1 + 14u] * p.scale;
    let k1_15 = kc[kb1 + 15u] * p.scale;
    let v1_0 = vc[kb1 + 0u];
    let v1_1 = vc[kb1 + 1u];
    let v1_2 = vc[kb1 + 2u];
    let v1_3 = vc[kb1 + 3u];
    let v1_4 = vc[kb1 + 4u];
    let v1_5 = vc[kb1 + 5u];
    let v1_6 = vc[kb1 + 6u];
    let v1_7 = vc[kb1 + 7u];
    let v1_8 = vc[kb1 + 8u];
    let v1_9 = vc[kb1 + 9u];
    let v1_10 = vc[kb1 + 10u];
    let v1_11 = vc[kb1 + 11u];
    let v1_12 = vc[kb1 + 12u];
    let v1_13 = vc[kb1 + 13u];
    let v1_14 = vc[kb1 + 14u];
    let v1_15 = vc[kb1 + 15u];
    var gk1_0 = vec4<f32>(0.0);
    var gv1_0 = vec4<f32>(0.0);
    var gk1_1 = vec4<f32>(0.0);
    var gv1_1 = vec4<f32>(0.0);
    var gk1_2 = vec4<f32>(0.0);
    var gv1_2 = vec4<f32>(0.0);
    var gk1_3 = vec4<f32>(0.0);
    var gv1_3 = vec4<f32>(0.0);
    var gk1_4 = vec4<f32>(0.0);
    var gv1_4 = vec4<f32>(0.0);
    var gk1_5 = vec4<f32>(0.0);
    var gv1_5 = vec4<f32>(0.0);
    var gk1_6 = vec4<f32>(0.0);
    var gv1_6 = vec4<f32>(0.0);
    var gk1_7 = vec4<f32>(0.0);
    var gv1_7 = vec4<f32>(0.0);
    var gk1_8 = vec4<f32>(0.0);
    var gv1_8 = vec4<f32>(0.0);
    var gk1_9 = vec4<f32>(0.0);
    var gv1_9 = vec4<f32>(0.0);
    var gk1_10 = vec4<f32>(0.0);
    var gv1_10 = vec4<f32>(0.0);
    var gk1_11 = vec4<f32>(0.0);
    var gv1_11 = vec4<f32>(0.0);
    var gk1_12 = vec4<f32>(0.0);
    var gv1_12 = vec4<f32>(0.0);
    var gk1_13 = vec4<f32>(0.0);
    var gv1_13 = vec4<f32>(0.0);
    var gk1_14 = vec4<f32>(0.0);
    var gv1_14 = vec4<f32>(0.0);
    var gk1_15 = vec4<f32>(0.0);
    var gv1_15 = vec4<f32>(0.0);
    let k2_0 = kc[kb2 + 0u] * p.scale;
    let k2_1 = kc[kb2 + 1u] * p.scale;
    let k2_2 = kc[kb2 + 2u] * p.scale;
    let k2_3 = kc[kb2 + 3u] * p.scale;
    let k2_4 = kc[kb2 + 4u] * p.scale;
    let k2_5 = kc[kb2 + 5u] * p.scale;
    let k2_6 = kc[kb2 + 6u] * p.scale;
    let k2_7 = kc[kb2 + 7u] * p.scale;
    let k2_8 = kc[kb2 + 8u] * p.scale;
    let k2_9 = kc[kb2 + 9u] * p.scale;
    let k2_10 = kc[kb2 + 10u] * p.scale;
    let k2_11 = kc[kb2 + 11u] * p.scale;
    let k2_12 = kc[kb2 + 12u] * p.scale;
    let k2_13 = kc[kb2 + 13u] * p.scale;
    let k2_14 = kc[kb2 + 14u] * p.scale;
    let k2_15 = kc[kb2 + 15u] * p.scale;
    let v2_0 = vc[kb2 + 0u];
    let v2_1 = vc[kb2 + 1u];
    let v2_2 = vc[kb2 + 2u];
    let v2_3 = vc[kb2 + 3u];
    let v2_4 = vc[kb2 + 4u];
    let v2_5 = vc[kb2 + 5u];
    let v2_6 = vc[kb2 + 6u];
    let v2_7 = vc[kb2 + 7u];
    let v2_8 = vc[kb2 + 8u];
    let v2_9 = vc[kb2 + 9u];
    let v2_10 = vc[kb2 + 10u];
    let v2_11 = vc[kb2 + 11u];
    let v2_12 = vc[kb2 + 12u];
    let v2_13 = vc[kb2 + 13u];
    let v2_14 = vc[kb2 + 14u];
    let v2_15 = vc[kb2 + 15u];
    var gk2_0 = vec4<f32>(0.0);
    var gv2_0 = vec4<f32>(0.0);
    var gk2_1 = vec4<f32>(0.0);
    var gv2_1 = vec4<f32>(0.0);
    var gk2_2 = vec4<f32>(0.0);
    var gv2_2 = vec4<f32>(0.0);
    var gk2_3 = vec4<f32>(0.0);
    var gv2_3 = vec4<f32>(0.0);
    var gk2_4 = vec4<f32>(0.0);
    var gv2_4 = vec4<f32>(0.0);
    var gk2_5 = vec4<f32>(0.0);
    var gv2_5 = vec4<f32>(0.0);
    var gk2_6 = vec4<f32>(0.0);
    var gv2_6 = vec4<f32>(0.0);
    var gk2_7 = vec4<f32>(0.0);
    var gv2_7 = vec4<f32>(0.0);
    var gk2_8 = vec4<f32>(0.0);
    var gv2_8 = vec4<f32>(0.0);
    var gk2_9 = vec4<f32>(0.0);
    var gv2_9 = vec4<f32>(0.0);
    var gk2_10 = vec4<f32>(0.0);
    var gv2_10 = vec4<f32>(0.0);
    var gk2_11 = vec4<f32>(0.0);
    var gv2_11 = vec4<f32>(0.0);
    var gk2_12 = vec4<f32>(0.0);
    var gv2_12 = vec4<f32>(0.0);
    var gk2_13 = vec4<f32>(0.0);
    var gv2_13 = vec4<f32>(0.0);
    var gk2_14 = vec4<f32>(0.0);
    var gv2_14 = vec4<f32>(0.0);
    var gk2_15 = vec4<f32>(0.0);
    var gv2_15 = vec4<f32>(0.0);
    let k3_0 = kc[kb3 + 0u] * p.scale;
    let k3_1 = kc[kb3 + 1u] * p.scale;
    let k3_2 = kc[kb3 + 2u] * p.scale;
    let k3_3 = kc[kb3 + 3u] * p.scale;
    let k3_4 = kc[kb3 + 4u] * p.scale;
    let k3_5 = kc[kb3 + 5u] * p.scale;
    let k3_6 = kc[kb3 + 6u] * p.scale;
    let k3_7 = kc[kb3 + 7u] * p.scale;
    let k3_8 = kc[kb3 + 8u] * p.scale;
    let k3_9 = kc[kb3 + 9u] * p.scale;
    let k3_10 = kc[kb3 + 10u] * p.scale;
    let k3_11 = kc[kb3 + 11u] * p.scale;
    let k3_12 = kc[kb3 + 12u] * p.scale;
    let k3_13 = kc[kb3 + 13u] * p.scale;
    let k3_14 = kc[kb3 + 14u] * p.scale;
    let k3_15 = kc[kb3 + 15u] * p.scale;
    let v3_0 = vc[kb3 + 0u];
    let v3_1 = vc[kb3 + 1u];
    let v3_2 = vc[kb3 + 2u];
    let v3_3 = vc[kb3 + 3u];
    let v3_4 = vc[kb3 + 4u];
    let v3_5 = vc[kb3 + 5u];
    let v3_6 = vc[kb3 + 6u];
    let v3_7 = vc[kb3 + 7u];
    let v3_8 = vc[kb3 + 8u];
    let v3_9 = vc[kb3 + 9u];
    let v3_10 = vc[kb3 + 10u];
    let v3_11 = vc[kb3 + 11u];
    let v3_12 = vc[kb3 + 12u];
    let v3_13 = vc[kb3 + 13u];
    let v3_14 = vc[kb3 + 14u];
    let v3_15 = vc[kb3 + 15u];
    var gk3_0 = vec4<f32>(0.0);
    var gv3_0 = vec4<f32>(0.0);
    var gk3_1 = vec4<f32>(0.0);
    var gv3_1 = vec4<f32>(0.0);
    var gk3_2 = vec4<f32>(0.0);
    var gv3_2 = vec4<f32>(0.0);
    var gk3_3 = vec4<f32>(0.0);
    var gv3_3 = vec4<f32>(0.0);
    var gk3_4 = vec4<f32>(0.0);
    var gv3_4 = vec4<f32>(0.0);
    var gk3_5 = vec4<f32>(0.0);
    var gv3_5 = vec4<f32>(0.0);
    var gk3_6 = vec4<f32>(0.0);
    var gv3_6 = vec4<f32>(0.0);
    var gk3_7 = vec4<f32>(0.0);
    var gv3_7 = vec4<f32>(0.0);
    var gk3_8 = vec4<f32>(0.0);
    var gv3_8 = vec4<f32>(0.0);
    var gk3_9 = vec4<f32>(0.0);
    var gv3_9 = vec4<f32>(0.0);
    var gk3_10 = vec4<f32>(0.0);
    var gv3_10 = vec4<f32>(0.0);
    var gk3_11 = vec4<f32>(0.0);
    var gv3_11 = vec4<f32>(0.0);
    var gk3_12 = vec4<f32>(0.0);
    var gv3_12 = vec4<f32>(0.0);
    var gk3_13 = vec4<f32>(0.0);
    var gv3_13 = vec4<f32>(0.0);
    var gk3_14 = vec4<f32>(0.0);
    var gv3_14 = vec4<f32>(0.0);
    var gk3_15 = vec4<f32>(0.0);
    var gv3_15 = vec4<f32>(0.0);
    loop {
        // Pairs (query i >= qa, head g of the group), numbered (i - qa) * group + g.
        let pairs = select(0u, (qe - qa) * group, qe > qa);
        for (var e = 4u * split; e < pairs; e += 16u) {
            let pe0 = min(e + 0u, pairs - 1u);
            let qi0 = qa + pe0 / group;
            let row0 = qi0 * d.heads + kvh * group + pe0 % group;
            let rb0 = row0 * 16u;
            let st0 = vec2<f32>(stats[2u * row0], stats[2u * row0 + 1u]);
            var qpos0 = qi0;
            if (d.packed != 0u && qi0 >= d.prefix) {
                qpos0 = d.prefix + qi0 - spans[2u * qi0];
            }
            let pe1 = min(e + 1u, pairs - 1u);
            let qi1 = qa + pe1 / group;
            let row1 = qi1 * d.heads + kvh * group + pe1 % group;
            let rb1 = row1 * 16u;
            let st1 = vec2<f32>(stats[2u * row1], stats[2u * row1 + 1u]);
            var qpos1 = qi1;
            if (d.packed != 0u && qi1 >= d.prefix) {
                qpos1 = d.prefix + qi1 - spans[2u * qi1];
            }
            let pe2 = min(e + 2u, pairs - 1u);
            let qi2 = qa + pe2 / group;
            let row2 = qi2 * d.heads + kvh * group + pe2 % group;
            let rb2 = row2 * 16u;
            let st2 = vec2<f32>(stats[2u * row2], stats[2u * row2 + 1u]);
            var qpos2 = qi2;
            if (d.packed != 0u && qi2 >= d.prefix) {
                qpos2 = d.prefix + qi2 - spans[2u * qi2];
            }
            let pe3 = min(e + 3u, pairs - 1u);
            let qi3 = qa + pe3 / group;
            let row3 = qi3 * d.heads + kvh * group + pe3 % group;
            let rb3 = row3 * 16u;
            let st3 = vec2<f32>(stats[2u * row3], stats[2u * row3 + 1u]);
            var qpos3 = qi3;
            if (d.packed != 0u && qi3 >= d.prefix) {
                qpos3 = d.prefix + qi3 - spans[2u * qi3];
            }
            let m00 = live0 && e + 0u < pairs && qi0 >= j0 && qi0 < end0 && (d.window == 0u || qpos0 < kpos0 + d.window);
            let m01 = live0 && e + 1u < pairs && qi1 >= j0 && qi1 < end0 && (d.window == 0u || qpos1 < kpos0 + d.window);
            let m02 = live0 && e + 2u < pairs && qi2 >= j0 && qi2 < end0 && (d.window == 0u || qpos2 < kpos0 + d.window);
            let m03 = live0 && e + 3u < pairs && qi3 >= j0 && qi3 < end0 && (d.window == 0u || qpos3 < kpos0 + d.window);
            let m10 = live1 && e + 0u < pairs && qi0 >= j1 && qi0 < end1 && (d.window == 0u || qpos0 < kpos1 + d.window);
            let m11 = live1 && e + 1u < pairs && qi1 >= j1 && qi1 < end1 && (d.window == 0u || qpos1 < kpos1 + d.window);
            let m12 = live1 && e + 2u < pairs && qi2 >= j1 && qi2 < end1 && (d.window == 0u || qpos2 < kpos1 + d.window);
            let m13 = live1 && e + 3u < pairs && qi3 >= j1 && qi3 < end1 && (d.window == 0u || qpos3 < kpos1 + d.window);
            let m20 = live2 && e + 0u < pairs && qi0 >= j2 && qi0 < end2 && (d.window == 0u || qpos0 < kpos2 + d.window);
            let m21 = live2 && e + 1u < pairs && qi1 >= j2 && qi1 < end2 && (d.window == 0u || qpos1 < kpos2 + d.window);
            let m22 = live2 && e + 2u < pairs && qi2 >= j2 && qi2 < end2 && (d.window == 0u || qpos2 < kpos2 + d.window);
            let m23 = live2 && e + 3u < pairs && qi3 >= j2 && qi3 < end2 && (d.window == 0u || qpos3 < kpos2 + d.window);
            let m30 = live3 && e + 0u < pairs && qi0 >= j3 && qi0 < end3 && (d.window == 0u || qpos0 < kpos3 + d.window);
            let m31 = live3 && e + 1u < pairs && qi1 >= j3 && qi1 < end3 && (d.window == 0u || qpos1 < kpos3 + d.window);
            let m32 = live3 && e + 2u < pairs && qi2 >= j3 && qi2 < end3 && (d.window == 0u || qpos2 < kpos3 + d.window);
            let m33 = live3 && e + 3u < pairs && qi3 >= j3 && qi3 < end3 && (d.window == 0u || qpos3 < kpos3 + d.window);
            var s00a = vec4<f32>(0.0);
            var e00a = vec4<f32>(0.0);
            var s01a = vec4<f32>(0.0);
            var e01a = vec4<f32>(0.0);
            var s02a = vec4<f32>(0.0);
            var e02a = vec4<f32>(0.0);
            var s03a = vec4<f32>(0.0);
            var e03a = vec4<f32>(0.0);
            var s10a = vec4<f32>(0.0);
            var e10a = vec4<f32>(0.0);
            var s11a = vec4<f32>(0.0);
            var e11a = vec4<f32>(0.0);
            var s12a = vec4<f32>(0.0);
            var e12a = vec4<f32>(0.0);
            var s13a = vec4<f32>(0.0);
            var e13a = vec4<f32>(0.0);
            var s20a = vec4<f32>(0.0);
            var e20a = vec4<f32>(0.0);
            var s21a = vec4<f32>(0.0);
            var e21a = vec4<f32>(0.0);
            var s22a = vec4<f32>(0.0);
            var e22a = vec4<f32>(0.0);
            var s23a = vec4<f32>(0.0);
            var e23a = vec4<f32>(0.0);
            var s30a = vec4<f32>(0.0);
            var e30a = vec4<f32>(0.0);
            var s31a = vec4<f32>(0.0);
            var e31a = vec4<f32>(0.0);
            var s32a = vec4<f32>(0.0);
            var e32a = vec4<f32>(0.0);
            var s33a = vec4<f32>(0.0);
            var e33a = vec4<f32>(0.0);
            let qq0_0 = q[rb0 + 0u];
            let gg0_0 = dout[rb0 + 0u];
            let qq1_0 = q[rb1 + 0u];
            let gg1_0 = dout[rb1 + 0u];
            let qq2_0 = q[rb2 + 0u];
            let gg2_0 = dout[rb2 + 0u];
            let qq3_0 = q[rb3 + 0u];
            let gg3_0 = dout[rb3 + 0u];
            s00a += k0_0 * qq0_0;
            e00a += v0_0 * gg0_0;
            s01a += k0_0 * qq1_0;
            e01a += v0_0 * gg1_0;
            s02a += k0_0 * qq2_0;
            e02a += v0_0 * gg2_0;
            s03a += k0_0 * qq3_0;
            e03a += v0_0 * gg3_0;
            s10a += k1_0 * qq0_0;
            e10a += v1_0 * gg0_0;
            s11a += k1_0 * qq1_0;
            e11a += v1_0 * gg1_0;
            s12a += k1_0 * qq2_0;
            e12a += v1_0 * gg2_0;
            s13a += k1_0 * qq3_0;
            e13a += v1_0 * gg3_0;
            s20a += k2_0 * qq0_0;
            e20a += v2_0 * gg0_0;
            s21a += k2_0 * qq1_0;
            e21a += v2_0 * gg1_0;
            s22a += k2_0 * qq2_0;
            e22a += v2_0 * gg2_0;
            s23a += k2_0 * qq3_0;
            e23a += v2_0 * gg3_0;
            s30a += k3_0 * qq0_0;
            e30a += v3_0 * gg0_0;
            s31a += k3_0 * qq1_0;
            e31a += v3_0 * gg1_0;
            s32a += k3_0 * qq2_0;
            e32a += v3_0 * gg2_0;
            s33a += k3_0 * qq3_0;
            e33a += v3_0 * gg3_0;
            let qq0_1 = q[rb0 + 1u];
            let gg0_1 = dout[rb0 + 1u];
            let qq1_1 = q[rb1 + 1u];
            let gg1_1 = dout[rb1 + 1u];
            let qq2_1 = q[rb2 + 1u];
            let gg2_1 = dout[rb2 + 1u];
            let qq3_1 = q[rb3 + 1u];
            let gg3_1 = dout[rb3 + 1u];
            s00a += k0_1 * qq0_1;
            e00a += v0_1 * gg0_1;
            s01a += k0_1 * qq1_1;
            e01a += v0_1 * gg1_1;
            s02a += k0_1 * qq2_1;
            e02a += v0_1 * gg2_1;
            s03a += k0_1 * qq3_1;
            e03a += v0_1 * gg3_1;
            s10a += k1_1 * qq0_1;
            e10a += v1_1 * gg0_1;
            s11a += k1_1 * qq1_1;
            e11a += v1_1 * gg1_1;
            s12a += k1_1 * qq2_1;
            e12a += v1_1 * gg2_1;
            s13a += k1_1 * qq3_1;
            e13a += v1_1 * gg3_1;
            s20a += k2_1 * qq0_1;
            e20a += v2_1 * gg0_1;
            s21a += k2_1 * qq1_1;
            e21a += v2_1 * gg1_1;
            s22a += k2_1 * qq2_1;
            e22a += v2_1 * gg2_1;
            s23a += k2_1 * qq3_1;
            e23a += v2_1 * gg3_1;
            s30a += k3_1 * qq0_1;
            e30a += v3_1 * gg0_1;
            s31a += k3_1 * qq1_1;
            e31a += v3_1 * gg1_1;
            s32a += k3_1 * qq2_1;
            e32a += v3_1 * gg2_1;
            s33a += k3_1 * qq3_1;
            e33a += v3_1 * gg3_1;
            let qq0_2 = q[rb0 + 2u];
            let gg0_2 = dout[rb0 + 2u];
            let qq1_2 = q[rb1 + 2u];
            let gg1_2 = dout[rb1 + 2u];
            let qq2_2 = q[rb2 + 2u];
            let gg2_2 = dout[rb2 + 2u];
            let qq3_2 = q[rb3 + 2u];
            let gg3_2 = dout[rb3 + 2u];
            s00a += k0_2 * qq0_2;
            e00a += v0_2 * gg0_2;
            s01a += k0_2 * qq1_2;
            e01a += v0_2 * gg1_2;
            s02a += k0_2 * qq2_2;
            e02a += v0_2 * gg2_2;
            s03a += k0_2 * qq3_2;
            e03a += v0_2 * gg3_2;
            s10a += k1_2 * qq0_2;
            e10a += v1_2 * gg0_2;
            s11a += k1_2 * qq1_2;
            e11a += v1_2 * gg1_2;
            s12a += k1_2 * qq2_2;
            e12a += v1_2 * gg2_2;
            s13a += k1_2 * qq3_2;
            e13a += v1_2 * gg3_2;
            s20a += k2_2 * qq0_2;
            e20a += v2_2 * gg0_2;
            s21a += k2_2 * qq1_2;
            e21a += v2_2 * gg1_2;
            s22a += k2_2 * qq2_2;
            e22a += v2_2 * gg2_2;
            s23a += k2_2 * qq3_2;
            e23a += v2_2 * gg3_2;
            s30a += k3_2 * qq0_2;
            e30a += v3_2 * gg0_2;
            s31a += k3_2 * qq1_2;
            e31a += v3_2 * gg1_2;
            s32a += k3_2 * qq2_2;
            e32a += v3_2 * gg2_2;
            s33a += k3_2 * qq3_2;
            e33a += v3_2 * gg3_2;
            let qq0_3 = q[rb0 + 3u];
            let gg0_3 = dout[rb0 + 3u];
            let qq1_3 = q[rb1 + 3u];
            let gg1_3 = dout[rb1 + 3u];
            let qq2_3 = q[rb2 + 3u];
            let gg2_3 = dout[rb2 + 3u];
            let qq3_3 = q[rb3 + 3u];
            let gg3_3 = dout[rb3 + 3u];
            s00a += k0_3 * qq0_3;
            e00a += v0_3 * gg0_3;
            s01a += k0_3 * qq1_3;
            e01a += v0_3 * gg1_3;
            s02a += k0_3 * qq2_3;
            e02a += v0_3 * gg2_3;
            s03a += k0_3 * qq3_3;
            e03a += v0_3 * gg3_3;
            s10a += k1_3 * qq0_3;
            e10a += v1_3 * gg0_3;
            s11a += k1_3 * qq1_3;
            e11a += v1_3 * gg1_3;
            s12a += k1_3 * qq2_3;
            e12a += v1_3 * gg2_3;
            s13a += k1_3 * qq3_3;
            e13a += v1_3 * gg3_3;
            s20a += k2_3 * qq0_3;
            e20a += v2_3 * gg0_3;
            s21a += k2_3 * qq1_3;
            e21a += v2_3 * gg1_3;
            s22a += k2_3 * qq2_3;
            e22a += v2_3 * gg2_3;
            s23a += k2_3 * qq3_3;
            e23a += v2_3 * gg3_3;
            s30a += k3_3 * qq0_3;
            e30a += v3_3 * gg0_3;
            s31a += k3_3 * qq1_3;
            e31a += v3_3 * gg1_3;
            s32a += k3_3 * qq2_3;
            e32a += v3_3 * gg2_3;
            s33a += k3_3 * qq3_3;
            e33a += v3_3 * gg3_3;
            let qq0_4 = q[rb0 + 4u];
            let gg0_4 = dout[rb0 + 4u];
            let qq1_4 = q[rb1 + 4u];
            let gg1_4 = dout[rb1 + 4u];
            let qq2_4 = q[rb2 + 4u];
            let gg2_4 = dout[rb2 + 4u];
            let qq3_4 = q[rb3 + 4u];
            let gg3_4 = dout[rb3 + 4u];
            s00a += k0_4 * qq0_4;
            e00a += v0_4 * gg0_4;
            s01a += k0_4 * qq1_4;
            e01a += v0_4 * gg1_4;
            s02a += k0_4 * qq2_4;
            e02a += v0_4 * gg2_4;
            s03a += k0_4 * qq3_4;
            e03a += v0_4 * gg3_4;
            s10a += k1_4 * qq0_4;
            e10a += v1_4 * gg0_4;
            s11a += k1_4 * qq1_4;
            e11a += v1_4 * gg1_4;
            s12a += k1_4 * qq2_4;
            e12a += v1_4 * gg2_4;
            s13a += k1_4 * qq3_4;
            e13a += v1_4 * gg3_4;
            s20a += k2_4 * qq0_4;
            e20a += v2_4 * gg0_4;
            s21a += k2_4 * qq1_4;
            e21a += v2_4 * gg1_4;
            s22a += k2_4 * qq2_4;
            e22a += v2_4 * gg2_4;
            s23a += k2_4 * qq3_4;
            e23a += v2_4 * gg3_4;
            s30a += k3_4 * qq0_4;
            e30a += v3_4 * gg0_4;
            s31a += k3_4 * qq1_4;
            e31a += v3_4 * gg1_4;
            s32a += k3_4 * qq2_4;
            e32a += v3_4 * gg2_4;
            s33a += k3_4 * qq3_4;
            e33a += v3_4 * gg3_4;
            let qq0_5 = q[rb0 + 5u];
            let gg0_5 = dout[rb0 + 5u];
            let qq1_5 = q[rb1 + 5u];
            let gg1_5 = dout[rb1 + 5u];
            let qq2_5 = q[rb2 + 5u];
            let gg2_5 = dout[rb2 + 5u];
            let qq3_5 = q[rb3 + 5u];
            let gg3_5 = dout[rb3 + 5u];
            s00a += k0_5 * qq0_5;
            e00a += v0_5 * gg0_5;
            s01a += k0_5 * qq1_5;
            e01a += v0_5 * gg1_5;
            s02a += k0_5 * qq2_5;
            e02a += v0_5 * gg2_5;
            s03a += k0_5 * qq3_5;
            e03a += v0_5 * gg3_5;
            s10a += k1_5 * qq0_5;
            e10a += v1_5 * gg0_5;
            s11a += k1_5 * qq1_5;
            e11a += v1_5 * gg1_5;
            s12a += k1_5 * qq2_5;
            e12a += v1_5 * gg2_5;
            s13a += k1_5 * qq3_5;
            e13a += v1_5 * gg3_5;
            s20a += k2_5 * qq0_5;
            e20a += v2_5 * gg0_5;
            s21a += k2_5 * qq1_5;
            e21a += v2_5 * gg1_5;
            s22a += k2_5 * qq2_5;
            e22a += v2_5 * gg2_5;
            s23a += k2_5 * qq3_5;
            e23a += v2_5 * gg3_5;
            s30a += k3_5 * qq0_5;
            e30a += v3_5 * gg0_5;
            s31a += k3_5 * qq1_5;
            e31a += v3_5 * gg1_5;
            s32a += k3_5 * qq2_5;
            e32a += v3_5 * gg2_5;
            s33a += k3_5 * qq3_5;
            e33a += v3_5 * gg3_5;
            let qq0_6 = q[rb0 + 6u];
            let gg0_6 = dout[rb0 + 6u];
            let qq1_6 = q[rb1 + 6u];
            let gg1_6 = dout[rb1 + 6u];
            let qq2_6 = q[rb2 + 6u];
            let gg2_6 = dout[rb2 + 6u];
            let qq3_6 = q[rb3 + 6u];
            let gg3_6 = dout[rb3 + 6u];
            s00a += k0_6 * qq0_6;
            e00a += v0_6 * gg0_6;
            s01a += k0_6 * qq1_6;
            e01a += v0_6 * gg1_6;
            s02a += k0_6 * qq2_6;
            e02a += v0_6 * gg2_6;
            s03a += k0_6 * qq3_6;
            e03a += v0_6 * gg3_6;
            s10a += k1_6 * qq0_6;
            e10a += v1_6 * gg0_6;
            s11a += k1_6 * qq1_6;
            e11a += v1_6 * gg1_6;
            s12a += k1_6 * qq2_6;
            e12a += v1_6 * gg2_6;
            s13a += k1_6 * qq3_6;
            e13a += v1_6 * gg3_6;
            s20a += k2_6 * qq0_6;
            e20a += v2_6 * gg0_6;
            s21a += k2_6 * qq1_6;
            e21a += v2_6 * gg1_6;
            s22a += k2_6 * qq2_6;
            e22a += v2_6 * gg2_6;
            s23a += k2_6 * qq3_6;
            e23a += v2_6 * gg3_6;
            s30a += k3_6 * qq0_6;
            e30a += v3_6 * gg0_6;
            s31a += k3_6 * qq1_6;
            e31a += v3_6 * gg1_6;
            s32a += k3_6 * qq2_6;
            e32a += v3_6 * gg2_6;
            s33a += k3_6 * qq3_6;
            e33a += v3_6 * gg3_6;
            let qq0_7 = q[rb0 + 7u];
            let gg0_7 = dout[rb0 + 7u];
            let qq1_7 = q[rb1 + 7u];
            let gg1_7 = dout[rb1 + 7u];
            let qq2_7 = q[rb2 + 7u];
            let gg2_7 = dout[rb2 + 7u];
            let qq3_7 = q[rb3 + 7u];
            let gg3_7 = dout[rb3 + 7u];
            s00a += k0_7 * qq0_7;
            e00a += v0_7 * gg0_7;
            s01a += k0_7 * qq1_7;
            e01a += v0_7 * gg1_7;
            s02a += k0_7 * qq2_7;
            e02a += v0_7 * gg2_7;
            s03a += k0_7 * qq3_7;
            e03a += v0_7 * gg3_7;
            s10a += k1_7 * qq0_7;
            e10a += v1_7 * gg0_7;
            s11a += k1_7 * qq1_7;
            e11a += v1_7 * gg1_7;
            s12a += k1_7 * qq2_7;
            e12a += v1_7 * gg2_7;
            s13a += k1_7 * qq3_7;
            e13a += v1_7 * gg3_7;
            s20a += k2_7 * qq0_7;
            e20a += v2_7 * gg0_7;
            s21a += k2_7 * qq1_7;
            e21a += v2_7 * gg1_7;
            s22a += k2_7 * qq2_7;
            e22a += v2_7 * gg2_7;
            s23a += k2_7 * qq3_7;
            e23a += v2_7 * gg3_7;
            s30a += k3_7 * qq0_7;
            e30a += v3_7 * gg0_7;
            s31a += k3_7 * qq1_7;
            e31a += v3_7 * gg1_7;
            s32a += k3_7 * qq2_7;
            e32a += v3_7 * gg2_7;
            s33a += k3_7 * qq3_7;
            e33a += v3_7 * gg3_7;
            let qq0_8 = q[rb0 + 8u];
            let gg0_8 = dout[rb0 + 8u];
            let qq1_8 = q[rb1 + 8u];
            let gg1_8 = dout[rb1 + 8u];
            let qq2_8 = q[rb2 + 8u];
            let gg2_8 = dout[rb2 + 8u];
            let qq3_8 = q[rb3 + 8u];
            let gg3_8 = dout[rb3 + 8u];
            s00a += k0_8 * qq0_8;
            e00a += v0_8 * gg0_8;
            s01a += k0_8 * qq1_8;
            e01a += v0_8 * gg1_8;
            s02a += k0_8 * qq2_8;
            e02a += v0_8 * gg2_8;
            s03a += k0_8 * qq3_8;
            e03a += v0_8 * gg3_8;
            s10a += k1_8 * qq0_8;
            e10a += v1_8 * gg0_8;
            s11a += k1_8 * qq1_8;
            e11a += v1_8 * gg1_8;
            s12a += k1_8 * qq2_8;
            e12a += v1_8 * gg2_8;
            s13a += k1_8 * qq3_8;
            e13a += v1_8 * gg3_8;
            s20a += k2_8 * qq0_8;
            e20a += v2_8 * gg0_8;
            s21a += k2_8 * qq1_8;
            e21a += v2_8 * gg1_8;
            s22a += k2_8 * qq2_8;
            e22a += v2_8 * gg2_8;
            s23a += k2_8 * qq3_8;
            e23a += v2_8 * gg3_8;
            s30a += k3_8 * qq0_8;
            e30a += v3_8 * gg0_8;
            s31a += k3_8 * qq1_8;
            e31a += v3_8 * gg1_8;
            s32a += k3_8 * qq2_8;
            e32a += v3_8 * gg2_8;
            s33a += k3_8 * qq3_8;
            e33a += v3_8 * gg3_8;
            let qq0_9 = q[rb0 + 9u];
            let gg0_9 = dout[rb0 + 9u];
            let qq1_9 = q[rb1 + 9u];
            let gg1_9 = dout[rb1 + 9u];
            let qq2_9 = q[rb2 + 9u];
            let gg2_9 = dout[rb2 + 9u];
            let qq3_9 = q[rb3 + 9u];
            let gg3_9 = dout[rb3 + 9u];
            s00a += k0_9 * qq0_9;
            e00a += v0_9 * gg0_9;
            s01a += k0_9 * qq1_9;
            e01a += v0_9 * gg1_9;
            s02a += k0_9 * qq2_9;
            e02a += v0_9 * gg2_9;
            s03a += k0_9 * qq3_9;
            e03a += v0_9 * gg3_9;
            s10a += k1_9 * qq0_9;
            e10a += v1_9 * gg0_9;
            s11a += k1_9 * qq1_9;
            e11a += v1_9 * gg1_9;
            s12a += k1_9 * qq2_9;
            e12a += v1_9 * gg2_9;
            s13a += k1_9 * qq3_9;
            e13a += v1_9 * gg3_9;
            s20a += k2_9 * qq0_9;
            e20a += v2_9 * gg0_9;
            s21a += k2_9 * qq1_9;
            e21a += v2_9 * gg1_9;
            s22a += k2_9 * qq2_9;
            e22a += v2_9 * gg2_9;
            s23a += k2_9 * qq3_9;
            e23a += v2_9 * gg3_9;
            s30a += k3_9 * qq0_9;
            e30a += v3_9 * gg0_9;
            s31a += k3_9 * qq1_9;
            e31a += v3_9 * gg1_9;
            s32a += k3_9 * qq2_9;
            e32a += v3_9 * gg2_9;
            s33a += k3_9 * qq3_9;
            e33a += v3_9 * gg3_9;
            let qq0_10 = q[rb0 + 10u];
            let gg0_10 = dout[rb0 + 10u];
            let qq1_10 = q[rb1 + 10u];
            let gg1_10 = dout[rb1 + 10u];
            let qq2_10 = q[rb2 + 10u];
            let gg2_10 = dout[rb2 + 10u];
            let qq3_10 = q[rb3 + 10u];
            let gg3_10 = dout[rb3 + 10u];
            s00a += k0_10 * qq0_10;
            e00a += v0_10 * gg0_10;
            s01a += k0_10 * qq1_10;
            e01a += v0_10 * gg1_10;
            s02a += k0_10 * qq2_10;
            e02a += v0_10 * gg2_10;
            s03a += k0_10 * qq3_10;
            e03a += v0_10 * gg3_10;
            s10a += k1_10 * qq0_10;
            e10a += v1_10 * gg0_10;
            s11a += k1_10 * qq1_10;
            e11a += v1_10 * gg1_10;
            s12a += k1_10 * qq2_10;
            e12a += v1_10 * gg2_10;
            s13a += k1_10 * qq3_10;
            e13a += v1_10 * gg3_10;
            s20a += k2_10 * qq0_10;
            e20a += v2_10 * gg0_10;
            s21a += k2_10 * qq1_10;
            e21a += v2_10 * gg1_10;
            s22a += k2_10 * qq2_10;
            e22a += v2_10 * gg2_10;
            s23a += k2_10 * qq3_10;
            e23a += v2_10 * gg3_10;
            s30a += k3_10 * qq0_10;
            e30a += v3_10 * gg0_10;
            s31a += k3_10 * qq1_10;
            e31a += v3_10 * gg1_10;
            s32a += k3_10 * qq2_10;
            e32a += v3_10 * gg2_10;
            s33a += k3_10 * qq3_10;
            e33a += v3_10 * gg3_10;
            let qq0_11 = q[rb0 + 11u];
            let gg0_11 = dout[rb0 + 11u];
            let qq1_11 = q[rb1 + 11u];
            let gg1_11 = dout[rb1 + 11u];
            let qq2_11 = q[rb2 + 11u];
            let gg2_11 = dout[rb2 + 11u];
            let qq3_11 = q[rb3 + 11u];
            let gg3_11 = dout[rb3 + 11u];
            s00a += k0_11 * qq0_11;
            e00a += v0_11 * gg0_11;
            s01a += k0_11 * qq1_11;
            e01a += v0_11 * gg1_11;
            s02a += k0_11 * qq2_11;
            e02a += v0_11 * gg2_11;
            s03a += k0_11 * qq3_11;
            e03a += v0_11 * gg3_11;
            s10a += k1_11 * qq0_11;
            e10a += v1_11 * gg0_11;
            s11a += k1_11 * qq1_11;
            e11a += v1_11 * gg1_11;
            s12a += k1_11 * qq2_11;
            e12a += v1_11 * gg2_11;
            s13a += k1_11 * qq3_11;
            e13a += v1_11 * gg3_11;
            s20a += k2_11 * qq0_11;
            e20a += v2_11 * gg0_11;
            s21a += k2_11 * qq1_11;
            e21a += v2_11 * gg1_11;
            s22a += k2_11 * qq2_11;
            e22a += v2_11 * gg2_11;
            s23a += k2_11 * qq3_11;
            e23a += v2_11 * gg3_11;
            s30a += k3_11 * qq0_11;
            e30a += v3_11 * gg0_11;
            s31a += k3_11 * qq1_11;
            e31a += v3_11 * gg1_11;
            s32a += k3_11 * qq2_11;
            e32a += v3_11 * gg2_11;
            s33a += k3_11 * qq3_11;
            e33a += v3_11 * gg3_11;
            let qq0_12 = q[rb0 + 12u];
            let gg0_12 = dout[rb0 + 12u];
            let qq1_12 = q[rb1 + 12u];
            let gg1_12 = dout[rb1 + 12u];
            let qq2_12 = q[rb2 + 12u];
            let gg2_12 = dout[rb2 + 12u];
            let qq3_12 = q[rb3 + 12u];
            let gg3_12 = dout[rb3 + 12u];
            s00a += k0_12 * qq0_12;
            e00a += v0_12 * gg0_12;
            s01a += k0_12 * qq1_12;
            e01a += v0_12 * gg1_12;
            s02a += k0_12 * qq2_12;
            e02a += v0_12 * gg2_12;
            s03a += k0_12 * qq3_12;
            e03a += v0_12 * gg3_12;
            s10a += k1_12 * qq0_12;
            e10a += v1_12 * gg0_12;
            s11a += k1_12 * qq1_12;
            e11a += v1_12 * gg1_12;
            s12a += k1_12 * qq2_12;
            e12a += v1_12 * gg2_12;
            s13a += k1_12 * qq3_12;
            e13a += v1_12 * gg3_12;
            s20a += k2_12 * qq0_12;
            e20a += v2_12 * gg0_12;
            s21a += k2_12 * qq1_12;
            e21a += v2_12 * gg1_12;
            s22a += k2_12 * qq2_12;
            e22a += v2_12 * gg2_12;
            s23a += k2_12 * qq3_12;
            e23a += v2_12 * gg3_12;
            s30a += k3_12 * qq0_12;
            e30a += v3_12 * gg0_12;
            s31a += k3_12 * qq1_12;
            e31a += v3_12 * gg1_12;
            s32a += k3_12 * qq2_12;
            e32a += v3_12 * gg2_12;
            s33a += k3_12 * qq3_12;
            e33a += v3_12 * gg3_12;
            let qq0_13 = q[rb0 + 13u];
            let gg0_13 = dout[rb0 + 13u];
            let qq1_13 = q[rb1 + 13u];
            let gg1_13 = dout[rb1 + 13u];
            let qq2_13 = q[rb2 + 13u];
            let gg2_13 = dout[rb2 + 13u];
            let qq3_13 = q[rb3 + 13u];
            let gg3_13 = dout[rb3 + 13u];
            s00a += k0_13 * qq0_13;
            e00a += v0_13 * gg0_13;
            s01a += k0_13 * qq1_13;
            e01a += v0_13 * gg1_13;
            s02a += k0_13 * qq2_13;
            e02a += v0_13 * gg2_13;
            s03a += k0_13 * qq3_13;
            e03a += v0_13 * gg3_13;
            s10a += k1_13 * qq0_13;
            e10a += v1_13 * gg0_13;
            s11a += k1_13 * qq1_13;
            e11a += v1_13 * gg1_13;
            s12a += k1_13 * qq2_13;
            e12a += v1_13 * gg2_13;
            s13a += k1_13 * qq3_13;
            e13a += v1_13 * gg3_13;
            s20a += k2_13 * qq0_13;
            e20a += v2_13 * gg0_13;
            s21a += k2_13 * qq1_13;
            e21a += v2_13 * gg1_13;
            s22a += k2_13 * qq2_13;
            e22a += v2_13 * gg2_13;
            s23a += k2_13 * qq3_13;
            e23a += v2_13 * gg3_13;
            s30a += k3_13 * qq0_13;
            e30a += v3_13 * gg0_13;
            s31a += k3_13 * qq1_13;
            e31a += v3_13 * gg1_13;
            s32a += k3_13 * qq2_13;
            e32a += v3_13 * gg2_13;
            s33a += k3_13 * qq3_13;
            e33a += v3_13 * gg3_13;
            let qq0_14 = q[rb0 + 14u];
            let gg0_14 = dout[rb0 + 14u];
            let qq1_14 = q[rb1 + 14u];
            let gg1_14 = dout[rb1 + 14u];
            let qq2_14 = q[rb2 + 14u];
            let gg2_14 = dout[rb2 + 14u];
            let qq3_14 = q[rb3 + 14u];
            let gg3_14 = dout[rb3 + 14u];
            s00a += k0_14 * qq0_14;
            e00a += v0_14 * gg0_14;
            s01a += k0_14 * qq1_14;
            e01a += v0_14 * gg1_14;
            s02a += k0_14 * qq2_14;
            e02a += v0_14 * gg2_14;
            s03a += k0_14 * qq3_14;
            e03a += v0_14 * gg3_14;
            s10a += k1_14 * qq0_14;
            e10a += v1_14 * gg0_14;
            s11a += k1_14 * qq1_14;
            e11a += v1_14 * gg1_14;
            s12a += k1_14 * qq2_14;
            e12a += v1_14 * gg2_14;
            s13a += k1_14 * qq3_14;
            e13a += v1_14 * gg3_14;
            s20a += k2_14 * qq0_14;
            e20a += v2_14 * gg0_14;
            s21a += k2_14 * qq1_14;
            e21a += v2_14 * gg1_14;
            s22a += k2_14 * qq2_14;
            e22a += v2_14 * gg2_14;
            s23a += k2_14 * qq3_14;
            e23a += v2_14 * gg3_14;
            s30a += k3_14 * qq0_14;
            e30a += v3_14 * gg0_14;
            s31a += k3_14 * qq1_14;
            e31a += v3_14 * gg1_14;
            s32a += k3_14 * qq2_14;
            e32a += v3_14 * gg2_14;
            s33a += k3_14 * qq3_14;
            e33a += v3_14 * gg3_14;
            let qq0_15 = q[rb0 + 15u];
            let gg0_15 = dout[rb0 + 15u];
            let qq1_15 = q[rb1 + 15u];
            let gg1_15 = dout[rb1 + 15u];
            let qq2_15 = q[rb2 + 15u];
            let gg2_15 = dout[rb2 + 15u];
            let qq3_15 = q[rb3 + 15u];
            let gg3_15 = dout[rb3 + 15u];
            s00a += k0_15 * qq0_15;
            e00a += v0_15 * gg0_15;
            s01a += k0_15 * qq1_15;
            e01a += v0_15 * gg1_15;
            s02a += k0_15 * qq2_15;
            e02a += v0_15 * gg2_15;
            s03a += k0_15 * qq3_15;
            e03a += v0_15 * gg3_15;
            s10a += k1_15 * qq0_15;
            e10a += v1_15 * gg0_15;
            s11a += k1_15 * qq1_15;
            e11a += v1_15 * gg1_15;
            s12a += k1_15 * qq2_15;
            e12a += v1_15 * gg2_15;
            s13a += k1_15 * qq3_15;
            e13a += v1_15 * gg3_15;
            s20a += k2_15 * qq0_15;
            e20a += v2_15 * gg0_15;
            s21a += k2_15 * qq1_15;
            e21a += v2_15 * gg1_15;
            s22a += k2_15 * qq2_15;
            e22a += v2_15 * gg2_15;
            s23a += k2_15 * qq3_15;
            e23a += v2_15 * gg3_15;
            s30a += k3_15 * qq0_15;
            e30a += v3_15 * gg0_15;
            s31a += k3_15 * qq1_15;
            e31a += v3_15 * gg1_15;
            s32a += k3_15 * qq2_15;
            e32a += v3_15 * gg2_15;
            s33a += k3_15 * qq3_15;
            e33a += v3_15 * gg3_15;
            let pr00 = select(0.0, exp(sum4(s00a) - st0.x), m00);
            let ds00 = pr00 * (sum4(e00a) - st0.y);
            let pr01 = select(0.0, exp(sum4(s01a) - st1.x), m01);
            let ds01 = pr01 * (sum4(e01a) - st1.y);
            let pr02 = select(0.0, exp(sum4(s02a) - st2.x), m02);
            let ds02 = pr02 * (sum4(e02a) - st2.y);
            let pr03 = select(0.0, exp(sum4(s03a) - st3.x), m03);
            let ds03 = pr03 * (sum4(e03a) - st3.y);
            let pr10 = select(0.0, exp(sum4(s10a) - st0.x), m10);
            let ds10 = pr10 * (sum4(e10a) - st0.y);
            let pr11 = select(0.0, exp(sum4(s11a) - st1.x), m11);
            let ds11 = pr11 * (sum4(e11a) - st1.y);
            let pr12 = select(0.0, exp(sum4(s12a) - st2.x), m12);
            let ds12 = pr12 * (sum4(e12a) - st2.y);
            let pr13 = select(0.0, exp(sum4(s13a) - st3.x), m13);
            let ds13 = pr13 * (sum4(e13a) - st3.y);
            let pr20 = select(0.0, exp(sum4(s20a) - st0.x), m20);
            let ds20 = pr20 * (sum4(e20a) - st0.y);
            let pr21 = select(0.0, exp(sum4(s21a) - st1.x), m21);
            let ds21 = pr21 * (sum4(e21a) - st1.y);
            let pr22 = select(0.0, exp(sum4(s22a) - st2.x), m22);
            let ds22 = pr22 * (sum4(e22a) - st2.y);
            let pr23 = select(0.0, exp(sum4(s23a) - st3.x), m23);
            let ds23 = pr23 * (sum4(e23a) - st3.y);
            let pr30 = select(0.0, exp(sum4(s30a) - st0.x), m30);
            let ds30 = pr30 * (sum4(e30a) - st0.y);
            let pr31 = select(0.0, exp(sum4(s31a) - st1.x), m31);
            let ds31 = pr31 * (sum4(e31a) - st1.y);
            let pr32 = select(0.0, exp(sum4(s32a) - st2.x), m32);
            let ds32 = pr32 * (sum4(e32a) - st2.y);
            let pr33 = select(0.0, exp(sum4(s33a) - st3.x), m33);
            let ds33 = pr33 * (sum4(e33a) - st3.y);
            gk0_0 += ds00 * qq0_0 + ds01 * qq1_0 + ds02 * qq2_0 + ds03 * qq3_0;
            gv0_0 += pr00 * gg0_0 + pr01 * gg1_0 + pr02 * gg2_0 + pr03 * gg3_0;
            gk1_0 += ds10 * qq0_0 + ds11 * qq1_0 + ds12 * qq2_0 + ds13 * qq3_0;
            gv1_0 += pr10 * gg0_0 + pr11 * gg1_0 + pr12 * gg2_0 + pr13 * gg3_0;
            gk2_0 += ds20 * qq0_0 + ds21 * qq1_0 + ds22 * qq2_0 + ds23 * qq3_0;
            gv2_0 += pr20 * gg0_0 + pr21 * gg1_0 + pr22 * gg2_0 + pr23 * gg3_0;
            gk3_0 += ds30 * qq0_0 + ds31 * qq1_0 + ds32 * qq2_0 + ds33 * qq3_0;
            gv3_0 += pr30 * gg0_0 + pr31 * gg1_0 + pr32 * gg2_0 + pr33 * gg3_0;
            gk0_1 += ds00 * qq0_1 + ds01 * qq1_1 + ds02 * qq2_1 + ds03 * qq3_1;
            gv0_1 += pr00 * gg0_1 + pr01 * gg1_1 + pr02 * gg2_1 + pr03 * gg3_1;
            gk1_1 += ds10 * qq0_1 + ds11 * qq1_1 + ds12 * qq2_1 + ds13 * qq3_1;
            gv1_1 += pr10 * gg0_1 + pr11 * gg1_1 + pr12 * gg2_1 + pr13 * gg3_1;
            gk2_1 += ds20 * qq0_1 + ds21 * qq1_1 + ds22 * qq2_1 + ds23 * qq3_1;
            gv2_1 += pr20 * gg0_1 + pr21 * gg1_1 + pr22 * gg2_1 + pr23 * gg3_1;
            gk3_1 += ds30 * qq0_1 + ds31 * qq1_1 + ds32 * qq2_1 + ds33 * qq3_1;
            gv3_1 += pr30 * gg0_1 + pr31 * gg1_1 + pr32 * gg2_1 + pr33 * gg3_1;
            gk0_2 += ds00 * qq0_2 + ds01 * qq1_2 + ds02 * qq2_2 + ds03 * qq3_2;
            gv0_2 += pr00 * gg0_2 + pr01 * gg1_2 + pr02 * gg2_2 + pr03 * gg3_2;
            gk1_2 += ds10 * qq0_2 + ds11 * qq1_2 + ds12 * qq2_2 + ds13 * qq3_2;
            gv1_2 += pr10 * gg0_2 + pr11 * gg1_2 + pr12 * gg2_2 + pr13 * gg3_2;
            gk2_2 += ds20 * qq0_2 + ds21 * qq1_2 + ds22 * qq2_2 + ds23 * qq3_2;
            gv2_2 += pr20 * gg0_2 + pr21 * gg1_2 + pr22 * gg2_2 + pr23 * gg3_2;
            gk3_2 += ds30 * qq0_2 + ds31 * qq1_2 + ds32 * qq2_2 + ds33 * qq3_2;
            gv3_2 += pr30 * gg0_2 + pr31 * gg1_2 + pr32 * gg2_2 + pr33 * gg3_2;
            gk0_3 += ds00 * qq0_3 + ds01 * qq1_3 + ds02 * qq2_3 + ds03 * qq3_3;
            gv0_3 += pr00 * gg0_3 + pr01 * gg1_3 + pr02 * gg2_3 + pr03 * gg3_3;
            gk1_3 += ds10 * qq0_3 + ds11 * qq1_3 + ds12 * qq2_3 + ds13 * qq3_3;
            gv1_3 += pr10 * gg0_3 + pr11 * gg1_3 + pr12 * gg2_3 + pr13 * gg3_3;
            gk2_3 += ds20 * qq0_3 + ds21 * qq1_3 + ds22 * qq2_3 + ds23 * qq3_3;
            gv2_3 += pr20 * gg0_3 + pr21 * gg1_3 + pr22 * gg2_3 + pr23 * gg3_3;
            gk3_3 += ds30 * qq0_3 + ds31 * qq1_3 + ds32 * qq2_3 + ds33 * qq3_3;
            gv3_3 += pr30 * gg0_3 + pr31 * gg1_3 + pr32 * gg2_3 + pr33 * gg3_3;
            gk0_4 += ds00 * qq0_4 + ds01 * qq1_4 + ds02 * qq2_4 + ds03 * qq3_4;
            gv0_4 += pr00 * gg0_4 + pr01 * gg1_4 + pr02 * gg2_4 + pr03 * gg3_4;
            gk1_4 += ds10 * qq0_4 + ds11 * qq1_4 + ds12 * qq2_4 + ds13 * qq3_4;
            gv1_4 += pr10 * gg0_4 + pr11 * gg1_4 + pr12 * gg2_4 + pr13 * gg3_4;
            gk2_4 += ds20 * qq0_4 + ds21 * qq1_4 + ds22 * qq2_4 + ds23 * qq3_4;
            gv2_4 += pr20 * gg0_4 + pr21 * gg1_4 + pr22 * gg2_4 + pr23 * gg3_4;
            gk3_4 += ds30 * qq0_4 + ds31 * qq1_4 + ds32 * qq2_4 + ds33 * qq3_4;
            gv3_4 += pr30 * gg0_4 + pr31 * gg1_4 + pr32 * gg2_4 + pr33 * gg3_4;
            gk0_5 += ds00 * qq0_5 + ds01 * qq1_5 + ds02 * qq2_5 + ds03 * qq3_5;
            gv0_5 += pr00 * gg0_5 + pr01 * gg1_5 + pr02 * gg2_5 + pr03 * gg3_5;
            gk1_5 += ds10 * qq0_5 + ds11 * qq1_5 + ds12 * qq2_5 + ds13 * qq3_5;
            gv1_5 += pr10 * gg0_5 + pr11 * gg1_5 + pr12 * gg2_5 + pr13 * gg3_5;
            gk2_5 += ds20 * qq0_5 + ds21 * qq1_5 + ds22 * qq2_5 + ds23 * qq3_5;
            gv2_5 += pr20 * gg0_5 + pr21 * gg1_5 + pr22 * gg2_5 + pr23 * gg3_5;
            gk3_5 += ds30 * qq0_5 + ds31 * qq1_5 + ds32 * qq2_5 + ds33 * qq3_5;
            gv3_5 += pr30 * gg0_5 + pr31 * gg1_5 + pr32 * gg2_5 + pr33 * gg3_5;
            gk0_6 += ds00 * qq0_6 + ds01 * qq1_6 + ds02 * qq2_6 + ds03 * qq3_6;
            gv0_6 += pr00 * gg0_6 + pr01 * gg1_6 + pr02 * gg2_6 + pr03 * gg3_6;
            gk1_6 += ds10 * qq0_6 + ds11 * qq1_6 + ds12 * qq2_6 + ds13 * qq3_6;
            gv1_6 += pr10 * gg0_6 + pr11 * gg1_6 + pr12 * gg2_6 + pr13 * gg3_6;
            gk2_6 += ds20 * qq0_6 + ds21 * qq1_6 + ds22 * qq2_6 + ds23 * qq3_6;
            gv2_6 += pr20 * gg0_6 + pr21 * gg1_6 + pr22 * gg2_6 + pr23 * gg3_6;
            gk3_6 += ds30 * qq0_6 + ds31 * qq1_6 + ds32 * qq2_6 + ds33 * qq3_6;
            gv3_6 += pr30 * gg0_6 + pr31 * gg1_6 + pr32 * gg2_6 + pr33 * gg3_6;
            gk0_7 += ds00 * qq0_7 + ds01 * qq1_7 + ds02 * qq2_7 + ds03 * qq3_7;
            gv0_7 += pr00 * gg0_7 + pr01 * gg1_7 + pr02 * gg2_7 + pr03 * gg3_7;
            gk1_7 += ds10 * qq0_7 + ds11 * qq1_7 + ds12 * qq2_7 + ds13 * qq3_7;
            gv1_7 += pr10 * gg0_7 + pr11 * gg1_7 + pr12 * gg2_7 + pr13 * gg3_7;
            gk2_7 += ds20 * qq0_7 + ds21 * qq1_7 + ds22 * qq2_7 + ds23 * qq3_7;
            gv2_7 += pr20 * gg0_7 + pr21 * gg1_7 + pr22 * gg2_7 + pr23 * gg3_7;
            gk3_7 += ds30 * qq0_7 + ds31 * qq1_7 + ds32 * qq2_7 + ds33 * qq3_7;
            gv3_7 += pr30 * gg0_7 + pr31 * gg1_7 + pr32 * gg2_7 + pr33 * gg3_7;
            gk0_8 += ds00 * qq0_8 + ds01 * qq1_8 + ds02 * qq2_8 + ds03 * qq3_8;
            gv0_8 += pr00 * gg0_8 + pr01 * gg1_8 + pr02 * gg2_8 + pr03 * gg3_8;
            gk1_8 += ds10 * qq0_8 + ds11 * qq1_8 + ds12 * qq2_8 + ds13 * qq3_8;
            gv1_8 += pr10 * gg0_8 + pr11 * gg1_8 + pr12 * gg2_8 + pr13 * gg3_8;
            gk2_8 += ds20 * qq0_8 + ds21 * qq1_8 + ds22 * qq2_8 + ds23 * qq3_8;
            gv2_8 += pr20 * gg0_8 + pr21 * gg1_8 + pr22 * gg2_8 + pr23 * gg3_8;
            gk3_8 += ds30 * qq0_8 + ds31 * qq1_8 + ds32 * qq2_8 + ds33 * qq3_8;
            gv3_8 += pr30 * gg0_8 + pr31 * gg1_8 + pr32 * gg2_8 + pr33 * gg3_8;
            gk0_9 += ds00 * qq0_9 + ds01 * qq1_9 + ds02 * qq2_9 + ds03 * qq3_9;
            gv0_9 += pr00 * gg0_9 + pr01 * gg1_9 + pr02 * gg2_9 + pr03 * gg3_9;
            gk1_9 += ds10 * qq0_9 + ds11 * qq1_9 + ds12 * qq2_9 + ds13 * qq3_9;
            gv1_9 += pr10 * gg0_9 + pr11 * gg1_9 + pr12 * gg2_9 + pr13 * gg3_9;
            gk2_9 += ds20 * qq0_9 + ds21 * qq1_9 + ds22 * qq2_9 + ds23 * qq3_9;
            gv2_9 += pr20 * gg0_9 + pr21 * gg1_9 + pr22 * gg2_9 + pr23 * gg3_9;
            gk3_9 += ds30 * qq0_9 + ds31 * qq1_9 + ds32 * qq2_9 + ds33 * qq3_9;
            gv3_9 += pr30 * gg0_9 + pr31 * gg1_9 + pr32 * gg2_9 + pr33 * gg3_9;
            gk0_10 += ds00 * qq0_10 + ds01 * qq1_10 + ds02 * qq2_10 + ds03 * qq3_10;
            gv0_10 += pr00 * gg0_10 + pr01 * gg1_10 + pr02 * gg2_10 + pr03 * gg3_10;
            gk1_10 += ds10 * qq0_10 + ds11 * qq1_10 + ds12 * qq2_10 + ds13 * qq3_10;
            gv1_10 += pr10 * gg0_10 + pr11 * gg1_10 + pr12 * gg2_10 + pr13 * gg3_10;
            gk2_10 += ds20 * qq0_10 + ds21 * qq1_10 + ds22 * qq2_10 + ds23 * qq3_10;
            gv2_10 += pr20 * gg0_10 + pr21 * gg1_10 + pr22 * gg2_10 + pr23 * gg3_10;
            gk3_10 += ds30 * qq0_10 + ds31 * qq1_10 + ds32 * qq2_10 + ds33 * qq3_10;
            gv3_10 += pr30 * gg0_10 + pr31 * gg1_10 + pr32 * gg2_10 + pr33 * gg3_10;
            gk0_11 += ds00 * qq0_11 + ds01 * qq1_11 + ds02 * qq2_11 + ds03 * qq3_11;
            gv0_11 += pr00 * gg0_11 + pr01 * gg1_11 + pr02 * gg2_11 + pr03 * gg3_11;
            gk1_11 += ds10 * qq0_11 + ds11 * qq1_11 + ds12 * qq2_11 + ds13 * qq3_11;
            gv1_11 += pr10 * gg0_11 + pr11 * gg1_11 + pr12 * gg2_11 + pr13 * gg3_11;
            gk2_11 += ds20 * qq0_11 + ds21 * qq1_11 + ds22 * qq2_11 + ds23 * qq3_11;
            gv2_11 += pr20 * gg0_11 + pr21 * gg1_11 + pr22 * gg2_11 + pr23 * gg3_11;
            gk3_11 += ds30 * qq0_11 + ds31 * qq1_11 + ds32 * qq2_11 + ds33 * qq3_11;
            gv3_11 += pr30 * gg0_11 + pr31 * gg1_11 + pr32 * gg2_11 + pr33 * gg3_11;
            gk0_12 += ds00 * qq0_12 + ds01 * qq1_12 + ds02 * qq2_12 + ds03 * qq3_12;
            gv0_12 += pr00 * gg0_12 + pr01 * gg1_12 + pr02 * gg2_12 + pr03 * gg3_12;
            gk1_12 += ds10 * qq0_12 + ds11 * qq1_12 + ds12 * qq2_12 + ds13 * qq3_12;
            gv1_12 += pr10 * gg0_12 + pr11 * gg1_12 + pr12 * gg2_12 + pr13 * gg3_12;
            gk2_12 += ds20 * qq0_12 + ds21 * qq1_12 + ds22 * qq2_12 + ds23 * qq3_12;
            gv2_12 += pr20 * gg0_12 + pr21 * gg1_12 + pr22 * gg2_12 + pr23 * gg3_12;
            gk3_12 += ds30 * qq0_12 + ds31 * qq1_12 + ds32 * qq2_12 + ds33 * qq3_12;
            gv3_12 += pr30 * gg0_12 + pr31 * gg1_12 + pr32 * gg2_12 + pr33 * gg3_12;
            gk0_13 += ds00 * qq0_13 + ds01 * qq1_13 + ds02 * qq2_13 + ds03 * qq3_13;
            gv0_13 += pr00 * gg0_13 + pr01 * gg1_13 + pr02 * gg2_13 + pr03 * gg3_13;
            gk1_13 += ds10 * qq0_13 + ds11 * qq1_13 + ds12 * qq2_13 + ds13 * qq3_13;
            gv1_13 += pr10 * gg0_13 + pr11 * gg1_13 + pr12 * gg2_13 + pr13 * gg3_13;
            gk2_13 += ds20 * qq0_13 + ds21 * qq1_13 + ds22 * qq2_13 + ds23 * qq3_13;
            gv2_13 += pr20 * gg0_13 + pr21 * gg1_13 + pr22 * gg2_13 + pr23 * gg3_13;
            gk3_13 += ds30 * qq0_13 + ds31 * qq1_13 + ds32 * qq2_13 + ds33 * qq3_13;
            gv3_13 += pr30 * gg0_13 + pr31 * gg1_13 + pr32 * gg2_13 + pr33 * gg3_13;
            gk0_14 += ds00 * qq0_14 + ds01 * qq1_14 + ds02 * qq2_14 + ds03 * qq3_14;
            gv0_14 += pr00 * gg0_14 + pr01 * gg1_14 + pr02 * gg2_14 + pr03 * gg3_14;
            gk1_14 += ds10 * qq0_14 + ds11 * qq1_14 + ds12 * qq2_14 + ds13 * qq3_14;
            gv1_14 += pr10 * gg0_14 + pr11 * gg1_14 + pr12 * gg2_14 + pr13 * gg3_14;
            gk2_14 += ds20 * qq0_14 + ds21 * qq1_14 + ds22 * qq2_14 + ds23 * qq3_14;
            gv2_14 += pr20 * gg0_14 + pr21 * gg1_14 + pr22 * gg2_14 + pr23 * gg3_14;
            gk3_14 += ds30 * qq0_14 + ds31 * qq1_14 + ds32 * qq2_14 + ds33 * qq3_14;
            gv3_14 += pr30 * gg0_14 + pr31 * gg1_14 + pr32 * gg2_14 + pr33 * gg3_14;
            gk0_15 += ds00 * qq0_15 + ds01 * qq1_15 + ds02 * qq2_15 + ds03 * qq3_15;
            gv0_15 += pr00 * gg0_15 + pr01 * gg1_15 + pr02 * gg2_15 + pr03 * gg3_15;
            gk1_15 += ds10 * qq0_15 + ds11 * qq1_15 + ds12 * qq2_15 + ds13 * qq3_15;
            gv1_15 += pr10 * gg0_15 + pr11 * gg1_15 + pr12 * gg2_15 + pr13 * gg3_15;
            gk2_15 += ds20 * qq0_15 + ds21 * qq1_15 + ds22 * qq2_15 + ds23 * qq3_15;
            gv2_15 += pr20 * gg0_15 + pr21 * gg1_15 + pr22 * gg2_15 + pr23 * gg3_15;
            gk3_15 += ds30 * qq0_15 + ds31 * qq1_15 + ds32 * qq2_15 + ds33 * qq3_15;
            gv3_15 += pr30 * gg0_15 + pr31 * gg1_15 + pr32 * gg2_15 + pr33 * gg3_15;
        }
        if (seg >= d.t) {
            break;
        }
        let seg_end = clamp(spans[2u * seg + 1u], seg + 1u, d.t);
        qa = max(seg, qmax);
        qe = min(seg_end, seg + reach_all);
        seg = seg_end;
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk0_0;
            tile_a[e + 1u] = gk0_1;
            tile_a[e + 2u] = gk0_2;
            tile_a[e + 3u] = gk0_3;
            tile_a[e + 4u] = gk0_4;
            tile_a[e + 5u] = gk0_5;
            tile_a[e + 6u] = gk0_6;
            tile_a[e + 7u] = gk0_7;
            tile_a[e + 8u] = gk0_8;
            tile_a[e + 9u] = gk0_9;
            tile_a[e + 10u] = gk0_10;
            tile_a[e + 11u] = gk0_11;
            tile_a[e + 12u] = gk0_12;
            tile_a[e + 13u] = gk0_13;
            tile_a[e + 14u] = gk0_14;
            tile_a[e + 15u] = gk0_15;
        } else {
            tile_b[e + 0u] = gk0_0;
            tile_b[e + 1u] = gk0_1;
            tile_b[e + 2u] = gk0_2;
            tile_b[e + 3u] = gk0_3;
            tile_b[e + 4u] = gk0_4;
            tile_b[e + 5u] = gk0_5;
            tile_b[e + 6u] = gk0_6;
            tile_b[e + 7u] = gk0_7;
            tile_b[e + 8u] = gk0_8;
            tile_b[e + 9u] = gk0_9;
            tile_b[e + 10u] = gk0_10;
            tile_b[e + 11u] = gk0_11;
            tile_b[e + 12u] = gk0_12;
            tile_b[e + 13u] = gk0_13;
            tile_b[e + 14u] = gk0_14;
            tile_b[e + 15u] = gk0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gk0_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gk0_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gk0_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gk0_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gk0_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gk0_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gk0_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gk0_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gk0_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gk0_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gk0_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gk0_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gk0_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gk0_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gk0_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gk0_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk0_0;
            tile_a[e + 1u] = gk0_1;
            tile_a[e + 2u] = gk0_2;
            tile_a[e + 3u] = gk0_3;
            tile_a[e + 4u] = gk0_4;
            tile_a[e + 5u] = gk0_5;
            tile_a[e + 6u] = gk0_6;
            tile_a[e + 7u] = gk0_7;
            tile_a[e + 8u] = gk0_8;
            tile_a[e + 9u] = gk0_9;
            tile_a[e + 10u] = gk0_10;
            tile_a[e + 11u] = gk0_11;
            tile_a[e + 12u] = gk0_12;
            tile_a[e + 13u] = gk0_13;
            tile_a[e + 14u] = gk0_14;
            tile_a[e + 15u] = gk0_15;
        } else {
            tile_b[e + 0u] = gk0_0;
            tile_b[e + 1u] = gk0_1;
            tile_b[e + 2u] = gk0_2;
            tile_b[e + 3u] = gk0_3;
            tile_b[e + 4u] = gk0_4;
            tile_b[e + 5u] = gk0_5;
            tile_b[e + 6u] = gk0_6;
            tile_b[e + 7u] = gk0_7;
            tile_b[e + 8u] = gk0_8;
            tile_b[e + 9u] = gk0_9;
            tile_b[e + 10u] = gk0_10;
            tile_b[e + 11u] = gk0_11;
            tile_b[e + 12u] = gk0_12;
            tile_b[e + 13u] = gk0_13;
            tile_b[e + 14u] = gk0_14;
            tile_b[e + 15u] = gk0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk1_0;
            tile_a[e + 1u] = gk1_1;
            tile_a[e + 2u] = gk1_2;
            tile_a[e + 3u] = gk1_3;
            tile_a[e + 4u] = gk1_4;
            tile_a[e + 5u] = gk1_5;
            tile_a[e + 6u] = gk1_6;
            tile_a[e + 7u] = gk1_7;
            tile_a[e + 8u] = gk1_8;
            tile_a[e + 9u] = gk1_9;
            tile_a[e + 10u] = gk1_10;
            tile_a[e + 11u] = gk1_11;
            tile_a[e + 12u] = gk1_12;
            tile_a[e + 13u] = gk1_13;
            tile_a[e + 14u] = gk1_14;
            tile_a[e + 15u] = gk1_15;
        } else {
            tile_b[e + 0u] = gk1_0;
            tile_b[e + 1u] = gk1_1;
            tile_b[e + 2u] = gk1_2;
            tile_b[e + 3u] = gk1_3;
            tile_b[e + 4u] = gk1_4;
            tile_b[e + 5u] = gk1_5;
            tile_b[e + 6u] = gk1_6;
            tile_b[e + 7u] = gk1_7;
            tile_b[e + 8u] = gk1_8;
            tile_b[e + 9u] = gk1_9;
            tile_b[e + 10u] = gk1_10;
            tile_b[e + 11u] = gk1_11;
            tile_b[e + 12u] = gk1_12;
            tile_b[e + 13u] = gk1_13;
            tile_b[e + 14u] = gk1_14;
            tile_b[e + 15u] = gk1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gk1_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gk1_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gk1_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gk1_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gk1_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gk1_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gk1_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gk1_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gk1_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gk1_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gk1_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gk1_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gk1_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gk1_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gk1_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gk1_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk1_0;
            tile_a[e + 1u] = gk1_1;
            tile_a[e + 2u] = gk1_2;
            tile_a[e + 3u] = gk1_3;
            tile_a[e + 4u] = gk1_4;
            tile_a[e + 5u] = gk1_5;
            tile_a[e + 6u] = gk1_6;
            tile_a[e + 7u] = gk1_7;
            tile_a[e + 8u] = gk1_8;
            tile_a[e + 9u] = gk1_9;
            tile_a[e + 10u] = gk1_10;
            tile_a[e + 11u] = gk1_11;
            tile_a[e + 12u] = gk1_12;
            tile_a[e + 13u] = gk1_13;
            tile_a[e + 14u] = gk1_14;
            tile_a[e + 15u] = gk1_15;
        } else {
            tile_b[e + 0u] = gk1_0;
            tile_b[e + 1u] = gk1_1;
            tile_b[e + 2u] = gk1_2;
            tile_b[e + 3u] = gk1_3;
            tile_b[e + 4u] = gk1_4;
            tile_b[e + 5u] = gk1_5;
            tile_b[e + 6u] = gk1_6;
            tile_b[e + 7u] = gk1_7;
            tile_b[e + 8u] = gk1_8;
            tile_b[e + 9u] = gk1_9;
            tile_b[e + 10u] = gk1_10;
            tile_b[e + 11u] = gk1_11;
            tile_b[e + 12u] = gk1_12;
            tile_b[e + 13u] = gk1_13;
            tile_b[e + 14u] = gk1_14;
            tile_b[e + 15u] = gk1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk2_0;
            tile_a[e + 1u] = gk2_1;
            tile_a[e + 2u] = gk2_2;
            tile_a[e + 3u] = gk2_3;
            tile_a[e + 4u] = gk2_4;
            tile_a[e + 5u] = gk2_5;
            tile_a[e + 6u] = gk2_6;
            tile_a[e + 7u] = gk2_7;
            tile_a[e + 8u] = gk2_8;
            tile_a[e + 9u] = gk2_9;
            tile_a[e + 10u] = gk2_10;
            tile_a[e + 11u] = gk2_11;
            tile_a[e + 12u] = gk2_12;
            tile_a[e + 13u] = gk2_13;
            tile_a[e + 14u] = gk2_14;
            tile_a[e + 15u] = gk2_15;
        } else {
            tile_b[e + 0u] = gk2_0;
            tile_b[e + 1u] = gk2_1;
            tile_b[e + 2u] = gk2_2;
            tile_b[e + 3u] = gk2_3;
            tile_b[e + 4u] = gk2_4;
            tile_b[e + 5u] = gk2_5;
            tile_b[e + 6u] = gk2_6;
            tile_b[e + 7u] = gk2_7;
            tile_b[e + 8u] = gk2_8;
            tile_b[e + 9u] = gk2_9;
            tile_b[e + 10u] = gk2_10;
            tile_b[e + 11u] = gk2_11;
            tile_b[e + 12u] = gk2_12;
            tile_b[e + 13u] = gk2_13;
            tile_b[e + 14u] = gk2_14;
            tile_b[e + 15u] = gk2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gk2_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gk2_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gk2_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gk2_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gk2_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gk2_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gk2_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gk2_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gk2_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gk2_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gk2_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gk2_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gk2_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gk2_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gk2_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gk2_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk2_0;
            tile_a[e + 1u] = gk2_1;
            tile_a[e + 2u] = gk2_2;
            tile_a[e + 3u] = gk2_3;
            tile_a[e + 4u] = gk2_4;
            tile_a[e + 5u] = gk2_5;
            tile_a[e + 6u] = gk2_6;
            tile_a[e + 7u] = gk2_7;
            tile_a[e + 8u] = gk2_8;
            tile_a[e + 9u] = gk2_9;
            tile_a[e + 10u] = gk2_10;
            tile_a[e + 11u] = gk2_11;
            tile_a[e + 12u] = gk2_12;
            tile_a[e + 13u] = gk2_13;
            tile_a[e + 14u] = gk2_14;
            tile_a[e + 15u] = gk2_15;
        } else {
            tile_b[e + 0u] = gk2_0;
            tile_b[e + 1u] = gk2_1;
            tile_b[e + 2u] = gk2_2;
            tile_b[e + 3u] = gk2_3;
            tile_b[e + 4u] = gk2_4;
            tile_b[e + 5u] = gk2_5;
            tile_b[e + 6u] = gk2_6;
            tile_b[e + 7u] = gk2_7;
            tile_b[e + 8u] = gk2_8;
            tile_b[e + 9u] = gk2_9;
            tile_b[e + 10u] = gk2_10;
            tile_b[e + 11u] = gk2_11;
            tile_b[e + 12u] = gk2_12;
            tile_b[e + 13u] = gk2_13;
            tile_b[e + 14u] = gk2_14;
            tile_b[e + 15u] = gk2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk3_0;
            tile_a[e + 1u] = gk3_1;
            tile_a[e + 2u] = gk3_2;
            tile_a[e + 3u] = gk3_3;
            tile_a[e + 4u] = gk3_4;
            tile_a[e + 5u] = gk3_5;
            tile_a[e + 6u] = gk3_6;
            tile_a[e + 7u] = gk3_7;
            tile_a[e + 8u] = gk3_8;
            tile_a[e + 9u] = gk3_9;
            tile_a[e + 10u] = gk3_10;
            tile_a[e + 11u] = gk3_11;
            tile_a[e + 12u] = gk3_12;
            tile_a[e + 13u] = gk3_13;
            tile_a[e + 14u] = gk3_14;
            tile_a[e + 15u] = gk3_15;
        } else {
            tile_b[e + 0u] = gk3_0;
            tile_b[e + 1u] = gk3_1;
            tile_b[e + 2u] = gk3_2;
            tile_b[e + 3u] = gk3_3;
            tile_b[e + 4u] = gk3_4;
            tile_b[e + 5u] = gk3_5;
            tile_b[e + 6u] = gk3_6;
            tile_b[e + 7u] = gk3_7;
            tile_b[e + 8u] = gk3_8;
            tile_b[e + 9u] = gk3_9;
            tile_b[e + 10u] = gk3_10;
            tile_b[e + 11u] = gk3_11;
            tile_b[e + 12u] = gk3_12;
            tile_b[e + 13u] = gk3_13;
            tile_b[e + 14u] = gk3_14;
            tile_b[e + 15u] = gk3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gk3_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gk3_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gk3_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gk3_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gk3_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gk3_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gk3_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gk3_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gk3_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gk3_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gk3_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gk3_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gk3_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gk3_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gk3_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gk3_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gk3_0;
            tile_a[e + 1u] = gk3_1;
            tile_a[e + 2u] = gk3_2;
            tile_a[e + 3u] = gk3_3;
            tile_a[e + 4u] = gk3_4;
            tile_a[e + 5u] = gk3_5;
            tile_a[e + 6u] = gk3_6;
            tile_a[e + 7u] = gk3_7;
            tile_a[e + 8u] = gk3_8;
            tile_a[e + 9u] = gk3_9;
            tile_a[e + 10u] = gk3_10;
            tile_a[e + 11u] = gk3_11;
            tile_a[e + 12u] = gk3_12;
            tile_a[e + 13u] = gk3_13;
            tile_a[e + 14u] = gk3_14;
            tile_a[e + 15u] = gk3_15;
        } else {
            tile_b[e + 0u] = gk3_0;
            tile_b[e + 1u] = gk3_1;
            tile_b[e + 2u] = gk3_2;
            tile_b[e + 3u] = gk3_3;
            tile_b[e + 4u] = gk3_4;
            tile_b[e + 5u] = gk3_5;
            tile_b[e + 6u] = gk3_6;
            tile_b[e + 7u] = gk3_7;
            tile_b[e + 8u] = gk3_8;
            tile_b[e + 9u] = gk3_9;
            tile_b[e + 10u] = gk3_10;
            tile_b[e + 11u] = gk3_11;
            tile_b[e + 12u] = gk3_12;
            tile_b[e + 13u] = gk3_13;
            tile_b[e + 14u] = gk3_14;
            tile_b[e + 15u] = gk3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gk3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gk3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gk3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gk3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gk3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gk3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gk3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gk3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gk3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gk3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gk3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gk3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gk3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gk3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gk3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gk3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv0_0;
            tile_a[e + 1u] = gv0_1;
            tile_a[e + 2u] = gv0_2;
            tile_a[e + 3u] = gv0_3;
            tile_a[e + 4u] = gv0_4;
            tile_a[e + 5u] = gv0_5;
            tile_a[e + 6u] = gv0_6;
            tile_a[e + 7u] = gv0_7;
            tile_a[e + 8u] = gv0_8;
            tile_a[e + 9u] = gv0_9;
            tile_a[e + 10u] = gv0_10;
            tile_a[e + 11u] = gv0_11;
            tile_a[e + 12u] = gv0_12;
            tile_a[e + 13u] = gv0_13;
            tile_a[e + 14u] = gv0_14;
            tile_a[e + 15u] = gv0_15;
        } else {
            tile_b[e + 0u] = gv0_0;
            tile_b[e + 1u] = gv0_1;
            tile_b[e + 2u] = gv0_2;
            tile_b[e + 3u] = gv0_3;
            tile_b[e + 4u] = gv0_4;
            tile_b[e + 5u] = gv0_5;
            tile_b[e + 6u] = gv0_6;
            tile_b[e + 7u] = gv0_7;
            tile_b[e + 8u] = gv0_8;
            tile_b[e + 9u] = gv0_9;
            tile_b[e + 10u] = gv0_10;
            tile_b[e + 11u] = gv0_11;
            tile_b[e + 12u] = gv0_12;
            tile_b[e + 13u] = gv0_13;
            tile_b[e + 14u] = gv0_14;
            tile_b[e + 15u] = gv0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gv0_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gv0_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gv0_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gv0_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gv0_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gv0_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gv0_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gv0_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gv0_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gv0_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gv0_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gv0_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gv0_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gv0_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gv0_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gv0_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv0_0;
            tile_a[e + 1u] = gv0_1;
            tile_a[e + 2u] = gv0_2;
            tile_a[e + 3u] = gv0_3;
            tile_a[e + 4u] = gv0_4;
            tile_a[e + 5u] = gv0_5;
            tile_a[e + 6u] = gv0_6;
            tile_a[e + 7u] = gv0_7;
            tile_a[e + 8u] = gv0_8;
            tile_a[e + 9u] = gv0_9;
            tile_a[e + 10u] = gv0_10;
            tile_a[e + 11u] = gv0_11;
            tile_a[e + 12u] = gv0_12;
            tile_a[e + 13u] = gv0_13;
            tile_a[e + 14u] = gv0_14;
            tile_a[e + 15u] = gv0_15;
        } else {
            tile_b[e + 0u] = gv0_0;
            tile_b[e + 1u] = gv0_1;
            tile_b[e + 2u] = gv0_2;
            tile_b[e + 3u] = gv0_3;
            tile_b[e + 4u] = gv0_4;
            tile_b[e + 5u] = gv0_5;
            tile_b[e + 6u] = gv0_6;
            tile_b[e + 7u] = gv0_7;
            tile_b[e + 8u] = gv0_8;
            tile_b[e + 9u] = gv0_9;
            tile_b[e + 10u] = gv0_10;
            tile_b[e + 11u] = gv0_11;
            tile_b[e + 12u] = gv0_12;
            tile_b[e + 13u] = gv0_13;
            tile_b[e + 14u] = gv0_14;
            tile_b[e + 15u] = gv0_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv0_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv0_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv0_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv0_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv0_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv0_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv0_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv0_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv0_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv0_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv0_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv0_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv0_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv0_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv0_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv0_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv1_0;
            tile_a[e + 1u] = gv1_1;
            tile_a[e + 2u] = gv1_2;
            tile_a[e + 3u] = gv1_3;
            tile_a[e + 4u] = gv1_4;
            tile_a[e + 5u] = gv1_5;
            tile_a[e + 6u] = gv1_6;
            tile_a[e + 7u] = gv1_7;
            tile_a[e + 8u] = gv1_8;
            tile_a[e + 9u] = gv1_9;
            tile_a[e + 10u] = gv1_10;
            tile_a[e + 11u] = gv1_11;
            tile_a[e + 12u] = gv1_12;
            tile_a[e + 13u] = gv1_13;
            tile_a[e + 14u] = gv1_14;
            tile_a[e + 15u] = gv1_15;
        } else {
            tile_b[e + 0u] = gv1_0;
            tile_b[e + 1u] = gv1_1;
            tile_b[e + 2u] = gv1_2;
            tile_b[e + 3u] = gv1_3;
            tile_b[e + 4u] = gv1_4;
            tile_b[e + 5u] = gv1_5;
            tile_b[e + 6u] = gv1_6;
            tile_b[e + 7u] = gv1_7;
            tile_b[e + 8u] = gv1_8;
            tile_b[e + 9u] = gv1_9;
            tile_b[e + 10u] = gv1_10;
            tile_b[e + 11u] = gv1_11;
            tile_b[e + 12u] = gv1_12;
            tile_b[e + 13u] = gv1_13;
            tile_b[e + 14u] = gv1_14;
            tile_b[e + 15u] = gv1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gv1_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gv1_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gv1_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gv1_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gv1_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gv1_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gv1_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gv1_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gv1_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gv1_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gv1_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gv1_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gv1_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gv1_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gv1_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gv1_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv1_0;
            tile_a[e + 1u] = gv1_1;
            tile_a[e + 2u] = gv1_2;
            tile_a[e + 3u] = gv1_3;
            tile_a[e + 4u] = gv1_4;
            tile_a[e + 5u] = gv1_5;
            tile_a[e + 6u] = gv1_6;
            tile_a[e + 7u] = gv1_7;
            tile_a[e + 8u] = gv1_8;
            tile_a[e + 9u] = gv1_9;
            tile_a[e + 10u] = gv1_10;
            tile_a[e + 11u] = gv1_11;
            tile_a[e + 12u] = gv1_12;
            tile_a[e + 13u] = gv1_13;
            tile_a[e + 14u] = gv1_14;
            tile_a[e + 15u] = gv1_15;
        } else {
            tile_b[e + 0u] = gv1_0;
            tile_b[e + 1u] = gv1_1;
            tile_b[e + 2u] = gv1_2;
            tile_b[e + 3u] = gv1_3;
            tile_b[e + 4u] = gv1_4;
            tile_b[e + 5u] = gv1_5;
            tile_b[e + 6u] = gv1_6;
            tile_b[e + 7u] = gv1_7;
            tile_b[e + 8u] = gv1_8;
            tile_b[e + 9u] = gv1_9;
            tile_b[e + 10u] = gv1_10;
            tile_b[e + 11u] = gv1_11;
            tile_b[e + 12u] = gv1_12;
            tile_b[e + 13u] = gv1_13;
            tile_b[e + 14u] = gv1_14;
            tile_b[e + 15u] = gv1_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv1_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv1_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv1_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv1_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv1_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv1_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv1_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv1_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv1_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv1_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv1_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv1_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv1_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv1_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv1_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv1_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv2_0;
            tile_a[e + 1u] = gv2_1;
            tile_a[e + 2u] = gv2_2;
            tile_a[e + 3u] = gv2_3;
            tile_a[e + 4u] = gv2_4;
            tile_a[e + 5u] = gv2_5;
            tile_a[e + 6u] = gv2_6;
            tile_a[e + 7u] = gv2_7;
            tile_a[e + 8u] = gv2_8;
            tile_a[e + 9u] = gv2_9;
            tile_a[e + 10u] = gv2_10;
            tile_a[e + 11u] = gv2_11;
            tile_a[e + 12u] = gv2_12;
            tile_a[e + 13u] = gv2_13;
            tile_a[e + 14u] = gv2_14;
            tile_a[e + 15u] = gv2_15;
        } else {
            tile_b[e + 0u] = gv2_0;
            tile_b[e + 1u] = gv2_1;
            tile_b[e + 2u] = gv2_2;
            tile_b[e + 3u] = gv2_3;
            tile_b[e + 4u] = gv2_4;
            tile_b[e + 5u] = gv2_5;
            tile_b[e + 6u] = gv2_6;
            tile_b[e + 7u] = gv2_7;
            tile_b[e + 8u] = gv2_8;
            tile_b[e + 9u] = gv2_9;
            tile_b[e + 10u] = gv2_10;
            tile_b[e + 11u] = gv2_11;
            tile_b[e + 12u] = gv2_12;
            tile_b[e + 13u] = gv2_13;
            tile_b[e + 14u] = gv2_14;
            tile_b[e + 15u] = gv2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gv2_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gv2_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gv2_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gv2_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gv2_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gv2_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gv2_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gv2_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gv2_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gv2_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gv2_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gv2_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gv2_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gv2_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gv2_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gv2_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv2_0;
            tile_a[e + 1u] = gv2_1;
            tile_a[e + 2u] = gv2_2;
            tile_a[e + 3u] = gv2_3;
            tile_a[e + 4u] = gv2_4;
            tile_a[e + 5u] = gv2_5;
            tile_a[e + 6u] = gv2_6;
            tile_a[e + 7u] = gv2_7;
            tile_a[e + 8u] = gv2_8;
            tile_a[e + 9u] = gv2_9;
            tile_a[e + 10u] = gv2_10;
            tile_a[e + 11u] = gv2_11;
            tile_a[e + 12u] = gv2_12;
            tile_a[e + 13u] = gv2_13;
            tile_a[e + 14u] = gv2_14;
            tile_a[e + 15u] = gv2_15;
        } else {
            tile_b[e + 0u] = gv2_0;
            tile_b[e + 1u] = gv2_1;
            tile_b[e + 2u] = gv2_2;
            tile_b[e + 3u] = gv2_3;
            tile_b[e + 4u] = gv2_4;
            tile_b[e + 5u] = gv2_5;
            tile_b[e + 6u] = gv2_6;
            tile_b[e + 7u] = gv2_7;
            tile_b[e + 8u] = gv2_8;
            tile_b[e + 9u] = gv2_9;
            tile_b[e + 10u] = gv2_10;
            tile_b[e + 11u] = gv2_11;
            tile_b[e + 12u] = gv2_12;
            tile_b[e + 13u] = gv2_13;
            tile_b[e + 14u] = gv2_14;
            tile_b[e + 15u] = gv2_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv2_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv2_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv2_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv2_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv2_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv2_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv2_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv2_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv2_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv2_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv2_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv2_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv2_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv2_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv2_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv2_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 1u && split < 3u) {
        let j = split - 1u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv3_0;
            tile_a[e + 1u] = gv3_1;
            tile_a[e + 2u] = gv3_2;
            tile_a[e + 3u] = gv3_3;
            tile_a[e + 4u] = gv3_4;
            tile_a[e + 5u] = gv3_5;
            tile_a[e + 6u] = gv3_6;
            tile_a[e + 7u] = gv3_7;
            tile_a[e + 8u] = gv3_8;
            tile_a[e + 9u] = gv3_9;
            tile_a[e + 10u] = gv3_10;
            tile_a[e + 11u] = gv3_11;
            tile_a[e + 12u] = gv3_12;
            tile_a[e + 13u] = gv3_13;
            tile_a[e + 14u] = gv3_14;
            tile_a[e + 15u] = gv3_15;
        } else {
            tile_b[e + 0u] = gv3_0;
            tile_b[e + 1u] = gv3_1;
            tile_b[e + 2u] = gv3_2;
            tile_b[e + 3u] = gv3_3;
            tile_b[e + 4u] = gv3_4;
            tile_b[e + 5u] = gv3_5;
            tile_b[e + 6u] = gv3_6;
            tile_b[e + 7u] = gv3_7;
            tile_b[e + 8u] = gv3_8;
            tile_b[e + 9u] = gv3_9;
            tile_b[e + 10u] = gv3_10;
            tile_b[e + 11u] = gv3_11;
            tile_b[e + 12u] = gv3_12;
            tile_b[e + 13u] = gv3_13;
            tile_b[e + 14u] = gv3_14;
            tile_b[e + 15u] = gv3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
        gv3_0 += tile_b[((0u * 16u + slot) * 16u) + 0u];
        gv3_1 += tile_b[((0u * 16u + slot) * 16u) + 1u];
        gv3_2 += tile_b[((0u * 16u + slot) * 16u) + 2u];
        gv3_3 += tile_b[((0u * 16u + slot) * 16u) + 3u];
        gv3_4 += tile_b[((0u * 16u + slot) * 16u) + 4u];
        gv3_5 += tile_b[((0u * 16u + slot) * 16u) + 5u];
        gv3_6 += tile_b[((0u * 16u + slot) * 16u) + 6u];
        gv3_7 += tile_b[((0u * 16u + slot) * 16u) + 7u];
        gv3_8 += tile_b[((0u * 16u + slot) * 16u) + 8u];
        gv3_9 += tile_b[((0u * 16u + slot) * 16u) + 9u];
        gv3_10 += tile_b[((0u * 16u + slot) * 16u) + 10u];
        gv3_11 += tile_b[((0u * 16u + slot) * 16u) + 11u];
        gv3_12 += tile_b[((0u * 16u + slot) * 16u) + 12u];
        gv3_13 += tile_b[((0u * 16u + slot) * 16u) + 13u];
        gv3_14 += tile_b[((0u * 16u + slot) * 16u) + 14u];
        gv3_15 += tile_b[((0u * 16u + slot) * 16u) + 15u];
    }
    workgroupBarrier();
    if (split >= 3u && split < 4u) {
        let j = split - 3u;
        let e = ((j % 1u) * 16u + slot) * 16u;
        if (j < 1u) {
            tile_a[e + 0u] = gv3_0;
            tile_a[e + 1u] = gv3_1;
            tile_a[e + 2u] = gv3_2;
            tile_a[e + 3u] = gv3_3;
            tile_a[e + 4u] = gv3_4;
            tile_a[e + 5u] = gv3_5;
            tile_a[e + 6u] = gv3_6;
            tile_a[e + 7u] = gv3_7;
            tile_a[e + 8u] = gv3_8;
            tile_a[e + 9u] = gv3_9;
            tile_a[e + 10u] = gv3_10;
            tile_a[e + 11u] = gv3_11;
            tile_a[e + 12u] = gv3_12;
            tile_a[e + 13u] = gv3_13;
            tile_a[e + 14u] = gv3_14;
            tile_a[e + 15u] = gv3_15;
        } else {
            tile_b[e + 0u] = gv3_0;
            tile_b[e + 1u] = gv3_1;
            tile_b[e + 2u] = gv3_2;
            tile_b[e + 3u] = gv3_3;
            tile_b[e + 4u] = gv3_4;
            tile_b[e + 5u] = gv3_5;
            tile_b[e + 6u] = gv3_6;
            tile_b[e + 7u] = gv3_7;
            tile_b[e + 8u] = gv3_8;
            tile_b[e + 9u] = gv3_9;
            tile_b[e + 10u] = gv3_10;
            tile_b[e + 11u] = gv3_11;
            tile_b[e + 12u] = gv3_12;
            tile_b[e + 13u] = gv3_13;
            tile_b[e + 14u] = gv3_14;
            tile_b[e + 15u] = gv3_15;
        }
    }
    workgroupBarrier();
    if (split == 0u) {
        gv3_0 += tile_a[((0u * 16u + slot) * 16u) + 0u];
        gv3_1 += tile_a[((0u * 16u + slot) * 16u) + 1u];
        gv3_2 += tile_a[((0u * 16u + slot) * 16u) + 2u];
        gv3_3 += tile_a[((0u * 16u + slot) * 16u) + 3u];
        gv3_4 += tile_a[((0u * 16u + slot) * 16u) + 4u];
        gv3_5 += tile_a[((0u * 16u + slot) * 16u) + 5u];
        gv3_6 += tile_a[((0u * 16u + slot) * 16u) + 6u];
        gv3_7 += tile_a[((0u * 16u + slot) * 16u) + 7u];
        gv3_8 += tile_a[((0u * 16u + slot) * 16u) + 8u];
        gv3_9 += tile_a[((0u * 16u + slot) * 16u) + 9u];
        gv3_10 += tile_a[((0u * 16u + slot) * 16u) + 10u];
        gv3_11 += tile_a[((0u * 16u + slot) * 16u) + 11u];
        gv3_12 += tile_a[((0u * 16u + slot) * 16u) + 12u];
        gv3_13 += tile_a[((0u * 16u + slot) * 16u) + 13u];
        gv3_14 += tile_a[((0u * 16u + slot) * 16u) + 14u];
        gv3_15 += tile_a[((0u * 16u + slot) * 16u) + 15u];
    }
    if (split == 0u && live0) {
        dk[kb0 + 0u] = gk0_0 * p.scale;
        dv[kb0 + 0u] = gv0_0;
        dk[kb0 + 1u] = gk0_1 * p.scale;
        dv[kb0 + 1u] = gv0_1;
        dk[kb0 + 2u] = gk0_2 * p.scale;
        dv[kb0 + 2u] = gv0_2;
        dk[kb0 + 3u] = gk0_3 * p.scale;
        dv[kb0 + 3u] = gv0_3;
        dk[kb0 + 4u] = gk0_4 * p.scale;
        dv[kb0 + 4u] = gv0_4;
        dk[kb0 + 5u] = gk0_5 * p.scale;
        dv[kb0 + 5u] = gv0_5;
        dk[kb0 + 6u] = gk0_6 * p.scale;
        dv[kb0 + 6u] = gv0_6;
        dk[kb0 + 7u] = gk0_7 * p.scale;
        dv[kb0 + 7u] = gv0_7;
        dk[kb0 + 8u] = gk0_8 * p.scale;
        dv[kb0 + 8u] = gv0_8;
        dk[kb0 + 9u] = gk0_9 * p.scale;
        dv[kb0 + 9u] = gv0_9;
        dk[kb0 + 10u] = gk0_10 * p.scale;
        dv[kb0 + 10u] = gv0_10;
        dk[kb0 + 11u] = gk0_11 * p.scale;
        dv[kb0 + 11u] = gv0_11;
        dk[kb0 + 12u] = gk0_12 * p.scale;
        dv[kb0 + 12u] = gv0_12;
        dk[kb0 + 13u] = gk0_13 * p.scale;
        dv[kb0 + 13u] = gv0_13;
        dk[kb0 + 14u] = gk0_14 * p.scale;
        dv[kb0 + 14u] = gv0_14;
        dk[kb0 + 15u] = gk0_15 * p.scale;
        dv[kb0 + 15u] = gv0_15;
    }
    if (split == 0u && live1) {
        dk[kb1 + 0u] = gk1_0 * p.scale;
        dv[kb1 + 0u] = gv1_0;
        dk[kb1 + 1u] = gk1_1 * p.scale;
        dv[kb1 + 1u] = gv1_1;
        dk[kb1 + 2u] = gk1_2 * p.scale;
        dv[kb1 + 2u] = gv1_2;
        dk[kb1 + 3u] = gk1_3 * p.scale;
        dv[kb1 + 3u] = gv1_3;
        dk[kb1 + 4u] = gk1_4 * p.scale;
        dv[kb1 + 4u] = gv1_4;
        dk[kb1 + 5u] = gk1_5 * p.scale;
        dv[kb1 + 5u] = gv1_5;
        dk[kb1 + 6u] = gk1_6 * p.scale;
        dv[kb1 + 6u] = gv1_6;
        dk[kb1 + 7u] = gk1_7 * p.scale;
        dv[kb1 + 7u] = gv1_7;
        dk[kb1 + 8u] = gk1_8 * p.scale;
        dv[kb1 + 8u] = gv1_8;
        dk[kb1 + 9u] = gk1_9 * p.scale;
        dv[kb1 + 9u] = gv1_9;
        dk[kb1 + 10u] = gk1_10 * p.scale;
        dv[kb1 + 10u] = gv1_10;
        dk[kb1 + 11u] = gk1_11 * p.scale;
        dv[kb1 + 11u] = gv1_11;
        dk[kb1 + 12u] = gk1_12 * p.scale;
        dv[kb1 + 12u] = gv1_12;
        dk[kb1 + 13u] = gk1_13 * p.scale;
        dv[kb1 + 13u] = gv1_13;
        dk[kb1 + 14u] = gk1_14 * p.scale;
        dv[kb1 + 14u] = gv1_14;
        dk[kb1 + 15u] = gk1_15 * p.scale;
        dv[kb1 + 15u] = gv1_15;
    }
    if (split == 0u && live2) {
        dk[kb2 + 0u] = gk2_0 * p.scale;
        dv[kb2 + 0u] = gv2_0;
        dk[kb2 + 1u] = gk2_1 * p.scale;
        dv[kb2 + 1u] = gv2_1;
        dk[kb2 + 2u] = gk2_2 * p.scale;
        dv[kb2 + 2u] = gv2_2;
        dk[kb2 + 3u] = gk2_3 * p.scale;
        dv[kb2 + 3u] = gv2_3;
        dk[kb2 + 4u] = gk2_4 * p.scale;
        dv[kb2 + 4u] = gv2_4;
        dk[kb2 + 5u] = gk2_5 * p.scale;
        dv[kb2 + 5u] = gv2_5;
        dk[kb2 + 6u] = gk2_6 * p.scale;
        dv[kb2 + 6u] = gv2_6;
        dk[kb2 + 7u] = gk2_7 * p.scale;
        dv[kb2 + 7u] = gv2_7;
        dk[kb2 + 8u] = gk2_8 * p.scale;
        dv[kb2 + 8u] = gv2_8;
        dk[kb2 + 9u] = gk2_9 * p.scale;
        dv[kb2 + 9u] = gv2_9;
        dk[kb2 + 10u] = gk2_10 * p.scale;
        dv[kb2 + 10u] = gv2_10;
        dk[kb2 + 11u] = gk2_11 * p.scale;
        dv[kb2 + 11u] = gv2_11;
        dk[kb2 + 12u] = gk2_12 * p.scale;
        dv[kb2 + 12u] = gv2_12;
        dk[kb2 + 13u] = gk2_13 * p.scale;
        dv[kb2 + 13u] = gv2_13;
        dk[kb2 + 14u] = gk2_14 * p.scale;
        dv[kb2 + 14u] = gv2_14;
        dk[kb2 + 15u] = gk2_15 * p.scale;
        dv[kb2 + 15u] = gv2_15;
    }
    if (split == 0u && live3) {
        dk[kb3 + 0u] = gk3_0 * p.scale;
        dv[kb3 + 0u] = gv3_0;
        dk[kb3 + 1u] = gk3_1 * p.scale;
        dv[kb3 + 1u] = gv3_1;
        dk[kb3 + 2u] = gk3_2 * p.scale;
        dv[kb3 + 2u] = gv3_2;
        dk[kb3 + 3u] = gk3_3 * p.scale;
        dv[kb3 + 3u] = gv3_3;
        dk[kb3 + 4u] = gk3_4 * p.scale;
        dv[kb3 + 4u] = gv3_4;
        dk[kb3 + 5u] = gk3_5 * p.scale;
        dv[kb3 + 5u] = gv3_5;
        dk[kb3 + 6u] = gk3_6 * p.scale;
        dv[kb3 + 6u] = gv3_6;
        dk[kb3 + 7u] = gk3_7 * p.scale;
        dv[kb3 + 7u] = gv3_7;
        dk[kb3 + 8u] = gk3_8 * p.scale;
        dv[kb3 + 8u] = gv3_8;
        dk[kb3 + 9u] = gk3_9 * p.scale;
        dv[kb3 + 9u] = gv3_9;
        dk[kb3 + 10u] = gk3_10 * p.scale;
        dv[kb3 + 10u] = gv3_10;
        dk[kb3 + 11u] = gk3_11 * p.scale;
        dv[kb3 + 11u] = gv3_11;
        dk[kb3 + 12u] = gk3_12 * p.scale;
        dv[kb3 + 12u] = gv3_12;
        dk[kb3 + 13u] = gk3_13 * p.scale;
        dv[kb3 + 13u] = gv3_13;
        dk[kb3 + 14u] = gk3_14 * p.scale;
        dv[kb3 + 14u] = gv3_14;
        dk[kb3 + 15u] = gk3_15 * p.scale;
        dv[kb3 + 15u] = gv3_15;
    }
}
