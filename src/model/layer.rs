//! One decoder layer recorded on the GPU, shared by inference (KV cache) and training
//! (recomputed in the backward pass). The residual stream `x` is updated in place.

use crate::error::Result;
use crate::gpu::kernels::KvRows;
use crate::gpu::{Gpu, GpuBuffer, LoraTerm, Packing, Recorder, Tensor};
use super::adapter::{Lora, LoraModule, LoraStack, Target};

use super::config::ModelConfig;
use super::forward::{Model, Ropes, Stacked};

/// Intermediate activations of one layer over `t` tokens. After `record_layer` they hold what
/// the backward pass needs: normed inputs, q/k after rope, v, attention output, the residual
/// after attention, gate and up before the activation, and the activation itself (and for
/// Gemma's sandwich norms, each block's output before its norm).
pub struct Scratch {
    pub t: usize,
    pub h1: GpuBuffer,
    pub q: GpuBuffer,
    pub k: GpuBuffer,
    pub v: GpuBuffer,
    /// Qwen3, Gemma 3: q and k after their per-head RMSNorm (then rope is applied here, not
    /// on q/k).
    pub qn: Option<GpuBuffer>,
    pub kn: Option<GpuBuffer>,
    /// Gemma 3: o_proj's and down_proj's outputs before their norms, [t, hidden] each, and
    /// the normed one on its way into the residual.
    pub o: Option<GpuBuffer>,
    pub down: Option<GpuBuffer>,
    pub normed: Option<GpuBuffer>,
    pub att: GpuBuffer,
    pub x2: GpuBuffer,
    pub h2: GpuBuffer,
    pub gate: GpuBuffer,
    pub up: GpuBuffer,
    pub act: GpuBuffer,
    /// x·Aᵀ of each projection's adapter, [t, r], indexed by `Target` (the backward pass
    /// reads them instead of computing them again).
    pub lora_u: Vec<GpuBuffer>,
}

impl Scratch {
    pub fn new(gpu: &Gpu, c: &ModelConfig, t: usize, lora_r: usize) -> Result<Scratch> {
        let f = |n: usize| (n * 4) as u64;
        let (h, qd, kvd, i) = (
            c.hidden_size,
            c.num_heads * c.head_dim,
            c.num_kv_heads * c.head_dim,
            c.intermediate_size,
        );
        let opt = |on: bool, n: usize, what: &str| -> Result<Option<GpuBuffer>> {
            on.then(|| gpu.alloc(f(n), what)).transpose()
        };
        let sandwich = c.sandwich_norms();
        Ok(Scratch {
            t,
            h1: gpu.alloc(f(t * h), "normed input")?,
            q: gpu.alloc(f(t * qd), "q")?,
            k: gpu.alloc(f(t * kvd), "k")?,
            v: gpu.alloc(f(t * kvd), "v")?,
            qn: opt(c.qk_norm(), t * qd, "q normed")?,
            kn: opt(c.qk_norm(), t * kvd, "k normed")?,
            o: opt(sandwich, t * h, "attention block out")?,
            down: opt(sandwich, t * h, "mlp out")?,
            normed: opt(sandwich, t * h, "normed block out")?,
            att: gpu.alloc(f(t * qd), "attention out")?,
            x2: gpu.alloc(f(t * h), "residual after attention")?,
            h2: gpu.alloc(f(t * h), "normed mlp input")?,
            gate: gpu.alloc(f(t * i), "gate")?,
            up: gpu.alloc(f(t * i), "up")?,
            act: gpu.alloc(f(t * i), "mlp activation")?,
            lora_u: Target::ALL
                .iter()
                .map(|_| gpu.alloc(f(t * lora_r.max(1)), "lora x·Aᵀ"))
                .collect::<Result<_>>()?,
        })
    }

