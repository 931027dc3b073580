//! The decoder-only transformer (Llama / Qwen2 / Qwen3 / Gemma 3) on the GPU: weights, KV cache, forward
//! pass, and chunked log-probs over the vocabulary.

use crate::error::{Error, Result};
use crate::gpu::sample::{SAMPLE_OUT_WORDS, SamplerSettings};
use crate::gpu::{DType, Gpu, GpuBuffer, Recorder, Tensor};

use super::config::{LayerAttention, ModelConfig};
use super::generate::SamplingOptions;
use super::layer::{Kv, Scratch};
use super::tensors::TensorSpec;
use super::weights::{RawTensor, WeightSource, convert, to_f32};
use super::adapter::Lora;

pub struct Layer {
    pub attn_norm: GpuBuffer,
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub o: Tensor,
    pub q_bias: Option<GpuBuffer>,
    pub k_bias: Option<GpuBuffer>,
    pub v_bias: Option<GpuBuffer>,
    /// Llama `attention_bias` also biases o_proj; `mlp_bias` biases the MLP projections.
    pub o_bias: Option<GpuBuffer>,
    pub gate_bias: Option<GpuBuffer>,
    pub up_bias: Option<GpuBuffer>,
    pub down_bias: Option<GpuBuffer>,
    /// Qwen3, Gemma 3: RMSNorm weights over each head of q and k.
    pub q_norm: Option<GpuBuffer>,
    pub k_norm: Option<GpuBuffer>,
    /// Gemma 3: RMSNorm of the attention block's output.
    pub post_attn_norm: Option<GpuBuffer>,
    pub mlp_norm: GpuBuffer,
    /// Gemma 3: RMSNorm of the MLP's output.
    pub post_mlp_norm: Option<GpuBuffer>,
    pub gate: Tensor,
    pub up: Tensor,
    pub down: Tensor,
    /// q, k and v stacked by rows as one tensor (`q`, `k` and `v` are views of it) and their
    /// biases likewise, where the config and their types allow (`ModelConfig::stacks_qkv`,
    /// `Tensor::stacks`): inference computes the three in one product.
    pub qkv: Option<Stacked>,
    /// gate and up likewise (`gate` and `up` views of it; no biases): inference computes
    /// act(gate) · up in one product (`Recorder::linear_glu`).
    pub gate_up: Option<Stacked>,
}

/// Weights stacked by rows (`Tensor::stack`) and their biases, one after the other.
pub struct Stacked {
    pub w: Tensor,
    pub bias: Option<GpuBuffer>,
}

pub struct Model {
    pub cfg: ModelConfig,
    pub embed: Tensor,
    /// `None` when the output projection is tied to the embedding.
    pub lm_head: Option<Tensor>,
    pub norm: GpuBuffer,
    pub layers: Vec<Layer>,
    inv_freq: Vec<f32>,
    /// The sliding layers' RoPE, when it differs (Gemma 3).
    local_inv_freq: Option<Vec<f32>>,
}

/// RoPE cos/sin tables for the tokens of one pass: the full-attention layers', and the sliding
/// layers' when their base differs.
pub struct Ropes {
    pub global: GpuBuffer,
    pub local: Option<GpuBuffer>,
}

impl Ropes {
    /// The table layer `li` of `cfg` rotates by.
    pub fn layer(&self, cfg: &ModelConfig, li: usize) -> &GpuBuffer {
        match (&self.local, cfg.layer_types.get(li)) {
            (Some(local), Some(LayerAttention::Sliding)) => local,
            _ => &self.global,
        }
    }
}

/// Keys and values of every layer, [max_seq, kv_heads, head_dim] each, f32.
pub struct KvCache {
    pub k: Vec<GpuBuffer>,
    pub v: Vec<GpuBuffer>,
    /// Positions already filled.
    pub len: usize,
    pub max: usize,
}

struct Loader<'a> {
    gpu: &'a Gpu,
    src: &'a dyn WeightSource,
    /// Storage type for matrices; `None` keeps the checkpoint's.
    dtype: Option<DType>,
}

