//! The tower's forward pass on the GPU, a chunk of whole images at a time: each chunk's
//! activations (the widest being its patches, hidden states or MLP rows) stay within one storage
//! binding, so no activation is split, and attention never crosses an image.

use crate::error::Result;
use crate::gpu::rows::gather_index;
use crate::gpu::{Gpu, GpuBuffer, Recorder};

use super::input::{Pixels, Prepared, pixel_shuffle_sources, prepare};
use super::plan::images_per_chunk;
use super::weights::VisionTower;

/// What `Idefics3Model.get_image_features` returns, for the real (non-padding) images.
#[derive(Debug)]
pub struct ImageFeatures {
    /// Indices (in the `Pixels` given) of the images that went through.
    pub real: Vec<usize>,
    /// Image tokens per image: (patches a side / scale_factor)².
    pub tokens_per_image: usize,
    /// The text model's hidden size.
    pub width: usize,
    /// [real, tokens_per_image, width].
    pub values: Vec<f32>,
    /// The encoder's output after its post-LayerNorm, [real, patches, vision hidden], when
    /// asked for (tests compare it before the connector).
    pub vision_hidden: Option<Vec<f32>>,
}

/// One chunk's buffers, sized for the largest chunk and reused.
struct Scratch {
    h: GpuBuffer,
    x: GpuBuffer,
    q: GpuBuffer,
    k: GpuBuffer,
    v: GpuBuffer,
    att: GpuBuffer,
    mlp: GpuBuffer,
    features: GpuBuffer,
}

impl VisionTower {
    /// Image features of a batch of images, as transformers' `get_image_features` computes them.
    pub fn image_features(&self, gpu: &Gpu, px: &Pixels) -> Result<ImageFeatures> {
        self.run(gpu, px, false)
    }

    /// `image_features`, with the encoder's output kept too when `keep_hidden`.
    pub fn run(&self, gpu: &Gpu, px: &Pixels, keep_hidden: bool) -> Result<ImageFeatures> {
        let prep = prepare(&self.cfg, px)?;
        let mut out = self.empty_output(&prep);
        out.values.reserve(prep.real.len() * out.tokens_per_image * out.width);
        out.vision_hidden = keep_hidden.then(Vec::new);
        self.run_prepared(gpu, &prep, &mut out, None)?;
        Ok(out)
    }

    /// The features left on the GPU, [real × tokens_per_image, width] f32 (what
    /// `Model::forward_with_images` takes): no read-back. The returned `ImageFeatures` has no
    /// values; with no real image the buffer is a 4-byte stand-in.
    pub fn image_features_on_gpu(&self, gpu: &Gpu, px: &Pixels) -> Result<(ImageFeatures, GpuBuffer)> {
        let prep = prepare(&self.cfg, px)?;
        let mut out = self.empty_output(&prep);
        let bytes = prep.real.len() * out.tokens_per_image * out.width * 4;
        let features = gpu.alloc(bytes as u64, "image features")?;
        self.run_prepared(gpu, &prep, &mut out, Some(&features))?;
        Ok((out, features))
    }

    fn empty_output(&self, prep: &Prepared) -> ImageFeatures {
        let r = self.cfg.scale_factor;
        ImageFeatures {
            real: prep.real.clone(),
            tokens_per_image: prep.seq() / (r * r),
            width: self.cfg.text_hidden_size,
            values: Vec::new(),
            vision_hidden: None,
        }
    }

    /// Runs the chunks; each one's features go to `device` (at its images' rows) or are read
    /// back into `out`.
    fn run_prepared(
        &self,
        gpu: &Gpu,
        prep: &Prepared,
        out: &mut ImageFeatures,
        device: Option<&GpuBuffer>,
    ) -> Result<()> {
        let seq = prep.seq();
        let n_real = prep.real.len();
        if n_real == 0 {
            return Ok(());
        }
        let chunk = images_per_chunk(&self.cfg, seq, gpu.max_binding)?;
        let s = self.scratch(gpu, chunk.min(n_real) * seq)?;
        let mut first = 0;
        while first < n_real {
            let n = chunk.min(n_real - first);
            self.record_chunk(gpu, prep, first, n, &s, out, device)?;
            first += n;
        }
        Ok(())
    }

