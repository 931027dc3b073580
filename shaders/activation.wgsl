// Elementwise ops of the MLP and the residual stream.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid;
}

// b = silu(a) * b   (a = gate projection, b = up projection)
@compute @workgroup_size(256)
fn silu_mul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        let g = a[i];
        b[i] = g / (1.0 + exp(-g)) * b[i];
    }
}

// b = b + a
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        b[i] = b[i] + a[i];
    }
}

// Backward of b' = silu(g) * b:  dgate = da * b * silu'(g),  dup = da * silu(g),
// with silu'(g) = s * (1 + g * (1 - s)), s = sigmoid(g). Each invocation reads its element of
// every input before writing its outputs.
@group(0) @binding(3) var<storage, read> bw_gate: array<f32>;
@group(0) @binding(4) var<storage, read> bw_up: array<f32>;
@group(0) @binding(5) var<storage, read> bw_da: array<f32>;
@group(0) @binding(6) var<storage, read_write> bw_dgate: array<f32>;
@group(0) @binding(7) var<storage, read_write> bw_dup: array<f32>;

@compute @workgroup_size(256)
fn silu_mul_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = index(wg, nwg, lid);
    if (i < p.n) {
        let g = bw_gate[i];
        let u = bw_up[i];
        let da = bw_da[i];
        let s = 1.0 / (1.0 + exp(-g));
        bw_dgate[i] = da * u * (s * (1.0 + g * (1.0 - s)));
        bw_dup[i] = da * (g * s);
    }
}
