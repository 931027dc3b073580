// Ordering helpers of the argmax reductions (prepended after reduce.wgsl or
// reduce_subgroup.wgsl).

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
