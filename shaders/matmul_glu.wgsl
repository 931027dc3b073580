// The paired gate | up runs, appended to matmul.wgsl and matmul_rows16.wgsl as one module
// (gpu/pipeline.rs): q_sums' and q_sums16's wide forms with GLU_ACT set.
// The gated MLP's gate and up in one run (a pipeline constant: 0 off, else 1 + the activation's
// `act_kind`; `Recorder::linear_glu`): the weight holds gate's q.n rows, then up's
// (`Layer::gate_up`); a thread's second column set is up's rows of its gate columns, and it
// stores act(gate) · up. One dispatch for three, and each x block loaded serves both.
override GLU_ACT: u32 = 0u;
fn glu() -> bool {
    return GLU_ACT != 0u;
}
// The blocks of the rows q.n on from those of b (up's of gate's; q.n is whole weight groups).
fn up_blocks(b: array<u32, RB_N>) -> array<u32, RB_N> {
    let o = wblock(q.n, 0u, q.k >> 5u, q.wgroup);
    return array<u32, RB_N>(b[0u] + o, b[1u] + o, b[2u] + o, b[3u] + o, b[4u] + o, b[5u] + o, b[6u] + o, b[7u] + o);
}
// The paired store's columns: act(gate) · up, rows 0..3 and 4..7.
fn glu2x4(g: mat2x4<f32>, u: mat2x4<f32>) -> mat2x4<f32> {
    return mat2x4<f32>(act_kind4(g[0u], GLU_ACT - 1u) * u[0u], act_kind4(g[1u], GLU_ACT - 1u) * u[1u]);
}
// The paired store's columns over 16 rows (as `glu2x4`).
fn glu4x4(g: mat4x4<f32>, u: mat4x4<f32>) -> mat4x4<f32> {
    let k = GLU_ACT - 1u;
    return mat4x4<f32>(act_kind4(g[0u], k) * u[0u], act_kind4(g[1u], k) * u[1u], act_kind4(g[2u], k) * u[2u],
                       act_kind4(g[3u], k) * u[3u]);
}
// The wide runs with GLU_ACT set: 8 or 16 rows × 64 columns of gate and the same of up.
@compute @workgroup_size(8)
fn matmul_q_sums_run_glu_v4(ln: Lane) {
    q_sums(ln, 8u, true, true);
}
@compute @workgroup_size(8)
fn matmul_q_sums_run16_glu_v4(ln: Lane) {
    q_sums16(ln, 16u, true, true);
}
