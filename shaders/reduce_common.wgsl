// What reduce.wgsl and reduce_subgroup.wgsl share (prepended after either): the argmax's
// ordering and the register-blocked products' shared x rows.

// Order-preserving map of f32 to u32 (a < b as floats ⇔ key(a) < key(b)).
fn order_key(z: f32) -> u32 {
    let b = bitcast<u32>(z);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// (key a, index ia) beats (key b, index ib): a candidate beats none, a larger key wins, ties go
// to the lower index.
fn better(a: u32, ia: u32, b: u32, ib: u32) -> bool {
    return ia != 0xffffffffu && (ib == 0xffffffffu || a > b || (a == b && ia < ib));
}

// For a run of 8 invocations sharing x rows (lanes8): each invocation j loads one vec4, `mine`,
// and this is the matrix whose row i is the vec4 held by invocation j0 + i * step, transposed
// (column c holds the four rows' elements c), as the products' xt4 / dyt4 build from memory,
// so the run reads its rows once instead of eight times. j0 and step: constants (from_lane8_const).
fn xt4_shared(ln: Lane, mine: vec4<f32>, j0: u32, step: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(from_lane8_const(ln, mine, j0), from_lane8_const(ln, mine, j0 + step),
                                 from_lane8_const(ln, mine, j0 + 2u * step),
                                 from_lane8_const(ln, mine, j0 + 3u * step)));
}
