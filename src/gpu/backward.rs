//! Backward and optimizer kernels for LoRA training: typed `Recorder` wrappers over the
//! `*_backward`, `logprob_grad` entry points (the LoRA products, `gemm`, are in gemm.rs) of the family shaders and over
//! `shaders/optim.wgsl`. Like the forward wrappers, each checks its arguments before recording
//! anything, so a refused call (`Error::Invalid`, e.g. a binding over the device limit) leaves
//! the recorder as it was.
//!
//! Buffers are f32 unless said; sizes are in elements. An output buffer must not also be one of
//! the same call's inputs (the kernels bind inputs read-only); `Error::Invalid` says so.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};

use super::kernels::{
    Activation, AttentionParams, Kernel, LogprobParams, Packing, Recorder,
    attention_tiled_fits, check_fits, check_packing, groups_2d,
};
use super::memory::GpuBuffer;
use super::recorder::Bind;
use super::tensor::Tensor;
use crate::error::{Error, Result};

pub use super::gemm::GemmParams;

// ---- typed parameters; the WGSL structs of the same name mirror them field by field ----

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct MatmulBackwardParams {
    pub t: u32,
    pub k: u32,
    pub n: u32,
    pub ldy: u32,
    pub dy_off: u32,
    pub w_row0: u32,
    pub accumulate: u32,
    /// `Tensor::group` of the weight.
    pub wgroup: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct NormBackwardParams {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub accumulate: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct AdamwParams {
    pub n: u32,
    /// 1 - lr * weight_decay
    pub decay: f32,
    /// 1 - beta1 (torch's lerp weight)
    pub w1: f32,
    pub beta2: f32,
    /// 1 - beta2
    pub w2: f32,
    /// lr / (1 - beta1^step)
    pub step_size: f32,
    /// sqrt(1 - beta2^step)
    pub bc2_sqrt: f32,
    pub eps: f32,
    pub grad_scale: f32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct SgdParams {
    pub n: u32,
    pub lr: f32,
    pub weight_decay: f32,
    pub grad_scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct SumSquaresParams {
    pub n: u32,
    pub index: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

// ---- argument checks ----

/// f32 elements a buffer holds.
fn len(b: &GpuBuffer) -> u64 {
    b.bytes / 4
}

/// `what` must hold at least `need` f32 elements.
pub(super) fn need(what: &str, b: &GpuBuffer, need: u64) -> Result<()> {
    if need > len(b) {
        return Err(Error::Invalid(format!(
            "{what}: needs {need} f32 elements, the buffer holds {}",
            len(b)
        )));
    }
    Ok(())
}

/// Every buffer in `outs` differs from every other buffer of the call.
pub(super) fn distinct_outputs(what: &str, outs: &[&GpuBuffer], all: &[&GpuBuffer]) -> Result<()> {
    for o in outs {
        if all.iter().filter(|b| std::ptr::eq(**b, *o)).count() > 1 {
            return Err(Error::Invalid(format!(
                "{what}: an output buffer is also passed as another argument"
            )));
        }
    }
    Ok(())
}

pub(super) fn fit_u32(what: &str, v: u64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid(format!("{what}: {v} does not fit in 32 bits")))
}

impl Recorder<'_> {
    pub(super) fn fits_all(&self, what: &str, bufs: &[&GpuBuffer]) -> Result<()> {
        for b in bufs {
            check_fits(self.gpu, what, b.bytes)?;
        }
        Ok(())
    }

    fn tiles(&self, what: &str, cols: usize, rows: usize) -> Result<(u32, u32)> {
        let (gx, gy) = (rows.div_ceil(16) as u64, cols.div_ceil(16) as u64);
        let max = self.gpu.limits.max_compute_workgroups_per_dimension as u64;
        if gx > max || gy > max {
            return Err(Error::Invalid(format!(
                "{what}: {rows}×{cols} needs {gy}×{gx} workgroups, above the device's {max} per dimension"
            )));
        }
        Ok((gx as u32, gy as u32))
    }

    /// Input gradient of `matmul`: dx[t, k] (+)= Σ_{j < rows.len()} dy[t*ldy + j] * W[rows.start + j, k]
    /// for k < w.cols. Sums over every weight piece that `rows` intersects; without `accumulate`
    /// the result is still the full sum (the first piece overwrites, the rest add, and an empty
    /// `rows` zeroes dx).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_backward_input(
        &mut self,
        dy: &GpuBuffer,
        t: usize,
        ldy: usize,
        w: &Tensor,
        rows: Range<usize>,
        dx: &GpuBuffer,
        accumulate: bool,
    ) -> Result<()> {
        let what = "matmul_backward_input";
        if rows.start > rows.end || rows.end > w.rows {
            return Err(Error::Invalid(format!(
                "{what}: rows {rows:?} of a {}-row weight",
                w.rows
            )));
        }
        if t > 1 && ldy < rows.len() {
            return Err(Error::Invalid(format!(
                "{what}: ldy {ldy} < {} rows",
                rows.len()
            )));
        }
        distinct_outputs(what, &[dx], &[dy, dx])?;
        self.fits_all(what, &[dy, dx])?;
        if t == 0 || w.cols == 0 {
            return Ok(());
        }
        need(
            "matmul_backward_input dy",
            dy,
            ((t - 1) * ldy + rows.len()) as u64,
        )?;
        need("matmul_backward_input dx", dx, (t * w.cols) as u64)?;
        let g = self.tiles(what, w.cols, t)?;
        use super::kernels::{MATMUL_K_ALIGN, MATMUL_SUMS_TILE_T, MATMUL_TILE_N, MATMUL_TILE_T};
        let tile_t = if super::quant::scales_factor_out(w.dtype) {
            MATMUL_SUMS_TILE_T
        } else {
            MATMUL_TILE_T
        };
        // Row tiles along x, as `matmul`'s.
        let g_blocked = (
            t.div_ceil(tile_t) as u32,
            w.cols.div_ceil(MATMUL_TILE_N) as u32,
        );
        let mut first = true;
        for piece in &w.pieces {
            let lo = rows.start.max(piece.row_start);
            let hi = rows.end.min(piece.row_start + piece.rows);
            if lo >= hi {
                continue;
            }
            // The register-blocked kernel reads dy a vec4 at a time: every dy row it reads
            // must start on 16 bytes and its last vec4 lie inside the buffer.
            let dy_off = lo - rows.start;
            let dy_end = ((t - 1) * ldy + dy_off + (hi - lo)).div_ceil(4) * 4;
            let blocked = w.cols.is_multiple_of(MATMUL_K_ALIGN)
                && (t == 1 || ldy.is_multiple_of(4))
                && dy_off.is_multiple_of(4)
                && (dy_end * 4) as u64 <= dy.bytes;
            let params = MatmulBackwardParams {
                t: t as u32,
                k: w.cols as u32,
                n: (hi - lo) as u32,
                ldy: ldy as u32,
                dy_off: (lo - rows.start) as u32,
                w_row0: (lo - piece.row_start + piece.buf_row0) as u32,
                accumulate: (accumulate || !first) as u32,
                wgroup: w.group as u32,
            };
            let bufs = [(1, Bind::Buf(&dy.buffer)), (2, piece.buf.bind()), (4, Bind::Buf(&dx.buffer))];
            if blocked {
                let k = Kernel::MatmulBackwardInput(w.dtype);
                self.dispatch_binds(k, &params, &bufs, g_blocked)?;
            } else {
                let k = Kernel::MatmulBackwardInputGeneral(w.dtype);
                self.dispatch_binds(k, &params, &bufs, g)?;
            }
            first = false;
        }
        if first && !accumulate {
            self.zero_range(dx, 0, (t * w.cols * 4) as u64);
        }
        Ok(())
    }

    /// RMSNorm backward with the weight frozen (y = x * rsqrt(mean(x²) + eps) * w):
    /// dx (+)= ∂L/∂x given dy, over `rows` rows of `d`.
    #[allow(clippy::too_many_arguments)]
    pub fn rmsnorm_backward(
        &mut self,
        x: &GpuBuffer,
        weight: &GpuBuffer,
        dy: &GpuBuffer,
        dx: &GpuBuffer,
        rows: usize,
        d: usize,
        eps: f32,
        accumulate: bool,
    ) -> Result<()> {
        let what = "rmsnorm_backward";
        distinct_outputs(what, &[dx], &[x, weight, dy, dx])?;
        self.fits_all(what, &[x, weight, dy, dx])?;
        if rows == 0 || d == 0 {
            return Ok(());
        }
        for (name, b, n) in [
            ("x", x, rows * d),
            ("weight", weight, d),
            ("dy", dy, rows * d),
            ("dx", dx, rows * d),
        ] {
            need(&format!("{what} {name}"), b, n as u64)?;
        }
        let params = NormBackwardParams {
            rows: rows as u32,
            d: d as u32,
            eps,
            accumulate: accumulate as u32,
        };
        let g = groups_2d(self.gpu, rows as u32);
        let bufs = [
            (1, &x.buffer),
            (2, &weight.buffer),
            (4, &dy.buffer),
            (5, &dx.buffer),
        ];
        self.dispatch_at(Kernel::RmsNormBackward, &params, &bufs, g)
    }

    /// Backward of up' = silu(gate) * up over n elements:
    /// dgate = da * up * silu'(gate), dup = da * silu(gate) (both overwritten).
    #[allow(clippy::too_many_arguments)]
    pub fn silu_mul_backward(
        &mut self,
        gate: &GpuBuffer,
        up: &GpuBuffer,
        da: &GpuBuffer,
        dgate: &GpuBuffer,
        dup: &GpuBuffer,
        n: usize,
    ) -> Result<()> {
        self.act_mul_backward(Activation::Silu, gate, up, da, dgate, dup, n)
    }

    /// The same for any gated activation: dgate = da * up * act'(gate), dup = da * act(gate).
    #[allow(clippy::too_many_arguments)]
    pub fn act_mul_backward(
        &mut self,
        act: Activation,
        gate: &GpuBuffer,
        up: &GpuBuffer,
        da: &GpuBuffer,
        dgate: &GpuBuffer,
        dup: &GpuBuffer,
        n: usize,
    ) -> Result<()> {
        let what = "silu_mul_backward";
        let all = [gate, up, da, dgate, dup];
        distinct_outputs(what, &[dgate, dup], &all)?;
        self.fits_all(what, &all)?;
        if n == 0 {
            return Ok(());
        }
        for (name, b) in [
            ("gate", gate),
            ("up", up),
            ("da", da),
            ("dgate", dgate),
            ("dup", dup),
        ] {
            need(&format!("{what} {name}"), b, n as u64)?;
        }
        let forms = [Kernel::SiluMulBackward, Kernel::SiluMulBackward4];
        let (kernel, params, g) = self.elementwise(forms, n, act, 1.0);
        let bufs = [
            (3, &gate.buffer),
            (4, &up.buffer),
            (5, &da.buffer),
            (6, &dgate.buffer),
            (7, &dup.buffer),
        ];
        self.dispatch_at(kernel, &params, &bufs, g)
    }

    /// Backward of causal GQA attention over a whole sequence (positions 0 .. t), or over a
    /// packed one (`packing`, see `kernels::Packing`), with the forward's sliding `window`
    /// (0: none; see `Recorder::attention`):
    /// q, dq [t, heads, hd]; k, v, dk, dv [t, kv_heads, hd]; out (the forward output), dout
    /// [t, heads, hd]; `stats` is scratch [t, heads, 2] (log-sum-exp and Σ dout·out).
    /// dq, dk, dv are overwritten. Two dispatches of one 64-thread workgroup per (query, head)
    /// and per (key, kv head), at most 7 storage buffers each.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        out: &GpuBuffer,
        dout: &GpuBuffer,
        dq: &GpuBuffer,
        dk: &GpuBuffer,
        dv: &GpuBuffer,
        stats: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        scale: f32,
        packing: Option<&Packing>,
        window: usize,
    ) -> Result<()> {
        let what = "attention_backward";
        if hd > 256 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(Error::Model(format!(
                "attention with head_dim {hd}, {heads} heads over {kv_heads} KV heads is not supported"
            )));
        }
        let all = [q, k, v, out, dout, dq, dk, dv, stats];
        distinct_outputs(what, &[dq, dk, dv, stats], &all)?;
        self.fits_all(what, &all)?;
        if t == 0 || heads == 0 || hd == 0 {
            return Ok(());
        }
        let (nq, nk) = ((t * heads * hd) as u64, (t * kv_heads * hd) as u64);
        for (name, b, n) in [
            ("q", q, nq),
            ("k", k, nk),
            ("v", v, nk),
            ("out", out, nq),
            ("dout", dout, nq),
            ("dq", dq, nq),
            ("dk", dk, nk),
            ("dv", dv, nk),
            ("stats", stats, (t * heads * 2) as u64),
        ] {
            need(&format!("{what} {name}"), b, n)?;
        }
        if packing.is_some_and(|pk| pk.decode) {
            return Err(Error::Invalid(format!("{what}: decoding has no backward pass")));
        }
        let (prefix, packed, spans) = check_packing(what, packing, t, q)?;
        let params = AttentionParams {
            t: t as u32,
            heads: heads as u32,
            kv_heads: kv_heads as u32,
            hd: hd as u32,
            p0: 0,
            scale,
            prefix,
            packed,
            window: super::attention::window_u32(window, t)?,
            _pad: [0; 3],
        };
        let tiled = !self.general_attention && attention_tiled_fits(hd, t, heads / kv_heads);
        // Tiled: a workgroup per 64 queries (keys) of a head; else per query (key) and head.
        let rows = |n: usize| if tiled { t.div_ceil(64) * n } else { t * n };
        // head_dim 128 / 256 on a CPU device: the per-row workgroups, 8 threads each.
        let cpu = self.gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
        let lanes = !tiled && !self.general_attention && cpu && matches!(hd, 128 | 256);
        let (kq, kkv) = if tiled {
            (Kernel::AttentionTiledBackwardQ, Kernel::AttentionTiledBackwardKv)
        } else if lanes {
            (Kernel::AttentionLanesBackwardQ(hd as u16), Kernel::AttentionLanesBackwardKv(hd as u16))
        } else {
            (Kernel::AttentionBackwardQ, Kernel::AttentionBackwardKv)
        };
        let g = groups_2d(self.gpu, rows(heads) as u32);
        let bufs = [
            (1, &q.buffer),
            (2, &k.buffer),
            (3, &v.buffer),
            (5, &out.buffer),
            (6, &dout.buffer),
            (7, &dq.buffer),
            (8, &stats.buffer),
            (11, spans),
        ];
        self.dispatch_at(kq, &params, &bufs, g)?;
        let g = groups_2d(self.gpu, rows(kv_heads) as u32);
        let bufs = [
            (1, &q.buffer),
            (2, &k.buffer),
            (3, &v.buffer),
            (6, &dout.buffer),
            (8, &stats.buffer),
            (9, &dk.buffer),
            (10, &dv.buffer),
            (11, spans),
        ];
        self.dispatch_at(kkv, &params, &bufs, g)
    }

    /// Gradient of the per-row objective a_t * lp_t + b_t * H_t w.r.t. one chunk of raw logits,
    /// written in place over `logits` [t, c] (vocabulary ids v0 .. v0+c). With z = logit * inv_temp
    /// and the finished `lse_chunk` state [t, 4]: lse = m + ln s, p_j = exp(z_j - lse),
    /// lp = z_target - lse, H = lse - E_p[z] (E_p[z] = w / s):
    /// g_j = inv_temp * (a (δ(v0 + j == target) - p_j) - b p_j (z_j - lse + H)).
    /// `coefs` is [t, 2] = (a_t, b_t); rows whose target is 0xffffffff get only the b term.
    #[allow(clippy::too_many_arguments)]
    pub fn logprob_grad_chunk(
        &mut self,
        logits: &GpuBuffer,
        targets: &GpuBuffer,
        state: &GpuBuffer,
        coefs: &GpuBuffer,
        t: usize,
        c: usize,
        v0: usize,
        inv_temp: f32,
    ) -> Result<()> {
        let what = "logprob_grad_chunk";
        let all = [logits, targets, state, coefs];
        distinct_outputs(what, &[logits], &all)?;
        self.fits_all(what, &all)?;
        if t == 0 || c == 0 {
            return Ok(());
        }
        for (name, b, n) in [
            ("logits", logits, t * c),
            ("targets", targets, t),
            ("state", state, t * 4),
            ("coefs", coefs, t * 2),
        ] {
            need(&format!("{what} {name}"), b, n as u64)?;
        }
        let params = LogprobParams {
            t: t as u32,
            c: c as u32,
            v0: fit_u32(what, v0 as u64)?,
            inv_temp,
        };
        let g = groups_2d(self.gpu, fit_u32(what, (t * c) as u64)?.div_ceil(256));
        let bufs = [
            (2, &targets.buffer),
            (3, &state.buffer),
            (4, &logits.buffer),
            (5, &coefs.buffer),
        ];
        self.dispatch_at(Kernel::LogprobGrad, &params, &bufs, g)
    }

    /// AdamW as torch.optim.AdamW (decoupled weight decay, bias-corrected) on n parameters,
    /// `step` counting from 1: g = grad * grad_scale; p *= 1 - lr*weight_decay;
    /// m = b1 m + (1-b1) g (torch's lerp); v = b2 v + (1-b2) g²;
    /// p -= lr/(1-b1^step) * m / (sqrt(v)/sqrt(1-b2^step) + eps).
    #[allow(clippy::too_many_arguments)]
    pub fn adamw(
        &mut self,
        param: &GpuBuffer,
        grad: &GpuBuffer,
        m: &GpuBuffer,
        v: &GpuBuffer,
        n: usize,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        step: u32,
        grad_scale: f32,
    ) -> Result<()> {
        let what = "adamw";
        if step == 0 {
            return Err(Error::Invalid("adamw: step counts from 1".into()));
        }
        let all = [param, grad, m, v];
        distinct_outputs(what, &[param, m, v], &all)?;
        self.fits_all(what, &all)?;
        if n == 0 {
            return Ok(());
        }
        for (name, b) in [("param", param), ("grad", grad), ("m", m), ("v", v)] {
            need(&format!("{what} {name}"), b, n as u64)?;
        }
        // The step's scalars in f64, as Python computes them for torch.
        let (lr, b1, b2, wd) = (lr as f64, beta1 as f64, beta2 as f64, weight_decay as f64);
        let bc1 = 1.0 - b1.powi(step as i32);
        let bc2 = 1.0 - b2.powi(step as i32);
        let params = AdamwParams {
            n: n as u32,
            decay: (1.0 - lr * wd) as f32,
            w1: (1.0 - b1) as f32,
            beta2,
            w2: (1.0 - b2) as f32,
            step_size: (lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps,
            grad_scale,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        };
        let g = groups_2d(self.gpu, (n as u32).div_ceil(256));
        let bufs = [
            (1, &param.buffer),
            (2, &grad.buffer),
            (3, &m.buffer),
            (4, &v.buffer),
        ];
        self.dispatch_at(Kernel::AdamW, &params, &bufs, g)
    }

    /// SGD as torch.optim.SGD without momentum: p -= lr * (grad * grad_scale + weight_decay * p).
    pub fn sgd(
        &mut self,
        param: &GpuBuffer,
        grad: &GpuBuffer,
        n: usize,
        lr: f32,
        weight_decay: f32,
        grad_scale: f32,
    ) -> Result<()> {
        let what = "sgd";
        distinct_outputs(what, &[param], &[param, grad])?;
        self.fits_all(what, &[param, grad])?;
        if n == 0 {
            return Ok(());
        }
        need("sgd param", param, n as u64)?;
        need("sgd grad", grad, n as u64)?;
        let params = SgdParams {
            n: n as u32,
            lr,
            weight_decay,
            grad_scale,
        };
        let g = groups_2d(self.gpu, (n as u32).div_ceil(256));
        self.dispatch_at(
            Kernel::Sgd,
            &params,
            &[(1, &param.buffer), (2, &grad.buffer)],
            g,
        )
    }

    /// out[index] = Σ x[i]² over i < n, one f32 (sum the slots on the CPU for a global norm).
    pub fn sum_squares(
        &mut self,
        x: &GpuBuffer,
        n: usize,
        out: &GpuBuffer,
        index: usize,
    ) -> Result<()> {
        let what = "sum_squares";
        distinct_outputs(what, &[out], &[x, out])?;
        self.fits_all(what, &[x, out])?;
        need("sum_squares x", x, n as u64)?;
        need("sum_squares out", out, index as u64 + 1)?;
        let params = SumSquaresParams {
            n: n as u32,
            index: index as u32,
            _pad0: 0,
            _pad1: 0,
        };
        self.dispatch_at(
            Kernel::SumSquares,
            &params,
            &[(5, &x.buffer), (6, &out.buffer)],
            (1, 1),
        )
    }
}