impl Loader<'_> {
    fn raw(&self, name: &str, shape: &[usize]) -> Result<RawTensor<'_>> {
        let t = self
            .src
            .get(name)?
            .ok_or_else(|| Error::file(&self.src.origin(), format!("missing tensor {name}")))?;
        self.check_shape(&t, name, shape)?;
        Ok(t)
    }

    fn check_shape(&self, t: &RawTensor, name: &str, shape: &[usize]) -> Result<()> {
        if t.shape != shape {
            return Err(Error::file(
                &t.origin,
                format!(
                    "tensor {name} has shape {:?} but {} implies {:?}",
                    t.shape,
                    self.src.config_source(),
                    shape
                ),
            ));
        }
        Ok(())
    }

    fn matrix(&self, s: &TensorSpec) -> Result<Tensor> {
        let t = self.raw(&s.name, &s.shape)?;
        let dtype = self.dtype.unwrap_or(t.dtype);
        let bytes = convert(&t, dtype)?;
        Tensor::from_bytes(self.gpu, &s.name, dtype, s.shape[0], s.shape[1], &bytes)
    }

    /// Matrices of a layer (`specs`: q, k and v; gate and up) and, where `allowed` and they
    /// stack (`Layer::qkv`, `Layer::gate_up`), the stack named `name` with their `biases` (all
    /// or none: some alone keep them apart).
    fn stacked<const N: usize>(
        &self,
        allowed: bool,
        specs: [&TensorSpec; N],
        biases: [&TensorSpec; N],
        name: &str,
    ) -> Result<([Tensor; N], Option<Stacked>)> {
        let raws = specs.iter().map(|s| self.raw(&s.name, &s.shape)).collect::<Result<Vec<_>>>()?;
        let dtypes: Vec<DType> = raws.iter().map(|t| self.dtype.unwrap_or(t.dtype)).collect();
        let (rows, cols) = (specs.map(|s| s.shape[0]), specs[0].shape[1]);
        let biased = biases.map(|b| self.src.has(&b.name));
        let stacks = allowed
            && dtypes.iter().all(|d| *d == dtypes[0])
            && biased.iter().all(|b| *b == biased[0])
            && Tensor::stacks(dtypes[0], &rows, cols, self.gpu.max_binding);
        let data = (0..N).map(|i| convert(&raws[i], dtypes[i])).collect::<Result<Vec<_>>>()?;
        if !stacks {
            let mut views = Vec::new();
            for i in 0..N {
                views.push(Tensor::from_bytes(self.gpu, &specs[i].name, dtypes[i], rows[i], cols, &data[i])?);
            }
            let views = views.try_into().map_err(|_| Error::Invalid(format!("{name}: parts lost")))?;
            return Ok((views, None));
        }
        let parts = std::array::from_fn(|i| (rows[i], &*data[i]));
        let (w, views) = Tensor::stack(self.gpu, name, dtypes[0], cols, parts)?;
        let mut bias = None;
        if biased[0] {
            let mut all = Vec::new();
            for b in biases {
                all.extend(self.vector_data(b)?);
            }
            bias = Some(self.gpu.upload(bytemuck::cast_slice(&all), &format!("{name} bias"))?);
        }
        Ok((views, Some(Stacked { w, bias })))
    }

    fn vector(&self, s: &TensorSpec) -> Result<GpuBuffer> {
        self.gpu.upload(bytemuck::cast_slice(&self.vector_data(s)?), &s.name)
    }

    fn vector_data(&self, s: &TensorSpec) -> Result<Vec<f32>> {
        let t = self.raw(&s.name, &s.shape)?;
        let mut v = to_f32(&t)?;
        if s.add_one {
            v.iter_mut().for_each(|w| *w += 1.0);
        }
        Ok(v)
    }

    fn optional_vector(&self, s: &TensorSpec) -> Result<Option<GpuBuffer>> {
        if !self.src.has(&s.name) {
            return Ok(None);
        }
        self.vector(s).map(Some)
    }

    /// A tensor only some configs have (Qwen3's q/k norms).
    fn config_vector(&self, s: &Option<TensorSpec>) -> Result<Option<GpuBuffer>> {
        s.as_ref().map(|s| self.vector(s)).transpose()
    }
}

