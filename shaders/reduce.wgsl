// Workgroup-wide reductions, portable form: a tree through workgroup memory. Prepended at
// pipeline build to the kernel files that reduce (pipeline.rs); reduce_subgroup.wgsl is the
// same interface on subgroup operations, used where the device has them. The kernel file
// declares RED_WG (its @workgroup_size, a power of two) and takes `ln: Lane` as its builtins.
// Every call must be in workgroup-uniform control flow; every thread gets the same result, and
// each call is also a workgroup barrier (its last step), so the caller may reuse its own
// workgroup memory after it.

struct Lane {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
}

var<workgroup> red_a: array<vec2<f32>, RED_WG>;
var<workgroup> red_i: array<u32, RED_WG>;
var<workgroup> red_k: array<u32, RED_WG>;

fn wg_sum2(ln: Lane, v: vec2<f32>) -> vec2<f32> {
    red_a[ln.lid] = v;
    workgroupBarrier();
    for (var k = RED_WG / 2u; k > 0u; k >>= 1u) {
        if (ln.lid < k) {
            red_a[ln.lid] += red_a[ln.lid + k];
        }
        workgroupBarrier();
    }
    let r = red_a[0];
    workgroupBarrier();
    return r;
}

fn wg_sum(ln: Lane, v: f32) -> f32 {
    return wg_sum2(ln, vec2<f32>(v, 0.0)).x;
}

fn wg_max(ln: Lane, v: f32) -> f32 {
    red_a[ln.lid].x = v;
    workgroupBarrier();
    for (var k = RED_WG / 2u; k > 0u; k >>= 1u) {
        if (ln.lid < k) {
            red_a[ln.lid].x = max(red_a[ln.lid].x, red_a[ln.lid + k].x);
        }
        workgroupBarrier();
    }
    let r = red_a[0].x;
    workgroupBarrier();
    return r;
}

// The index i of the largest v, by the order-preserving key (lowest index on ties); threads
// holding no candidate pass i = 0xffffffff, which is also the result when none has one.
fn wg_argmax(ln: Lane, v: f32, i: u32) -> u32 {
    red_i[ln.lid] = i;
    red_k[ln.lid] = order_key(v);
    workgroupBarrier();
    for (var k = RED_WG / 2u; k > 0u; k >>= 1u) {
        if (ln.lid < k) {
            let i2 = red_i[ln.lid + k];
            let k2 = red_k[ln.lid + k];
            let i1 = red_i[ln.lid];
            let k1 = red_k[ln.lid];
            if (better(k2, i2, k1, i1)) {
                red_i[ln.lid] = i2;
                red_k[ln.lid] = k2;
            }
        }
        workgroupBarrier();
    }
    let r = red_i[0];
    workgroupBarrier();
    return r;
}

// Lane sharing (the register-blocked matmul): whether each run of 8 invocations lid - lid % 8
// .. + 7 can pass values to one another, and `from_lane8(ln, v, j)`: v of the run's j-th
// invocation. Never here: the matmul then reads its x rows itself.
fn lanes8(ln: Lane) -> bool {
    return false;
}
fn from_lane8(ln: Lane, v: vec4<f32>, j: u32) -> vec4<f32> {
    return v;
}
fn from_lane8_const(ln: Lane, v: vec4<f32>, j: u32) -> vec4<f32> {
    return v;
}
fn lane8_broadcast(v: vec4<f32>, j: u32) -> vec4<f32> {
    return v;
}