    /// Every buffer with its row width in floats (`lora_r`: the width of the x·Aᵀ rows), in
    /// one order for any two scratches of a model: copying rows between scratches copies all
    /// a layer's activations.
    pub fn row_buffers(&self, c: &ModelConfig, lora_r: usize) -> Vec<(&GpuBuffer, usize)> {
        let (h, qd, kvd, i) = (c.hidden_size, c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.intermediate_size);
        let mut out = vec![(&self.h1, h), (&self.q, qd), (&self.k, kvd), (&self.v, kvd)];
        let optional = [(&self.qn, qd), (&self.kn, kvd), (&self.o, h), (&self.down, h), (&self.normed, h)];
        out.extend(optional.into_iter().filter_map(|(b, w)| b.as_ref().map(|b| (b, w))));
        out.extend([(&self.att, qd), (&self.x2, h), (&self.h2, h), (&self.gate, i), (&self.up, i), (&self.act, i)]);
        out.extend(self.lora_u.iter().map(|u| (u, lora_r.max(1))));
        out
    }

    /// x·Aᵀ of `target`'s adapter.
    pub fn u(&self, target: Target) -> &GpuBuffer {
        &self.lora_u[target as usize]
    }

    /// q and k as attention sees them (after the q/k norms and rope).
    pub fn q_roped(&self) -> &GpuBuffer {
        self.qn.as_ref().unwrap_or(&self.q)
    }
    pub fn k_roped(&self) -> &GpuBuffer {
        self.kn.as_ref().unwrap_or(&self.k)
    }
}

/// Where a layer's keys and values go: a KV cache at position `p0`, or (training, a packed
/// sequence) nowhere but the scratch itself.
pub enum Kv<'a> {
    Cache {
        k: &'a GpuBuffer,
        v: &'a GpuBuffer,
        p0: usize,
    },
    Packed(&'a Packing<'a>),
    /// Batched decoding: row i's key and value go to cache slot `slots[i]`, and `packing`
    /// (decode) says which slots each row sees. `keep`: the scratch ends up holding what the
    /// backward pass reads, as a packed pass leaves it (a rollout kept for training).
    Slots {
        k: &'a GpuBuffer,
        v: &'a GpuBuffer,
        slots: &'a [usize],
        packing: &'a Packing<'a>,
        keep: bool,
    },
}

/// The adapter of one projection, with its scale.
pub fn adapter(lora: Option<&Lora>, layer: usize, t: Target) -> Option<(&LoraModule, usize, f32)> {
    let l = lora?;
    l.module(layer, t).map(|m| (m, l.cfg.r, l.cfg.scale()))
}

/// y (+)= x Wᵀ + bias + scale · (x Aᵀ) Bᵀ.
#[allow(clippy::too_many_arguments)]
pub fn project(
    r: &mut Recorder,
    x: &GpuBuffer,
    t: usize,
    w: &Tensor,
    bias: Option<&GpuBuffer>,
    lora: Option<(&LoraModule, usize, f32)>,
    u: &GpuBuffer,
    y: &GpuBuffer,
    accumulate: bool,
) -> Result<()> {
    let Some((m, rank, scale)) = lora else {
        return r.linear(x, t, w, bias, y, accumulate);
    };
    // u = x Aᵀ first: the frozen product adds scale · u Bᵀ as it stores y.
    r.gemm(
        x, 0, m.d_in, 1, &m.a, 0, 1, m.d_in, u, 0, rank, t, rank, m.d_in, 1.0, false,
    )?;
    let term = LoraTerm::single(u, &m.b, rank, scale);
    r.linear_lora(x, t, w, bias, term, y, accumulate)
}

/// Layer `li`'s adapter stack, current, where the adapter has one and `n` adapters' x·Aᵀ rows
/// fit in `s.act` (the MLP's width).
fn stack_room<'l>(r: &Recorder, lora: Option<&'l Lora>, li: usize, n: usize, c: &ModelConfig) -> Result<Option<(&'l Lora, &'l LoraStack)>> {
    match lora.filter(|l| n * l.cfg.r <= c.intermediate_size) {
        Some(l) => Ok(l.stack(r.gpu, c, li)?.map(|room| (l, room))),
        None => Ok(None),
    }
}

