// y[t, n_off + n] (+)= sum_k x[t, k] * W[w_row0 + n, k] + bias[b_row0 + n]
// W is one row-piece of a weight matrix [N, K] (Hugging Face layout: y = x W^T), stored f32,
// or f16 / bf16 packed two per u32 so that no `shader-f16` support is needed.
// 16×16 output tiles; x and W tiles go through workgroup memory.

struct Params {
    t: u32,          // rows of x and y
    k: u32,          // inner dimension
    n: u32,          // output columns computed by this dispatch
    n_off: u32,      // first output column written
    ldy: u32,        // row stride of y
    w_row0: u32,     // first weight row (within this piece) used
    has_bias: u32,
    accumulate: u32, // 1: add into y (fused residual)
    b_row0: u32,     // first weight row in the whole tensor: the bias belongs to the weight rows
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WDTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn load_w(i: u32) -> f32 {
    if (WDTYPE == 0u) {
        return bitcast<f32>(w[i]);
    }
    let bits = (w[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
    if (WDTYPE == 1u) {
        return unpack2x16float(bits).x;
    }
    return bitcast<f32>(bits << 16u);
}

const TILE: u32 = 16u;
var<workgroup> xs: array<array<f32, 16>, 16>;
var<workgroup> ws: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n0 = wg.x * TILE;
    let t0 = wg.y * TILE;
    let t = t0 + lid.y;
    let n = n0 + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 += TILE) {
        let kx = k0 + lid.x;
        // x tile: row t0+ly, column k0+lx.  W tile: row n0+ly, column k0+lx.
        xs[lid.y][lid.x] = select(0.0, x[t * p.k + kx], t < p.t && kx < p.k);
        let wn = n0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, load_w((p.w_row0 + wn) * p.k + kx), wn < p.n && kx < p.k);
        workgroupBarrier();
        for (var j = 0u; j < TILE; j++) {
            acc += xs[lid.y][j] * ws[lid.x][j];
        }
        workgroupBarrier();
    }
    if (t < p.t && n < p.n) {
        let col = p.n_off + n;
        if (p.has_bias != 0u) {
            acc += bias[p.b_row0 + n];
        }
        let idx = t * p.ldy + col;
        if (p.accumulate != 0u) {
            acc += y[idx];
        }
        y[idx] = acc;
    }
}

// Few rows of x (decode): one workgroup per output column; its 64 threads stride over k, so
// neighbouring threads read neighbouring weights, then reduce. No 16×16 tile sits mostly idle.
const MV_ROWS: u32 = 4u;
var<workgroup> red: array<array<f32, 64>, 4>;

@compute @workgroup_size(64)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let n = wg.y * nwg.x + wg.x;
    if (n >= p.n) {
        return; // uniform per workgroup
    }
    let wrow = (p.w_row0 + n) * p.k;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var k = lid; k < p.k; k += 64u) {
        let wv = load_w(wrow + k);
        for (var t = 0u; t < p.t; t++) {
            acc[t] += x[t * p.k + k] * wv;
        }
    }
    for (var t = 0u; t < MV_ROWS; t++) {
        red[t][lid] = acc[t];
    }
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var t = 0u; t < MV_ROWS; t++) {
                red[t][lid] += red[t][lid + s];
            }
        }
        workgroupBarrier();
    }
    if (lid < p.t) {
        var v = red[lid][0];
        if (p.has_bias != 0u) {
            v += bias[p.b_row0 + n];
        }
        let idx = lid * p.ldy + p.n_off + n;
        if (p.accumulate != 0u) {
            v += y[idx];
        }
        y[idx] = v;
    }
}

// ---- backward ----------------------------------------------------------------------------
// Entry points below use their own uniform struct at binding 0 (each entry point sees one).

// Input gradient of `matmul` for one row-piece of W:
// dx[t, k] (+)= Σ_j dy[t * ldy + dy_off + j] * W[w_row0 + j, k]   for j < n.
// 16×16 tiles of dx; the dy and W tiles go through the same workgroup memory as `matmul`.
struct MatmulBackwardParams {
    t: u32,
    k: u32,          // columns of W and dx
    n: u32,          // weight rows (columns of dy) summed by this dispatch
    ldy: u32,        // row stride of dy
    dy_off: u32,     // column of dy that pairs with weight row w_row0
    w_row0: u32,     // first weight row (within this piece)
    accumulate: u32, // 1: add into dx
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> pb: MatmulBackwardParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
// binding 2: the weight piece `w`, read through `load_w`
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(16, 16)
fn matmul_backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = wg.x * TILE + lid.x;
    let t = wg.y * TILE + lid.y;
    var acc = 0.0;
    for (var j0 = 0u; j0 < pb.n; j0 += TILE) {
        // dy tile: row t, column j0+lx.  W tile: row j0+ly, column k (both read along rows).
        let jy = j0 + lid.x;
        xs[lid.y][lid.x] = select(0.0, dy[t * pb.ldy + pb.dy_off + jy], t < pb.t && jy < pb.n);
        let wj = j0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, load_w((pb.w_row0 + wj) * pb.k + k), wj < pb.n && k < pb.k);
        workgroupBarrier();
        for (var j = 0u; j < TILE; j++) {
            acc += xs[lid.y][j] * ws[j][lid.x];
        }
        workgroupBarrier();
    }
    if (t < pb.t && k < pb.k) {
        let idx = t * pb.k + k;
        if (pb.accumulate != 0u) {
            acc += dx[idx];
        }
        dx[idx] = acc;
    }
}

// General strided f32 product (the LoRA products and their gradients):
// C[c_off + i*ldc + j] (+)= alpha * Σ_p A[a_off + i*a_rs + p*a_cs] * B[b_off + p*b_rs + j*b_cs]
// for i < m, j < n, p < k. Strides in elements, so any operand may be read transposed.
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    ldc: u32,
    alpha: f32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pg: GemmParams;
@group(0) @binding(5) var<storage, read> ga: array<f32>;
@group(0) @binding(6) var<storage, read> gb: array<f32>;
@group(0) @binding(7) var<storage, read_write> gc: array<f32>;

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i0 = wg.y * TILE;
    let j0 = wg.x * TILE;
    let i = i0 + lid.y;
    let j = j0 + lid.x;
    var acc = 0.0;
    for (var p0 = 0u; p0 < pg.k; p0 += TILE) {
        // A tile [i][p] and B tile [p][j].
        let pa = p0 + lid.x;
        xs[lid.y][lid.x] = select(0.0, ga[pg.a_off + i * pg.a_rs + pa * pg.a_cs], i < pg.m && pa < pg.k);
        let pbr = p0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, gb[pg.b_off + pbr * pg.b_rs + j * pg.b_cs], pbr < pg.k && j < pg.n);
        workgroupBarrier();
        for (var q = 0u; q < TILE; q++) {
            acc += xs[lid.y][q] * ws[q][lid.x];
        }
        workgroupBarrier();
    }
    if (i < pg.m && j < pg.n) {
        let idx = pg.c_off + i * pg.ldc + j;
        var v = pg.alpha * acc;
        if (pg.accumulate != 0u) {
            v += gc[idx];
        }
        gc[idx] = v;
    }
}
