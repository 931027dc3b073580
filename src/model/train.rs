//! Training passes over a packed sequence (a prompt and its completions, `pack::Pack`): a
//! forward pass that keeps each layer's input (gradient checkpointing), log-probs and entropies
//! of the completion rows, and the backward pass that recomputes one layer at a time and
//! accumulates the LoRA gradients.

use crate::error::{Error, Result};
use crate::gpu::rows::{gather_index, scatter_index};
use crate::gpu::{Gpu, GpuBuffer, Packing, Recorder, Tensor};
use super::adapter::{Lora, LoraModule, Target};

use super::forward::Model;
use super::layer::{Kv, Scratch, adapter};
use super::pack::Pack;

/// What the backward pass needs from the forward pass of one packed sequence.
pub struct Saved {
    pub t: usize,
    /// The pack's spans on the GPU.
    pub spans: GpuBuffer,
    /// The residual stream entering each layer, and (last) entering the final norm.
    pub inputs: Vec<GpuBuffer>,
    /// Final-normed hidden states [t, hidden].
    pub hidden: GpuBuffer,
    /// Every layer's activations, when kept instead of recomputed (no checkpointing).
    pub layers: Option<Vec<Scratch>>,
}

/// Log-probs and entropies of a pack's completion tokens (`Pack::rows` of the hidden states).
pub struct RowLogprobs {
    pub rows: usize,
    /// The rows' hidden states, copied out [rows, hidden].
    pub h: GpuBuffer,
    pub targets: GpuBuffer,
    /// Finished log-softmax state [rows, 4]: m, s, target z, Σ e^(z−m)·z.
    pub state: GpuBuffer,
    pub lp: Vec<f32>,
    pub entropy: Vec<f32>,
}

/// y = x Wᵀ (+ LoRA) backward: dx (+)= dy W (+ du A), and the adapter's gradients; `u` is
/// the forward pass's x Aᵀ (`Scratch::u`).
#[allow(clippy::too_many_arguments)]
fn project_backward(
    r: &mut Recorder,
    x: &GpuBuffer,
    t: usize,
    w: &Tensor,
    lora: Option<(&LoraModule, usize, f32)>,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
    accumulate: bool,
    u: &GpuBuffer,
    du: &GpuBuffer,
) -> Result<()> {
    r.matmul_backward_input(dy, t, w.rows, w, 0..w.rows, dx, accumulate)?;
    if let Some((m, rank, scale)) = lora {
        let (din, dout) = (m.d_in, m.d_out);
        r.gemm(
            dy, 0, 1, dout, u, 0, rank, 1, &m.grad_b, 0, rank, dout, rank, t, scale, true,
        )?; // gB += s dyᵀ u
        r.gemm(
            dy, 0, dout, 1, &m.b, 0, rank, 1, du, 0, rank, t, rank, dout, scale, false,
        )?; // du = s dy B
        r.gemm(
            du, 0, 1, rank, x, 0, din, 1, &m.grad_a, 0, din, rank, din, t, 1.0, true,
        )?; // gA += duᵀ x
        r.gemm(
            du, 0, rank, 1, &m.a, 0, din, 1, dx, 0, din, t, din, rank, 1.0, true,
        )?; // dx += du A
    }
    Ok(())
}

impl Model {
    /// Forward over a packed sequence, keeping every layer's input, and with
    /// `keep_activations` every layer's intermediate activations too (no recompute later).
    pub fn forward_saving(
        &self,
        gpu: &Gpu,
        pack: &Pack,
        lora: Option<&Lora>,
        keep_activations: bool,
    ) -> Result<Saved> {
        self.forward_saving_with_images(gpu, pack, None, lora, keep_activations)
    }