impl Model {
    /// Records layer `li` over `s.t` tokens (`ropes`: the rope tables of their positions).
    #[allow(clippy::too_many_arguments)]
    pub fn record_layer(
        &self,
        r: &mut Recorder,
        li: usize,
        x: &GpuBuffer,
        s: &Scratch,
        lora: Option<&Lora>,
        ropes: &Ropes,
        kv: Kv,
    ) -> Result<()> {
        let c = &self.cfg;
        let l = &self.layers[li];
        let t = s.t;
        let (h, hd, nh, nkv) = (c.hidden_size, c.head_dim, c.num_heads, c.num_kv_heads);
        let a = |target| adapter(lora, li, target);
        let cs = ropes.layer(c, li);
        r.rmsnorm(x, &l.attn_norm, &s.h1, t, h, c.rms_norm_eps)?;
        // Only training (a packed sequence, recomputed for the backward pass) keeps the residual
        // after attention and the MLP's up projection apart from their successors.
        let keep_for_backward = matches!(kv, Kv::Packed(_) | Kv::Slots { keep: true, .. });
        // Inference ropes q and k and stores k and v into the cache in one dispatch.
        let fused = !keep_for_backward && hd % 2 == 0;
        // And where q, k and v are stacked, one product computes them, into `gate` (free until
        // the MLP; `ModelConfig::stacks_qkv`), and `rope_qkv` reads it; their adapters' terms
        // too, through the adapter's stack (`LoraStack`).
        let no_adapter = [Target::Q, Target::K, Target::V].iter().all(|&tg| a(tg).is_none());
        let room = if no_adapter { None } else { stack_room(r, lora, li, 3, c)? };
        let stacked = l.qkv.as_ref().filter(|_| fused && (no_adapter || room.is_some()));
        if let Some(st) = stacked {
            match room.filter(|_| !no_adapter) {
                Some((lora, room)) => self.project_qkv_stacked(r, s, st, lora, room)?,
                None => r.linear(&s.h1, t, &st.w, st.bias.as_ref(), &s.gate, false)?,
            }
        } else {
            self.project_qkv(r, li, s, lora)?;
        }
        if let (Some(wq), Some(wk), Some(qn), Some(kn)) = (&l.q_norm, &l.k_norm, &s.qn, &s.kn) {
            r.rmsnorm(&s.q, wq, qn, t * nh, hd, c.rms_norm_eps)?;
            r.rmsnorm(&s.k, wk, kn, t * nkv, hd, c.rms_norm_eps)?;
        }
        let (qh, kh) = (s.q_roped(), s.k_roped());
        let (scale, window) = (c.attn_scale(), c.window(li));
        if !fused {
            r.rope(qh, cs, t, nh, hd)?;
            r.rope(kh, cs, t, nkv, hd)?;
        }
        // q and k roped, k and v into the cache at `rows`.
        let rope_kv = |r: &mut Recorder, k: &GpuBuffer, v: &GpuBuffer, rows: KvRows| match stacked {
            Some(_) => r.rope_qkv(&s.gate, &s.q, cs, k, v, t, nh, nkv, hd, rows),
            None => r.rope_kv(qh, kh, &s.v, cs, k, v, t, nh, nkv, hd, rows),
        };
        match kv {
            Kv::Cache { k, v, p0 } => {
                if fused {
                    rope_kv(r, k, v, KvRows::At(p0))?;
                } else {
                    let row = (nkv * hd * 4) as u64;
                    r.copy(kh, 0, k, p0 as u64 * row, t as u64 * row);
                    r.copy(&s.v, 0, v, p0 as u64 * row, t as u64 * row);
                }
                r.attention(qh, k, v, &s.att, t, nh, nkv, hd, p0, scale, window)?;
            }
            Kv::Slots {
                k,
                v,
                slots,
                packing,
                ..
            } => {
                if fused {
                    let max_slot = slots.iter().copied().max().unwrap_or(0);
                    rope_kv(r, k, v, KvRows::Slots { spans: packing.spans, max_slot })?;
                } else {
                    let row = (nkv * hd * 4) as u64;
                    for (i, &slot) in slots.iter().enumerate() {
                        r.copy(kh, i as u64 * row, k, slot as u64 * row, row);
                        r.copy(&s.v, i as u64 * row, v, slot as u64 * row, row);
                    }
                }
                r.attention_packed(qh, k, v, &s.att, t, nh, nkv, hd, scale, packing, window)?
            }
            Kv::Packed(pk) => {
                r.attention_packed(qh, kh, &s.v, &s.att, t, nh, nkv, hd, scale, pk, window)?
            }
        }
        let o = (l.o_bias.as_ref(), a(Target::O), s.u(Target::O));
        self.block_out(r, &s.att, t, &l.o, o, l.post_attn_norm.as_ref(), &s.o, s, x)?;
        if keep_for_backward {
            r.copy(x, 0, &s.x2, 0, (t * h * 4) as u64);
        }
        r.rmsnorm(x, &l.mlp_norm, &s.h2, t, h, c.rms_norm_eps)?;
        let act = self.mlp_act(r, li, s, lora, keep_for_backward)?;
        let down = (l.down_bias.as_ref(), a(Target::Down), s.u(Target::Down));
        self.block_out(r, act, t, &l.down, down, l.post_mlp_norm.as_ref(), &s.down, s, x)
    }