impl Model {
    /// Builds the model on the GPU. `dtype` overrides how matrices are stored (f32 checkpoints
    /// stay f32 unless asked); norms and biases are always f32.
    pub fn load(
        gpu: &Gpu,
        cfg: ModelConfig,
        src: &dyn WeightSource,
        dtype: Option<DType>,
    ) -> Result<Model> {
        let l = Loader { gpu, src, dtype };
        let g = cfg.global_tensors();
        let embed = l.matrix(&g.embed)?;
        let lm_head = match &g.lm_head {
            Some(s) if src.has(&s.name) => Some(l.matrix(s)?),
            _ => None,
        };
        let norm = l.vector(&g.norm)?;
        // Grown as layers load: the count comes from a file, checked against its tensors only here.
        let mut layers = Vec::new();
        for n in 0..cfg.num_layers {
            let t = cfg.layer_tensors(n);
            let qkv_name = t.q.name.replace("q_proj", "qkv_proj");
            let ([q, k, v], qkv) =
                l.stacked(cfg.stacks_qkv(), [&t.q, &t.k, &t.v], [&t.q_bias, &t.k_bias, &t.v_bias], &qkv_name)?;
            // Gate and up stack only without biases (`Recorder::linear_glu` adds none).
            let unbiased = !src.has(&t.gate_bias.name) && !src.has(&t.up_bias.name);
            let gate_up_name = t.gate.name.replace("gate_proj", "gate_up_proj");
            let ([gate, up], gate_up) =
                l.stacked(unbiased, [&t.gate, &t.up], [&t.gate_bias, &t.up_bias], &gate_up_name)?;
            layers.push(Layer {
                attn_norm: l.vector(&t.attn_norm)?,
                q,
                k,
                v,
                o: l.matrix(&t.o)?,
                q_bias: l.optional_vector(&t.q_bias)?,
                k_bias: l.optional_vector(&t.k_bias)?,
                v_bias: l.optional_vector(&t.v_bias)?,
                o_bias: l.optional_vector(&t.o_bias)?,
                gate_bias: l.optional_vector(&t.gate_bias)?,
                up_bias: l.optional_vector(&t.up_bias)?,
                down_bias: l.optional_vector(&t.down_bias)?,
                q_norm: l.config_vector(&t.q_norm)?,
                k_norm: l.config_vector(&t.k_norm)?,
                post_attn_norm: l.config_vector(&t.post_attn_norm)?,
                mlp_norm: l.vector(&t.mlp_norm)?,
                gate,
                up,
                down: l.matrix(&t.down)?,
                post_mlp_norm: l.config_vector(&t.post_mlp_norm)?,
                qkv,
                gate_up,
            });
        }
        let inv_freq = cfg.inv_freq();
        let local_inv_freq = cfg.local_inv_freq();
        Ok(Model {
            cfg,
            embed,
            lm_head,
            norm,
            layers,
            inv_freq,
            local_inv_freq,
        })
    }

