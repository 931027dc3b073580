// Workgroup-wide reductions on subgroup operations: one subgroup reduction, then one pass
// over the per-subgroup results in workgroup memory: two barriers instead of log2(RED_WG) + 2. Same interface and results as reduce.wgsl
// (which documents it), except the order in which sums are added. Any subgroup size works.
// (Naga 30 takes subgroup operations on a device with the feature, and rejects the standard
// `enable subgroups;` directive as not yet implemented.)

struct Lane {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
}

var<workgroup> red_a: array<vec2<f32>, RED_WG>;
var<workgroup> red_i: array<u32, RED_WG>;
var<workgroup> red_k: array<u32, RED_WG>;

fn wg_sum2(ln: Lane, v: vec2<f32>) -> vec2<f32> {
    let s = subgroupAdd(v);
    if (ln.sg_lane == 0u) {
        red_a[ln.sg] = s;
    }
    workgroupBarrier();
    // Each lane adds every sg_size-th subgroup's sum, then one more subgroup reduction.
    var r = vec2<f32>(0.0);
    for (var j = ln.sg_lane; j < ln.nsg; j += ln.sg_size) {
        r += red_a[j];
    }
    r = subgroupAdd(r);
    workgroupBarrier();
    return r;
}

fn wg_sum(ln: Lane, v: f32) -> f32 {
    return wg_sum2(ln, vec2<f32>(v, 0.0)).x;
}

fn wg_max(ln: Lane, v: f32) -> f32 {
    let s = subgroupMax(v);
    if (ln.sg_lane == 0u) {
        red_a[ln.sg].x = s;
    }
    workgroupBarrier();
    var r = red_a[0].x;
    for (var j = ln.sg_lane; j < ln.nsg; j += ln.sg_size) {
        r = max(r, red_a[j].x);
    }
    r = subgroupMax(r);
    workgroupBarrier();
    return r;
}

// The subgroup's best (key, index) pair: the largest key among candidates, then the lowest
// index holding it.
fn sg_best(k: u32, i: u32) -> vec2<u32> {
    let kmax = subgroupMax(select(0u, k, i != 0xffffffffu));
    return vec2<u32>(kmax, subgroupMin(select(0xffffffffu, i, i != 0xffffffffu && k == kmax)));
}

fn wg_argmax(ln: Lane, v: f32, i: u32) -> u32 {
    let b = sg_best(order_key(v), i);
    if (ln.sg_lane == 0u) {
        red_k[ln.sg] = b.x;
        red_i[ln.sg] = b.y;
    }
    workgroupBarrier();
    var bk = 0u;
    var bi = 0xffffffffu;
    for (var j = ln.sg_lane; j < ln.nsg; j += ln.sg_size) {
        if (better(red_k[j], red_i[j], bk, bi)) {
            bk = red_k[j];
            bi = red_i[j];
        }
    }
    let r = sg_best(bk, bi).y;
    workgroupBarrier();
    return r;
}

// Lane sharing (see reduce.wgsl): a run of 8 invocations lies in one subgroup, as consecutive
// lanes, when subgroups are a multiple of 8 wide and laid out in invocation order (every
// implementation known; checked, since Vulkan leaves it open). Then values pass by shuffles.
// LANES8_IN_ORDER (a constant the host prepends: CPU devices with always-8-lane subgroups,
// lavapipe, whose subgroup is the run of 8 in invocation order for 1-D workgroups of a multiple
// of 8) skips the check, so that specialization removes the callers' other path (gpu/specialize.rs).
fn lanes8(ln: Lane) -> bool {
    if (LANES8_IN_ORDER) {
        return true;
    }
    return ln.sg_size % 8u == 0u && subgroupAll(ln.sg_lane == ln.lid % ln.sg_size);
}
fn from_lane8(ln: Lane, v: vec4<f32>, j: u32) -> vec4<f32> {
    return subgroupShuffle(v, (ln.sg_lane & ~7u) + j);
}
// from_lane8 where j is a constant once inlined (the switch then folds away). Subgroups of
// always 8 lanes (SUBGROUP8, a constant the host prepends: lavapipe's) take a broadcast of that
// lane, which llvmpipe makes one extract where a shuffle is a loop over the lanes (a Q4_1
// product of 1024 x 1536 x 576 on lavapipe: 5-10 % faster).
fn from_lane8_const(ln: Lane, v: vec4<f32>, j: u32) -> vec4<f32> {
    if (!SUBGROUP8) {
        return from_lane8(ln, v, j);
    }
    return lane8_broadcast(v, j);
}
// v of the subgroup's lane j, j a constant once inlined; SUBGROUP8 devices only (a run of 8 is
// the whole subgroup).
fn lane8_broadcast(v: vec4<f32>, j: u32) -> vec4<f32> {
    switch (j) {
        case 0u: { return subgroupBroadcast(v, 0u); }
        case 1u: { return subgroupBroadcast(v, 1u); }
        case 2u: { return subgroupBroadcast(v, 2u); }
        case 3u: { return subgroupBroadcast(v, 3u); }
        case 4u: { return subgroupBroadcast(v, 4u); }
        case 5u: { return subgroupBroadcast(v, 5u); }
        case 6u: { return subgroupBroadcast(v, 6u); }
        default: { return subgroupBroadcast(v, 7u); }
    }
}