    /// [`Model::forward_saving`] with the features of the prompt's image tokens (a
    /// vision-language model's group). The tower is frozen: no gradient flows into them, and
    /// the backward pass starts from the saved layer inputs, so it needs no images.
    pub fn forward_saving_with_images(
        &self,
        gpu: &Gpu,
        pack: &Pack,
        images: Option<&GpuBuffer>,
        lora: Option<&Lora>,
        keep_activations: bool,
    ) -> Result<Saved> {
        let c = &self.cfg;
        let (t, ids) = (pack.len(), &pack.ids);
        let (x, ropes) = self.embed_tokens_at(gpu, ids, &pack.positions)?;
        let spans = gpu.upload(bytemuck::cast_slice(&pack.spans), "packed spans")?;
        let packing = Packing {
            prefix: pack.prefix,
            spans: &spans,
            decode: false,
            host_spans: None,
        };
        let rank = lora.map_or(1, |l| l.cfg.r);
        let shared = if keep_activations {
            None
        } else {
            Some(Scratch::new(gpu, c, t, rank)?)
        };
        let mut kept = Vec::new();
        let bytes = (t * c.hidden_size * 4) as u64;
        let mut inputs = Vec::with_capacity(self.layers.len() + 1);
        let mut r = Recorder::new(gpu);
        self.record_embed(&mut r, ids, &x, images.map(|f| (f, pack.prefix)))?;
        for li in 0..self.layers.len() {
            let keep = gpu.alloc(bytes, "saved layer input")?;
            r.copy(&x, 0, &keep, 0, bytes);
            inputs.push(keep);
            let s = match &shared {
                Some(s) => s,
                None => {
                    kept.push(Scratch::new(gpu, c, t, rank)?);
                    &kept[li]
                }
            };
            self.record_layer(&mut r, li, &x, s, lora, &ropes, Kv::Packed(&packing))?;
        }
        let hidden = gpu.alloc(bytes, "final hidden")?;
        r.rmsnorm(&x, &self.norm, &hidden, t, c.hidden_size, c.rms_norm_eps)?;
        r.submit()?;
        inputs.push(x);
        Ok(Saved {
            t,
            spans,
            inputs,
            hidden,
            layers: if keep_activations { Some(kept) } else { None },
        })
    }

    /// Log-probs of the pack's completion tokens, logits divided by `temperature`, with the
    /// full-vocabulary entropy of each row that predicts one.
    pub fn row_logprobs(
        &self,
        gpu: &Gpu,
        hidden: &GpuBuffer,
        pack: &Pack,
        temperature: f32,
    ) -> Result<RowLogprobs> {
        let (rows, targets) = (pack.rows.len(), &pack.targets);
        let hsz = self.cfg.hidden_size;
        if rows == 0 {
            return Err(Error::Invalid("training on completions without tokens".into()));
        }
        let h = gpu.alloc((rows * hsz * 4) as u64, "completion rows")?;
        let index = gpu.upload(bytemuck::cast_slice(&gather_index(&pack.rows)), "row index")?;
        let mut r = Recorder::new(gpu);
        r.gather_rows(hidden, &index, &h, rows, hsz)?;
        r.submit()?;
        let tg = gpu.upload(bytemuck::cast_slice(targets), "targets")?;
        let state = self.logsoftmax_state(gpu, &h, rows, &tg, 1.0 / temperature)?;
        let st = gpu.read_f32(&state, rows * 4)?;
        let mut lp = Vec::with_capacity(rows);
        let mut entropy = Vec::with_capacity(rows);
        for i in 0..rows {
            let (m, s, z, w) = (st[i * 4], st[i * 4 + 1], st[i * 4 + 2], st[i * 4 + 3]);
            let lse = m + s.ln();
            lp.push(z - lse);
            entropy.push(lse - w / s);
        }
        Ok(RowLogprobs {
            rows,
            h,
            targets: tg,
            state,
            lp,
            entropy,
        })
    }

