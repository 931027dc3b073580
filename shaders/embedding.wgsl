// out[t, :] = E[ids[t], :] for the ids that fall in this row-piece of the embedding table.
// E is read through `load_w` (weights.wgsl, prepended at build), so any weight dtype works.

struct Params {
    t: u32,
    d: u32,
    row_start: u32,
    rows: u32,
    wgroup: u32, // rows whose blocks are stored side by side (`wblock` in weights.wgsl)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn embed(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid;
    if (i >= p.t * p.d) {
        return;
    }
    let t = i / p.d;
    let c = i % p.d;
    let id = ids[t];
    if (id >= p.row_start && id < p.row_start + p.rows) {
        out[i] = load_w(welem(id - p.row_start, c, p.d, p.wgroup));
    }
}
