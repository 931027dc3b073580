// The stacked q | k | v product of inference with RoPE and the cache stores in its store,
// appended to matmul.wgsl (gpu/pipeline.rs): q_sums' narrow run of 8 rows (`run_sums`) with
// its own store (`Recorder::linear_qkv_rope`). What rope_kv.wgsl's `rope_qkv4` does after the product, one
// dispatch less per layer (on lavapipe each costs ~40 µs of thread handoffs). head_dim 64, so a
// run's 64 columns are one head of q, k or v, and each rotate-half pair (d, d + 32) lies with
// one thread (columns 8 apart) or with lanes j and j ^ 4 (GROUPED: lane j's 8 columns from 8j).
// q.ldy is q's columns (heads × 64, y [t, q.ldy]); k's and v's (kv_heads × 64 each) follow
// them in the product's q.n columns and go to the caches [slots, kv_heads × 64] at row i's slot
// spans[2i + 1] - 1 (`Packing` spans of batched decoding).
@group(0) @binding(8) var<storage, read> rope_cs: array<f32>; // cos, sin [2, t, 32]
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(11) var<storage, read> rope_spans: array<u32>; // [t, 2]
struct RopeCols {
    q_cols: u32,
    kv_cols: u32,
}

// The thread's 8 rows × 8 columns (acc[c]: column n0 + c · col_step(), rows 0..3 and 4..7)
// with their bias, roped where they are q or k, stored to y or the caches.
fn rope_store8(acc: ptr<function, array<mat2x4<f32>, 8>>, t0: u32, n0: u32) {
    let rp = RopeCols(q.ldy, (q.n - q.ldy) / 2u);
    let s = col_step();
    let a = array<mat2x4<f32>, 8>(biased((*acc)[0u], n0), biased((*acc)[1u], n0 + s), biased((*acc)[2u], n0 + 2u * s),
                                  biased((*acc)[3u], n0 + 3u * s), biased((*acc)[4u], n0 + 4u * s),
                                  biased((*acc)[5u], n0 + 5u * s), biased((*acc)[6u], n0 + 6u * s),
                                  biased((*acc)[7u], n0 + 7u * s));
    // Each column's partner in its pair: in the thread 4 columns on (strided), or the same
    // column of lane j ^ 4 (GROUPED; shuffled by every lane, before any branch).
    var pa = array<mat2x4<f32>, 8>(a[4u], a[5u], a[6u], a[7u], a[0u], a[1u], a[2u], a[3u]);
    if (GROUPED) {
        pa = array<mat2x4<f32>, 8>(lane_xor4(a[0u]), lane_xor4(a[1u]), lane_xor4(a[2u]), lane_xor4(a[3u]),
                                   lane_xor4(a[4u]), lane_xor4(a[5u]), lane_xor4(a[6u]), lane_xor4(a[7u]));
    }
    var o = a;
    if (n0 < rp.q_cols + rp.kv_cols) {
        let d0 = n0 % 64u;
        o[0u] = roped(a[0u], pa[0u], t0, d0);
        o[1u] = roped(a[1u], pa[1u], t0, d0 + s);
        o[2u] = roped(a[2u], pa[2u], t0, d0 + 2u * s);
        o[3u] = roped(a[3u], pa[3u], t0, d0 + 3u * s);
        o[4u] = roped(a[4u], pa[4u], t0, d0 + 4u * s);
        o[5u] = roped(a[5u], pa[5u], t0, d0 + 5u * s);
        o[6u] = roped(a[6u], pa[6u], t0, d0 + 6u * s);
        o[7u] = roped(a[7u], pa[7u], t0, d0 + 7u * s);
    }
    store_qkv(o[0u], t0, n0, rp);
    store_qkv(o[1u], t0, n0 + s, rp);
    store_qkv(o[2u], t0, n0 + 2u * s, rp);
    store_qkv(o[3u], t0, n0 + 3u * s, rp);
    store_qkv(o[4u], t0, n0 + 4u * s, rp);
    store_qkv(o[5u], t0, n0 + 5u * s, rp);
    store_qkv(o[6u], t0, n0 + 6u * s, rp);
    store_qkv(o[7u], t0, n0 + 7u * s, rp);
}
// Column n's 8 rows plus its bias.
fn biased(a: mat2x4<f32>, n: u32) -> mat2x4<f32> {
    if (q.has_bias == 0u) {
        return a;
    }
    let b = vec4<f32>(bias[q.b_row0 + min(n, q.n - 1u)]);
    return mat2x4<f32>(a[0u] + b, a[1u] + b);
}
// Rows t0 .. t0 + 7 of the value v at head dim d, rotated with its pair p as rope_kv.wgsl:
// x1 c - x2 s for d < 32, x2 c + x1 s past it (rows past t take the last row's angle).
fn roped(v: mat2x4<f32>, p: mat2x4<f32>, t0: u32, d: u32) -> mat2x4<f32> {
    let j = d % 32u;
    let sign = select(1.0, -1.0, d < 32u);
    let ra = rows4(t0) * 32u + j;
    let rc = rows4(t0 + 4u) * 32u + j;
    let sn = q.t * 32u; // the sines after the t rows of cosines
    let ca = vec4<f32>(rope_cs[ra.x], rope_cs[ra.y], rope_cs[ra.z], rope_cs[ra.w]);
    let cc = vec4<f32>(rope_cs[rc.x], rope_cs[rc.y], rope_cs[rc.z], rope_cs[rc.w]);
    let sa = vec4<f32>(rope_cs[sn + ra.x], rope_cs[sn + ra.y], rope_cs[sn + ra.z], rope_cs[sn + ra.w]);
    let sc = vec4<f32>(rope_cs[sn + rc.x], rope_cs[sn + rc.y], rope_cs[sn + rc.z], rope_cs[sn + rc.w]);
    return mat2x4<f32>(v[0u] * ca + sign * p[0u] * sa, v[1u] * cc + sign * p[1u] * sc);
}
// Column n of rows t0 .. t0 + 7 to q (y), or to the k or v cache at the rows' slots.
fn store_qkv(v: mat2x4<f32>, t0: u32, n: u32, rp: RopeCols) {
    if (n >= q.n) {
        return;
    }
    store_qkv1(v[0u].x, t0, n, rp);
    store_qkv1(v[0u].y, t0 + 1u, n, rp);
    store_qkv1(v[0u].z, t0 + 2u, n, rp);
    store_qkv1(v[0u].w, t0 + 3u, n, rp);
    store_qkv1(v[1u].x, t0 + 4u, n, rp);
    store_qkv1(v[1u].y, t0 + 5u, n, rp);
    store_qkv1(v[1u].z, t0 + 6u, n, rp);
    store_qkv1(v[1u].w, t0 + 7u, n, rp);
}
fn store_qkv1(x: f32, t: u32, n: u32, rp: RopeCols) {
    if (t >= q.t) {
        return;
    }
    let slot = rope_spans[2u * t + 1u] - 1u;
    if (n < rp.q_cols) {
        y[t * rp.q_cols + n] = x;
    } else if (n < rp.q_cols + rp.kv_cols) {
        k_cache[slot * rp.kv_cols + n - rp.q_cols] = x;
    } else {
        v_cache[slot * rp.kv_cols + n - rp.q_cols - rp.kv_cols] = x;
    }
}
// The narrow run of 8 rows with the rope store.
@compute @workgroup_size(8)
fn matmul_q_sums_run_rope_v4(ln: Lane) {
    let s = run_sums(ln, 8u, true, false);
    if (s.t0 >= q.t) {
        return;
    }
    var acc = s.acc;
    rope_store8(&acc, s.t0, s.n0);
}