    /// Backward pass of  Σ_t a_t·lp_t + b_t·H_t  over the completion tokens of a pack; adds
    /// the gradients of every adapter tensor into `lora`'s gradient buffers.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        gpu: &Gpu,
        pack: &Pack,
        saved: &Saved,
        rows: &RowLogprobs,
        coefs: &[(f32, f32)],
        temperature: f32,
        lora: &Lora,
    ) -> Result<()> {
        let c = &self.cfg;
        let t = saved.t;
        let (h, hd, nh, nkv, inter) = (
            c.hidden_size,
            c.head_dim,
            c.num_heads,
            c.num_kv_heads,
            c.intermediate_size,
        );
        let (qd, kvd) = (nh * hd, nkv * hd);
        if coefs.len() != rows.rows || pack.len() != t || pack.rows.len() != rows.rows {
            return Err(Error::Invalid(
                "backward: coefficients do not match the rows".into(),
            ));
        }
        let f = |n: usize| (n * 4) as u64;
        let eps = c.rms_norm_eps;

        // 1. Through the vocabulary, chunk by chunk: d hidden of the completion rows.
        let n = rows.rows;
        let flat: Vec<f32> = coefs.iter().flat_map(|&(a, b)| [a, b]).collect();
        let coef_buf = gpu.upload(bytemuck::cast_slice(&flat), "loss coefficients")?;
        let dh_rows = gpu.alloc(f(n * h), "d completion rows")?;
        let cols = self.chunk_cols(gpu, n);
        let chunk = gpu.alloc(f(n * cols), "logits chunk")?;
        let out = self.output();
        let mut r = Recorder::new(gpu);
        let mut v0 = 0;
        while v0 < c.vocab_size {
            let w = cols.min(c.vocab_size - v0);
            r.matmul(&rows.h, n, out, v0..v0 + w, None, &chunk, w, 0, false)?;
            r.logprob_grad_chunk(
                &chunk,
                &rows.targets,
                &rows.state,
                &coef_buf,
                n,
                w,
                v0,
                1.0 / temperature,
            )?;
            r.matmul_backward_input(&chunk, n, w, out, v0..v0 + w, &dh_rows, v0 > 0)?;
            v0 += w;
        }
        // 2. Final norm.
        let dh_all = gpu.alloc(f(t * h), "d final hidden")?;
        let dres = gpu.alloc(f(t * h), "d residual")?;
        let index = gpu.upload(
            bytemuck::cast_slice(&scatter_index(&pack.rows, t)?),
            "row index",
        )?;
        r.gather_rows(&dh_rows, &index, &dh_all, t, h)?;
        r.rmsnorm_backward(
            &saved.inputs[self.layers.len()],
            &self.norm,
            &dh_all,
            &dres,
            t,
            h,
            eps,
            false,
        )?;
        r.submit()?;
        drop((dh_rows, chunk, dh_all));

        // 3. Layers in reverse: recompute the layer from its saved input, then its backward.
        let rank = lora.cfg.r;
        let shared = if saved.layers.is_none() {
            Some(Scratch::new(gpu, c, t, rank)?)
        } else {
            None
        };
        let (_, ropes) = self.embed_tokens_at(gpu, &pack.ids, &pack.positions)?;
        let inverse = self.ropes(gpu, &pack.positions, true)?;
        let packing = Packing {
            prefix: pack.prefix,
            spans: &saved.spans,
            decode: false,
            host_spans: None,
        };
        let xw = gpu.alloc(f(t * h), "recomputed residual")?;
        let da = gpu.alloc(f(t * inter), "d activation")?;
        let dgate = gpu.alloc(f(t * inter), "d gate")?;
        let dup = gpu.alloc(f(t * inter), "d up")?;
        let dh = gpu.alloc(f(t * h), "d normed")?;
        let datt = gpu.alloc(f(t * qd), "d attention out")?;
        let dq = gpu.alloc(f(t * qd), "d q")?;
        let dk = gpu.alloc(f(t * kvd), "d k")?;
        let dv = gpu.alloc(f(t * kvd), "d v")?;
        let (dq_pre, dk_pre) = if c.qk_norm() {
            (
                Some(gpu.alloc(f(t * qd), "d q before norm")?),
                Some(gpu.alloc(f(t * kvd), "d k before norm")?),
            )
        } else {
            (None, None)
        };
        let stats = gpu.alloc(f(t * nh * 2), "attention stats")?;
        let du = gpu.alloc(f(t * rank), "d lora u")?;
        for li in (0..self.layers.len()).rev() {
            let l = &self.layers[li];
            let a = |target| adapter(Some(lora), li, target);
            let mut r = Recorder::new(gpu);
            let s = match (&saved.layers, &shared) {
                (Some(kept), _) => &kept[li],
                (None, Some(s)) => {
                    r.copy(&saved.inputs[li], 0, &xw, 0, f(t * h));
                    self.record_layer(&mut r, li, &xw, s, Some(lora), &ropes, Kv::Packed(&packing))?;
                    s
                }
                (None, None) => {
                    return Err(Error::Invalid(
                        "backward: no activations and no scratch".into(),
                    ));
                }
            };
            // Through a block's output norm (Gemma) into `dh`, free until the block's input
            // projections write it.
            let d_block = |r: &mut Recorder, norm: &Option<GpuBuffer>, out: &Option<GpuBuffer>| {
                match (norm, out) {
                    (Some(w), Some(o)) => {
                        r.rmsnorm_backward(o, w, &dres, &dh, t, h, eps, false)?;
                        Ok::<_, Error>(&dh)
                    }
                    _ => Ok(&dres),
                }
            };
            // MLP: x3 = x2 + [norm](down(act(gate(h2)) * up(h2))), h2 = norm(x2).
            let d_down = d_block(&mut r, &l.post_mlp_norm, &s.down)?;
            project_backward(
                &mut r,
                &s.act,
                t,
                &l.down,
                a(Target::Down),
                d_down,
                &da,
                false,
                s.u(Target::Down),
                &du,
            )?;
            r.act_mul_backward(c.hidden_act, &s.gate, &s.up, &da, &dgate, &dup, t * inter)?;
            project_backward(
                &mut r,
                &s.h2,
                t,
                &l.gate,
                a(Target::Gate),
                &dgate,
                &dh,
                false,
                s.u(Target::Gate),
                &du,
            )?;
            project_backward(
                &mut r,
                &s.h2,
                t,
                &l.up,
                a(Target::Up),
                &dup,
                &dh,
                true,
                s.u(Target::Up),
                &du,
            )?;
            r.rmsnorm_backward(&s.x2, &l.mlp_norm, &dh, &dres, t, h, eps, true)?;
            // Attention: x2 = x + [norm](o(attn(rope(q(h1)), rope(k(h1)), v(h1)))), h1 = norm(x).
            let d_o = d_block(&mut r, &l.post_attn_norm, &s.o)?;
            project_backward(
                &mut r,
                &s.att,
                t,
                &l.o,
                a(Target::O),
                d_o,
                &datt,
                false,
                s.u(Target::O),
                &du,
            )?;
            r.attention_backward(
                s.q_roped(),
                s.k_roped(),
                &s.v,
                &s.att,
                &datt,
                &dq,
                &dk,
                &dv,
                &stats,
                t,
                nh,
                nkv,
                hd,
                c.attn_scale(),
                Some(&packing),
                c.window(li),
            )?;
            r.rope(&dq, inverse.layer(c, li), t, nh, hd)?;
            r.rope(&dk, inverse.layer(c, li), t, nkv, hd)?;
            let (dqp, dkp) = match (&l.q_norm, &l.k_norm, &dq_pre, &dk_pre) {
                (Some(wq), Some(wk), Some(dqp), Some(dkp)) => {
                    r.rmsnorm_backward(&s.q, wq, &dq, dqp, t * nh, hd, eps, false)?;
                    r.rmsnorm_backward(&s.k, wk, &dk, dkp, t * nkv, hd, eps, false)?;
                    (dqp, dkp)
                }
                _ => (&dq, &dk),
            };
            project_backward(
                &mut r,
                &s.h1,
                t,
                &l.q,
                a(Target::Q),
                dqp,
                &dh,
                false,
                s.u(Target::Q),
                &du,
            )?;
            project_backward(&mut r, &s.h1, t, &l.k, a(Target::K), dkp, &dh, true, s.u(Target::K), &du)?;
            project_backward(&mut r, &s.h1, t, &l.v, a(Target::V), &dv, &dh, true, s.u(Target::V), &du)?;
            r.rmsnorm_backward(&saved.inputs[li], &l.attn_norm, &dh, &dres, t, h, eps, true)?;
            r.submit()?;
        }
        Ok(())
    }
}
