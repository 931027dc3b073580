// Row gathers and sums: dst[r, :] = Σ src[list[k], :] over k in offsets[r] .. offsets[r+1].
// `index` holds the offsets (rows + 1 of them, counted from the start of `index`) followed by
// the lists. With one source per row it is a gather (the completion rows of a packed sequence);
// its transpose sums the rows' gradients back, several completions adding into a shared row.

struct Params {
    rows: u32,
    width: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid;
    if (i >= p.rows * p.width) {
        return;
    }
    let r = i / p.width;
    let c = i % p.width;
    var acc = 0.0;
    for (var k = index[r]; k < index[r + 1u]; k++) {
        acc += src[index[k] * p.width + c];
    }
    dst[i] = acc;
}
