// The gated MLP's activations, shared by activation.wgsl (act_mul and its backward) and the
// forward products' gated store (matmul_common.wgsl `stored`), prepended to both at build.
// kind 0: SiLU (Llama, Qwen); 1: GELU with the tanh approximation (Gemma's gelu_pytorch_tanh).

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

// tanh's argument inside GELU: past ±15 tanh is ±1 in f32, and clamping keeps the built-in
// from overflowing on inputs where it is computed through exp.
fn gelu_inner(g: f32) -> f32 {
    return clamp(SQRT_2_OVER_PI * (g + GELU_C * g * g * g), -15.0, 15.0);
}

fn act_kind(g: f32, kind: u32) -> f32 {
    if (kind == 1u) {
        return 0.5 * g * (1.0 + tanh(gelu_inner(g)));
    }
    return g / (1.0 + exp(-g));
}

// act_kind over four values (the products' gated stores).
fn act_kind4(g: vec4<f32>, kind: u32) -> vec4<f32> {
    return vec4<f32>(act_kind(g.x, kind), act_kind(g.y, kind), act_kind(g.z, kind), act_kind(g.w, kind));
}