    /// act(gate) · up of layer `li`'s MLP from `s.h2`, and where it landed. Training keeps
    /// gate, up and the activation apart for the backward pass (`keep`).
    fn mlp_act<'s>(&self, r: &mut Recorder, li: usize, s: &'s Scratch, lora: Option<&Lora>, keep: bool) -> Result<&'s GpuBuffer> {
        let (c, l, t) = (&self.cfg, &self.layers[li], s.t);
        let a = |target| adapter(lora, li, target);
        // Inference over rows without adapters on gate or up: one product from the stacked
        // weight, act(gate) · up stored (`Recorder::linear_glu`), where the device's runs take it.
        let plain = !keep && a(Target::Gate).is_none() && a(Target::Up).is_none();
        if let Some(st) = l.gate_up.as_ref().filter(|_| plain && t > 1) {
            if r.linear_glu(&s.h2, t, &st.w, c.hidden_act, None, &s.up)? {
                return Ok(&s.up);
            }
        }
        // Inference with adapters on both: one x·Aᵀ product for the two (`LoraStack`).
        let both = a(Target::Gate).zip(a(Target::Up));
        if let (false, Some((g, u))) = (keep, both) {
            if let Some((lora, room)) = stack_room(r, lora, li, 2, c)? {
                return self.gate_up_stacked(r, li, s, lora, room, (g.0, u.0));
            }
        }
        project(r, &s.h2, t, &l.gate, l.gate_bias.as_ref(), a(Target::Gate), s.u(Target::Gate), &s.gate, false)?;
        // Decoding one row without an adapter on up writes act(gate) · up over `gate` from the
        // up product's store (`Recorder::linear_gated`): a dispatch less per layer.
        if t == 1 && !keep && a(Target::Up).is_none() {
            r.linear_gated(&s.h2, &l.up, l.up_bias.as_ref(), c.hidden_act, None, &s.gate)?;
            return Ok(&s.gate);
        }
        project(r, &s.h2, t, &l.up, l.up_bias.as_ref(), a(Target::Up), s.u(Target::Up), &s.up, false)?;
        // Inference multiplies in place in `up`: one copy less per layer.
        let act = if keep {
            r.copy(&s.up, 0, &s.act, 0, (t * c.intermediate_size * 4) as u64);
            &s.act
        } else {
            &s.up
        };
        r.act_mul(c.hidden_act, &s.gate, act, t * c.intermediate_size)?;
        Ok(act)
    }

    /// q, k and v of layer `li` into `s.q`, `s.k` and `s.v`, each its own product.
    fn project_qkv(&self, r: &mut Recorder, li: usize, s: &Scratch, lora: Option<&Lora>) -> Result<()> {
        let l = &self.layers[li];
        let parts = [
            (&l.q, l.q_bias.as_ref(), Target::Q, &s.q),
            (&l.k, l.k_bias.as_ref(), Target::K, &s.k),
            (&l.v, l.v_bias.as_ref(), Target::V, &s.v),
        ];
        for (w, bias, target, y) in parts {
            project(r, &s.h1, s.t, w, bias, adapter(lora, li, target), s.u(target), y, false)?;
        }
        Ok(())
    }

    /// Inference's q, k and v through the layer's adapters into `s.gate`, as the plain stacked
    /// product leaves them: one x·[Aq; Ak; Av]ᵀ product from the layer's stack into `s.act`
    /// (unused by inference), and the stacked frozen product adding each segment's term as it
    /// stores. 2 dispatches where apart they take 6.
    fn project_qkv_stacked(&self, r: &mut Recorder, s: &Scratch, st: &Stacked, lora: &Lora, room: &LoraStack) -> Result<()> {
        let c = &self.cfg;
        let (h, rank) = (c.hidden_size, lora.cfg.r);
        let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let (t, u) = (s.t, &s.act);
        r.gemm(&s.h1, 0, h, 1, &room.a_qkv, 0, 1, h, u, 0, 3 * rank, t, 3 * rank, h, 1.0, false)?;
        let term = LoraTerm { u, b: &room.b_qkv, r: rank, scale: lora.cfg.scale(), ld: 3 * rank, segs: [qd, qd + kvd] };
        r.linear_lora(&s.h1, t, &st.w, st.bias.as_ref(), term, &s.gate, false)
    }

    /// Inference's act(gate) · up of layer `li` through their adapters (`gate`, `up`), and
    /// where it landed: one x·[Ag; Au]ᵀ product into `s.act` for both terms, which the paired
    /// product adds before its activation where the device's runs take it (B stacked too: 2
    /// dispatches where apart they take 5), else the two frozen products and the activation
    /// (one row: up's product writes act(gate) · up over gate, its term inside).
    fn gate_up_stacked<'s>(
        &self,
        r: &mut Recorder,
        li: usize,
        s: &'s Scratch,
        lora: &Lora,
        room: &LoraStack,
        (gate, up): (&LoraModule, &LoraModule),
    ) -> Result<&'s GpuBuffer> {
        let (c, l) = (&self.cfg, &self.layers[li]);
        let (h, i, rank, t, u) = (c.hidden_size, c.intermediate_size, lora.cfg.r, s.t, &s.act);
        r.gemm(&s.h2, 0, h, 1, &room.a_gate_up, 0, 1, h, u, 0, 2 * rank, t, 2 * rank, h, 1.0, false)?;
        let term = |b, first| LoraTerm { u, b, r: rank, scale: lora.cfg.scale(), ld: 2 * rank, segs: [first, usize::MAX] };
        if let Some(st) = l.gate_up.as_ref().filter(|_| t > 1) {
            if r.linear_glu(&s.h2, t, &st.w, c.hidden_act, Some(term(&room.b_gate_up, i)), &s.up)? {
                return Ok(&s.up);
            }
        }
        r.linear_lora(&s.h2, t, &l.gate, l.gate_bias.as_ref(), term(&gate.b, usize::MAX), &s.gate, false)?;
        // One row: act(gate) · up written over gate by up's product, its term inside.
        if t == 1 && r.linear_gated(&s.h2, &l.up, l.up_bias.as_ref(), c.hidden_act, Some(term(&up.b, 0)), &s.gate)? {
            return Ok(&s.gate);
        }
        r.linear_lora(&s.h2, t, &l.up, l.up_bias.as_ref(), term(&up.b, 0), &s.up, false)?;
        r.act_mul(c.hidden_act, &s.gate, &s.up, t * i)?;
        Ok(&s.up)
    }

    /// x += the block's output projection of `input`, through its norm where the model has
    /// one (Gemma: kept before the norm in `out` for the backward pass).
    #[allow(clippy::too_many_arguments)]
    fn block_out(
        &self,
        r: &mut Recorder,
        input: &GpuBuffer,
        t: usize,
        w: &Tensor,
        (bias, lora, u): (Option<&GpuBuffer>, Option<(&LoraModule, usize, f32)>, &GpuBuffer),
        norm: Option<&GpuBuffer>,
        out: &Option<GpuBuffer>,
        s: &Scratch,
        x: &GpuBuffer,
    ) -> Result<()> {
        let (h, eps) = (self.cfg.hidden_size, self.cfg.rms_norm_eps);
        match (norm, out, &s.normed) {
            (Some(norm), Some(out), Some(normed)) => {
                project(r, input, t, w, bias, lora, u, out, false)?;
                r.rmsnorm(out, norm, normed, t, h, eps)?;
                r.add(normed, x, t * h)
            }
            _ => project(r, input, t, w, bias, lora, u, x, true),
        }
    }
}