    /// The output projection: lm_head, or the embedding when tied.
    pub fn output(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    pub fn weight_bytes(&self) -> u64 {
        let mut b =
            self.embed.bytes() + self.norm.bytes + self.lm_head.as_ref().map_or(0, |t| t.bytes());
        for l in &self.layers {
            b += [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                .iter()
                .map(|t| t.bytes())
                .sum::<u64>();
            b += l.attn_norm.bytes + l.mlp_norm.bytes;
            for x in [
                &l.q_bias,
                &l.k_bias,
                &l.v_bias,
                &l.o_bias,
                &l.gate_bias,
                &l.up_bias,
                &l.down_bias,
                &l.q_norm,
                &l.k_norm,
                &l.post_attn_norm,
                &l.post_mlp_norm,
            ]
            .into_iter()
            .flatten()
            {
                b += x.bytes;
            }
            b += l.qkv.as_ref().and_then(|s| s.bias.as_ref()).map_or(0, |x| x.bytes);
        }
        b
    }

    pub fn new_cache(&self, gpu: &Gpu, max_seq: usize) -> Result<KvCache> {
        // Checked: a length from outside (max_new_tokens, an episode's turns) must not wrap.
        let bytes = max_seq
            .checked_mul(self.cfg.num_kv_heads * self.cfg.head_dim * 4)
            .map(|b| b as u64)
            .ok_or_else(|| Error::Invalid(format!("a KV cache of {max_seq} positions is too large")))?;
        let mut k = Vec::new();
        let mut v = Vec::new();
        for _ in 0..self.cfg.num_layers {
            k.push(gpu.alloc(bytes, "kv cache (keys)")?);
            v.push(gpu.alloc(bytes, "kv cache (values)")?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            max: max_seq,
        })
    }

    /// Runs `ids` at positions `cache.len ..`, appending their keys and values to the cache.
    /// Returns the final-normed hidden states [ids.len(), hidden]. `lora`: the adapter to apply
    /// (`None` is the base model).
    pub fn forward(
        &self,
        gpu: &Gpu,
        ids: &[u32],
        cache: &mut KvCache,
        lora: Option<&Lora>,
    ) -> Result<GpuBuffer> {
        self.forward_with_images(gpu, ids, None, cache, lora)
    }

    /// [`Model::forward`] with image features ([n, hidden] f32, from the vision tower) in the
    /// rows of the image token (a vision-language model's prompt).
    pub fn forward_with_images(
        &self,
        gpu: &Gpu,
        ids: &[u32],
        images: Option<&GpuBuffer>,
        cache: &mut KvCache,
        lora: Option<&Lora>,
    ) -> Result<GpuBuffer> {
        let c = &self.cfg;
        let t = ids.len();
        let p0 = cache.len;
        if p0 + t > cache.max {
            return Err(Error::Invalid(format!(
                "{} positions exceed the KV cache of {}",
                p0 + t,
                cache.max
            )));
        }
        let (x, ropes) = self.embed_tokens(gpu, ids, p0)?;
        let s = Scratch::new(gpu, c, t, lora.map_or(1, |l| l.cfg.r))?;
        let out = gpu.alloc((t * c.hidden_size * 4) as u64, "final hidden")?;
        let mut r = Recorder::new(gpu);
        self.record_embed(&mut r, ids, &x, images.map(|f| (f, ids.len())))?;
        for li in 0..self.layers.len() {
            self.record_layer(
                &mut r,
                li,
                &x,
                &s,
                lora,
                &ropes,
                Kv::Cache {
                    k: &cache.k[li],
                    v: &cache.v[li],
                    p0,
                },
            )?;
        }
        r.rmsnorm(&x, &self.norm, &out, t, c.hidden_size, c.rms_norm_eps)?;
        r.submit()?;
        cache.len = p0 + t;
        Ok(out)
    }

    /// Checks `ids`, and allocates the residual stream and the rope tables for positions p0...
    pub(crate) fn embed_tokens(
        &self,
        gpu: &Gpu,
        ids: &[u32],
        p0: usize,
    ) -> Result<(GpuBuffer, Ropes)> {
        let positions: Vec<u32> = (p0..p0 + ids.len()).map(|p| p as u32).collect();
        self.embed_tokens_at(gpu, ids, &positions)
    }

    /// The same with one position per token (packed sequences).
    pub(crate) fn embed_tokens_at(
        &self,
        gpu: &Gpu,
        ids: &[u32],
        positions: &[u32],
    ) -> Result<(GpuBuffer, Ropes)> {
        let c = &self.cfg;
        if ids.is_empty() {
            return Err(Error::Invalid("forward over zero tokens".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::Invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        let x = gpu.alloc((ids.len() * c.hidden_size * 4) as u64, "residual")?;
        Ok((x, self.ropes(gpu, positions, false)?))
    }

    /// The rope tables for `positions`; `inverse` negates sin: rotating by it undoes rope,
    /// which is rope's backward pass.
    pub(crate) fn ropes(&self, gpu: &Gpu, positions: &[u32], inverse: bool) -> Result<Ropes> {
        let table = |inv_freq: &[f32]| {
            let mut tab = self.cfg.rope_table_at(inv_freq, positions);
            if inverse {
                let half = tab.len() / 2;
                tab[half..].iter_mut().for_each(|s| *s = -*s);
            }
            gpu.upload(bytemuck::cast_slice(&tab), "rope table")
        };
        Ok(Ropes {
            global: table(&self.inv_freq)?,
            local: self.local_inv_freq.as_deref().map(table).transpose()?,
        })
    }

    /// Records the embedding gather of `ids` into x (scaled by √hidden for Gemma); then, for a
    /// vision-language model, `images` = (features [n, hidden] f32, p) replace the rows among
    /// the first p (the prompt's) whose id is the image token, in order, as transformers
    /// merges them. (A completion that samples the image token embeds it as a token.)
    pub(crate) fn record_embed(
        &self,
        r: &mut Recorder,
        ids: &[u32],
        x: &GpuBuffer,
        images: Option<(&GpuBuffer, usize)>,
    ) -> Result<()> {
        let ids_buf = r.gpu.upload(bytemuck::cast_slice(ids), "token ids")?;
        r.embed(&ids_buf, ids.len(), &self.embed, x)?;
        if let Some(s) = self.cfg.embed_scale() {
            r.scale(x, ids.len() * self.cfg.hidden_size, s)?;
        }
        let Some((features, prompt_rows)) = images else {
            return Ok(());
        };
        let row = (self.cfg.hidden_size * 4) as u64;
        let token = self.cfg.image_token_id.ok_or_else(|| {
            Error::Invalid("images given to a model without a vision tower".into())
        })?;
        let runs = image_runs(&ids[..prompt_rows.min(ids.len())], token);
        let n: usize = runs.iter().map(|&(_, len)| len).sum();
        if n as u64 * row != features.bytes {
            return Err(Error::Invalid(format!(
                "the text has {n} image tokens but the images give {} feature rows",
                features.bytes / row
            )));
        }
        let mut src = 0u64;
        for (start, len) in runs {
            r.copy(features, src, x, start as u64 * row, len as u64 * row);
            src += len as u64 * row;
        }
        Ok(())
    }

    /// Vocabulary columns per chunk so that a [t × chunk] f32 buffer fits one binding.
    pub(crate) fn chunk_cols(&self, gpu: &Gpu, t: usize) -> usize {
        let by_binding = (gpu.max_binding / (t as u64 * 4).max(1)) as usize;
        by_binding.clamp(1, 8192).min(self.cfg.vocab_size)
    }

    /// log p(targets[i] | row i) for each row of `hidden` [t, hidden] with logits divided by
    /// `temperature`; rows whose target is `None` give NaN. Walks the vocabulary in chunks.
    pub fn target_logprobs(
        &self,
        gpu: &Gpu,
        hidden: &GpuBuffer,
        targets: &[Option<u32>],
        temperature: f32,
    ) -> Result<Vec<f32>> {
        let t = targets.len();
        let tg: Vec<u32> = targets.iter().map(|x| x.unwrap_or(u32::MAX)).collect();
        let tg_buf = gpu.upload(bytemuck::cast_slice(&tg), "targets")?;
        let state = self.logsoftmax_state(gpu, hidden, t, &tg_buf, 1.0 / temperature)?;
        let st = gpu.read_f32(&state, t * 4)?;
        Ok((0..t)
            .map(|i| match targets[i] {
                Some(_) => st[i * 4 + 2] - (st[i * 4] + st[i * 4 + 1].ln()),
                None => f32::NAN,
            })
            .collect())
    }

    /// The log-softmax state [t, 4] (m, s, target z, Σ e^(z−m)·z) of the first `t` rows of
    /// `hidden`, folded over the vocabulary one chunk of logits at a time.
    pub(crate) fn logsoftmax_state(
        &self,
        gpu: &Gpu,
        hidden: &GpuBuffer,
        t: usize,
        targets: &GpuBuffer,
        inv_temp: f32,
    ) -> Result<GpuBuffer> {
        let vocab = self.cfg.vocab_size;
        let state = gpu.alloc((t * 16) as u64, "log-softmax state")?;
        let cols = self.chunk_cols(gpu, t);
        let chunk = gpu.alloc((t * cols * 4) as u64, "logits chunk")?;
        let mut r = Recorder::new(gpu);
        r.lse_init(&state, t)?;
        let mut v0 = 0;
        while v0 < vocab {
            let n = cols.min(vocab - v0);
            r.matmul(
                hidden,
                t,
                self.output(),
                v0..v0 + n,
                None,
                &chunk,
                n,
                0,
                false,
            )?;
            r.lse_chunk(&chunk, targets, &state, t, n, v0, inv_temp)?;
            v0 += n;
        }
        r.submit()?;
        Ok(state)
    }

    /// The full logits of row `row` of `hidden` (one row only, never [t × vocab]).
    pub fn row_logits(&self, gpu: &Gpu, hidden: &GpuBuffer, row: usize) -> Result<Vec<f32>> {
        let vocab = self.cfg.vocab_size;
        let all = gpu.alloc((vocab * 4) as u64, "logits row")?;
        let mut r = Recorder::new(gpu);
        self.record_row_logits(&mut r, hidden, row, &all)?;
        r.submit()?;
        gpu.read_f32(&all, vocab)
    }

    /// Records the logits of row `row` of `hidden` into `all` [vocab]: where the row fits one
    /// binding (decoding one sequence), one product over the whole vocabulary written in place;
    /// else one binding-sized chunk of the output projection at a time.
    fn record_row_logits(
        &self,
        r: &mut Recorder,
        hidden: &GpuBuffer,
        row: usize,
        all: &GpuBuffer,
    ) -> Result<()> {
        let (h, vocab) = (self.cfg.hidden_size, self.cfg.vocab_size);
        let f = |n: usize| (n * 4) as u64;
        if f(vocab) > r.gpu.max_binding {
            return self.record_rows_logits(r, hidden, &[row], std::slice::from_ref(all));
        }
        let copied;
        let x = if row == 0 {
            hidden
        } else {
            copied = r.gpu.alloc(f(h), "row to score")?;
            r.copy(hidden, f(row * h), &copied, 0, f(h));
            &copied
        };
        r.matmul(x, 1, self.output(), 0..vocab, None, all, vocab, 0, false)
    }

    /// The logits of rows `rows` of `hidden`, row i into `outs[i]` [vocab]: one product over
    /// all the rows per chunk of the output projection.
    pub(crate) fn record_rows_logits(
        &self,
        r: &mut Recorder,
        hidden: &GpuBuffer,
        rows: &[usize],
        outs: &[GpuBuffer],
    ) -> Result<()> {
        let gpu = r.gpu;
        let (vocab, n_rows) = (self.cfg.vocab_size, rows.len());
        let f = |n: usize| (n * 4) as u64;
        let picked = self.pick_rows(r, hidden, rows)?;
        let cols = self.chunk_cols(gpu, n_rows);
        let chunk = gpu.alloc(f(n_rows * cols), "logits chunk")?;
        let mut v0 = 0;
        while v0 < vocab {
            let n = cols.min(vocab - v0);
            r.matmul(
                &picked,
                n_rows,
                self.output(),
                v0..v0 + n,
                None,
                &chunk,
                n,
                0,
                false,
            )?;
            for (i, out) in outs.iter().enumerate() {
                r.copy(&chunk, f(i * n), out, f(v0), f(n));
            }
            v0 += n;
        }
        Ok(())
    }

    /// The logits of rows `rows` of `hidden` into `all` [rows, vocab], chunk by chunk of the
    /// output projection straight into place; `all` must fit one binding.
    pub(crate) fn record_rows_logits_into(
        &self,
        r: &mut Recorder,
        hidden: &GpuBuffer,
        rows: &[usize],
        all: &GpuBuffer,
    ) -> Result<()> {
        let vocab = self.cfg.vocab_size;
        let picked = self.pick_rows(r, hidden, rows)?;
        let cols = self.chunk_cols(r.gpu, rows.len());
        for v0 in (0..vocab).step_by(cols) {
            let n = cols.min(vocab - v0);
            r.matmul(&picked, rows.len(), self.output(), v0..v0 + n, None, all, vocab, v0, false)?;
        }
        Ok(())
    }

    /// Rows `rows` of `hidden` [.., hidden] copied into a new buffer, in that order.
    fn pick_rows(&self, r: &mut Recorder, hidden: &GpuBuffer, rows: &[usize]) -> Result<GpuBuffer> {
        let h = self.cfg.hidden_size;
        let f = |n: usize| (n * 4) as u64;
        let picked = r.gpu.alloc(f(rows.len() * h), "rows to score")?;
        for (i, &row) in rows.iter().enumerate() {
            r.copy(hidden, f(row * h), &picked, f(i * h), f(h));
        }
        Ok(picked)
    }

    /// Samples the next token from row `row` of `hidden` on the GPU (`gpu::sample`): records
    /// the logits row and the sampler in one submit and reads back 8 bytes. Returns the id and
    /// its log-prob under the distribution it was drawn from (temperature-scaled, filtered and
    /// renormalised; 0 for greedy). `step` is the draw's counter, as for `generate::sample`;
    /// the draw follows the same distribution as the CPU sampler, not the same tokens. The
    /// vocabulary row must fit one storage binding (`Error::Invalid` otherwise).
    pub fn sample_next(
        &self,
        gpu: &Gpu,
        hidden: &GpuBuffer,
        row: usize,
        opts: &SamplingOptions,
        step: u64,
    ) -> Result<(u32, f32)> {
        opts.validate()?;
        let vocab = self.cfg.vocab_size;
        let all = gpu.alloc((vocab * 4) as u64, "logits row")?;
        let out = gpu.alloc((SAMPLE_OUT_WORDS * 4) as u64, "sampled token")?;
        let mut r = Recorder::new(gpu);
        self.record_row_logits(&mut r, hidden, row, &all)?;
        r.sample(&all, vocab, &SamplerSettings::from(opts), step, 1, &out)?;
        r.submit()?;
        let b = gpu.read(&out.buffer, 0, 8)?;
        let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let lp = f32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        Ok((id, lp))
    }
}

/// The runs of `token` in `ids`: (first row, length), in order.
fn image_runs(ids: &[u32], token: u32) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, _) in ids.iter().enumerate().filter(|&(_, &id)| id == token) {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == i => *len += 1,
            _ => runs.push((i, 1)),
        }
    }
    runs
}