    fn scratch(&self, gpu: &Gpu, rows: usize) -> Result<Scratch> {
        let c = &self.cfg;
        let f = |w: usize, what: &str| gpu.alloc((rows * w * 4) as u64, what);
        let d = c.hidden_size;
        let tokens = rows / (c.scale_factor * c.scale_factor);
        Ok(Scratch {
            h: f(d, "vision h")?,
            x: f(d, "vision normed")?,
            q: f(d, "vision q")?,
            k: f(d, "vision k")?,
            v: f(d, "vision v")?,
            att: f(d, "vision attention")?,
            mlp: f(c.intermediate_size, "vision mlp")?,
            features: gpu.alloc((tokens * c.text_hidden_size * 4) as u64, "image features")?,
        })
    }

    /// Images `first .. first + n` of `prep`: records, submits, and reads back (or copies into
    /// `device`).
    #[allow(clippy::too_many_arguments)]
    fn record_chunk(
        &self,
        gpu: &Gpu,
        prep: &Prepared,
        first: usize,
        n: usize,
        s: &Scratch,
        out: &mut ImageFeatures,
        device: Option<&GpuBuffer>,
    ) -> Result<()> {
        let c = &self.cfg;
        let seq = prep.seq();
        let rows = n * seq;
        let (d, pd, r) = (c.hidden_size, c.patch_dim(), c.scale_factor);
        let span = first * seq..(first + n) * seq;
        let patches = gpu.upload(
            bytemuck::cast_slice(&prep.patches[span.start * pd..span.end * pd]),
            "vision patches",
        )?;
        let ids = gpu.upload(bytemuck::cast_slice(&prep.position_ids[span.clone()]), "vision position ids")?;
        let key_mask = gpu.upload(bytemuck::cast_slice(&prep.key_mask[span]), "vision key mask")?;
        let index = gather_index(&pixel_shuffle_sources(n, prep.side, r));
        let index = gpu.upload(bytemuck::cast_slice(&index), "pixel shuffle index")?;

        let mut rec = Recorder::new(gpu);
        // Embeddings: position rows, plus the patches' product with the Conv2d weight and bias.
        rec.embed(&ids, rows, &self.position, &s.h)?;
        rec.matmul(&patches, rows, &self.patch, 0..d, Some(&self.patch_bias), &s.h, d, 0, true)?;
        let scale = (c.head_dim() as f32).powf(-0.5);
        for l in &self.layers {
            rec.layernorm(&s.h, &l.ln1_weight, &l.ln1_bias, &s.x, rows, d, c.layer_norm_eps)?;
            rec.linear(&s.x, rows, &l.q, Some(&l.q_bias), &s.q, false)?;
            rec.linear(&s.x, rows, &l.k, Some(&l.k_bias), &s.k, false)?;
            rec.linear(&s.x, rows, &l.v, Some(&l.v_bias), &s.v, false)?;
            rec.attention_bidirectional(
                &s.q, &s.k, &s.v, &s.att, &key_mask, n, seq, c.num_heads, c.head_dim(), scale,
            )?;
            rec.linear(&s.att, rows, &l.o, Some(&l.o_bias), &s.h, true)?;
            rec.layernorm(&s.h, &l.ln2_weight, &l.ln2_bias, &s.x, rows, d, c.layer_norm_eps)?;
            rec.linear(&s.x, rows, &l.fc1, Some(&l.fc1_bias), &s.mlp, false)?;
            rec.act(c.act, &s.mlp, rows * c.intermediate_size)?;
            rec.linear(&s.mlp, rows, &l.fc2, Some(&l.fc2_bias), &s.h, true)?;
        }
        rec.layernorm(&s.h, &self.post_weight, &self.post_bias, &s.x, rows, d, c.layer_norm_eps)?;
        // Connector: pixel shuffle (a row gather into q, free by now), then the projection.
        rec.gather_rows(&s.x, &index, &s.q, rows, d)?;
        let tokens = rows / (r * r);
        rec.linear(&s.q, tokens, &self.projection, None, &s.features, false)?;
        let bytes = (tokens * c.text_hidden_size * 4) as u64;
        if let Some(dst) = device {
            let per_image = (out.tokens_per_image * c.text_hidden_size * 4) as u64;
            rec.copy(&s.features, 0, dst, first as u64 * per_image, bytes);
        }
        rec.submit()?;
        if let Some(hidden) = out.vision_hidden.as_mut() {
            hidden.extend(gpu.read_f32(&s.x, rows * d)?);
        }
        if device.is_none() {
            out.values.extend(gpu.read_f32(&s.features, tokens * c.text_hidden_size)?);
        }
        Ok(())
    }
}
