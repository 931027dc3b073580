// A LoRA adapter's term in the register-blocked weight products (q.lora_r > 0), compiled as
// one module with matmul.wgsl, matmul_rows16.wgsl and matmul_glu.wgsl (gpu/pipeline.rs), whose
// Params and helpers it uses (u and B: bindings 5 and 6, matmul_common.wgsl), so that the
// adapter's second product needs no dispatch of its own (on lavapipe each costs ~0.1 ms at
// decode sizes) nor a second pass over y.

// scale · u[t0 .. t0 + 4, :] · B[b_row0 + n, :] (rows past t read the last row; not stored).
fn lora_col4(t0: u32, n: u32) -> vec4<f32> {
    let r = q.lora_r;
    let u0 = lora_u0(t0, q.b_row0 + n);
    let b0 = (q.b_row0 + n) * r;
    var s = vec4<f32>();
    for (var i = 0u; i < r; i++) {
        s = fma(vec4<f32>(lora_u[u0.x + i], lora_u[u0.y + i], lora_u[u0.z + i], lora_u[u0.w + i]),
                vec4<f32>(lora_b[b0 + i]), s);
    }
    return s * q.lora_scale;
}

// `q_sums`' LoRA term into its 8 rows × RB_N columns (col_step() apart): each rank step reads
// u's 8 rows and B's 8 columns once for 64 FMAs (`lora_col4` reads 5 values for 4). The 8
// columns lie in one 64-column tile, and so in one segment of u (`Recorder::matmul_lora`).
// `row_off`: the rows of B past column n (up's, q.n on, in a paired gate | up run).
fn lora_block8(acc: ptr<function, array<mat2x4<f32>, 8>>, t0: u32, n0: u32, row_off: u32) {
    let r = q.lora_r;
    let last = q.n - 1u;
    let row0 = q.b_row0 + row_off;
    let ua = lora_u0(t0, row0 + min(n0, last));
    let uc = lora_u0(t0 + 4u, row0 + min(n0, last));
    let c = col_step();
    let b0 = (row0 + min(n0, last)) * r;
    let b1 = (row0 + min(n0 + c, last)) * r;
    let b2 = (row0 + min(n0 + 2u * c, last)) * r;
    let b3 = (row0 + min(n0 + 3u * c, last)) * r;
    let b4 = (row0 + min(n0 + 4u * c, last)) * r;
    let b5 = (row0 + min(n0 + 5u * c, last)) * r;
    let b6 = (row0 + min(n0 + 6u * c, last)) * r;
    let b7 = (row0 + min(n0 + 7u * c, last)) * r;
    for (var i = 0u; i < r; i++) {
        let ul = q.lora_scale * vec4<f32>(lora_u[ua.x + i], lora_u[ua.y + i], lora_u[ua.z + i], lora_u[ua.w + i]);
        let uh = q.lora_scale * vec4<f32>(lora_u[uc.x + i], lora_u[uc.y + i], lora_u[uc.z + i], lora_u[uc.w + i]);
        (*acc)[0u] += mat2x4<f32>(ul * lora_b[b0 + i], uh * lora_b[b0 + i]);
        (*acc)[1u] += mat2x4<f32>(ul * lora_b[b1 + i], uh * lora_b[b1 + i]);
        (*acc)[2u] += mat2x4<f32>(ul * lora_b[b2 + i], uh * lora_b[b2 + i]);
        (*acc)[3u] += mat2x4<f32>(ul * lora_b[b3 + i], uh * lora_b[b3 + i]);
        (*acc)[4u] += mat2x4<f32>(ul * lora_b[b4 + i], uh * lora_b[b4 + i]);
        (*acc)[5u] += mat2x4<f32>(ul * lora_b[b5 + i], uh * lora_b[b5 + i]);
        (*acc)[6u] += mat2x4<f32>(ul * lora_b[b6 + i], uh * lora_b[b6 + i]);
        (*acc)[7u] += mat2x4<f32>(ul * lora_b[b7 + i], uh * lora_b[b7 + i]);
    }
}

// The LoRA term into q_sums16's 16 rows (`lora_block8` over each 8): the paired gate | up
// run adds gate's and up's before the activation (`row_off` as there).
fn lora_rows16(acc: ptr<function, array<mat4x4<f32>, 8>>, t0: u32, n0: u32, row_off: u32) {
    lora_rows16_half(acc, 0u, t0, n0, row_off);
    lora_rows16_half(acc, 2u, t0 + 8u, n0, row_off);
}
fn lora_rows16_half(acc: ptr<function, array<mat4x4<f32>, 8>>, h: u32, t0: u32, n0: u32, row_off: u32) {
    var a8 = array<mat2x4<f32>, 8>(mat2x4<f32>((*acc)[0u][h], (*acc)[0u][h + 1u]), mat2x4<f32>((*acc)[1u][h], (*acc)[1u][h + 1u]),
                                   mat2x4<f32>((*acc)[2u][h], (*acc)[2u][h + 1u]), mat2x4<f32>((*acc)[3u][h], (*acc)[3u][h + 1u]),
                                   mat2x4<f32>((*acc)[4u][h], (*acc)[4u][h + 1u]), mat2x4<f32>((*acc)[5u][h], (*acc)[5u][h + 1u]),
                                   mat2x4<f32>((*acc)[6u][h], (*acc)[6u][h + 1u]), mat2x4<f32>((*acc)[7u][h], (*acc)[7u][h + 1u]));
    lora_block8(&a8, t0, n0, row_off);
    (*acc)[0u][h] = a8[0u][0u];
    (*acc)[0u][h + 1u] = a8[0u][1u];
    (*acc)[1u][h] = a8[1u][0u];
    (*acc)[1u][h + 1u] = a8[1u][1u];
    (*acc)[2u][h] = a8[2u][0u];
    (*acc)[2u][h + 1u] = a8[2u][1u];
    (*acc)[3u][h] = a8[3u][0u];
    (*acc)[3u][h + 1u] = a8[3u][1u];
    (*acc)[4u][h] = a8[4u][0u];
    (*acc)[4u][h + 1u] = a8[4u][1u];
    (*acc)[5u][h] = a8[5u][0u];
    (*acc)[5u][h + 1u] = a8[5u][1u];
    (*acc)[6u][h] = a8[6u][0u];
    (*acc)[6u][h + 1u] = a8[6u][1u];
    (*acc)[7u][h] = a8[7u][0u];
    (*acc)[7u][h + 1u] = a8[7u][1u];
}
