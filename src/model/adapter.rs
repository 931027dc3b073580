//! The adapter tensors the forward and training passes read: LoRA on the frozen base's linear
//! layers, W x + (alpha/r) · B A x, with A [r, in] and B [out, r] in f32 on the GPU. The model
//! owns them (and the projection names) so that `model` does not depend on `lora`; `lora` adds
//! PEFT's files and module matching on top and re-exports these types.

use super::ModelConfig;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, Recorder};
use std::sync::atomic::{AtomicU64, Ordering};

/// The projections an adapter can sit on, in PEFT's `target_modules` spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Module path inside a decoder layer.
    pub fn module_path(self) -> String {
        match self {
            Target::Q | Target::K | Target::V | Target::O => format!("self_attn.{}", self.name()),
            _ => format!("mlp.{}", self.name()),
        }
    }

    /// (in_features, out_features) of the projection.
    pub fn dims(self, c: &ModelConfig) -> (usize, usize) {
        let (h, q, kv, i) = (
            c.hidden_size,
            c.num_heads * c.head_dim,
            c.num_kv_heads * c.head_dim,
            c.intermediate_size,
        );
        match self {
            Target::Q => (h, q),
            Target::K | Target::V => (h, kv),
            Target::O => (q, h),
            Target::Gate | Target::Up => (h, i),
            Target::Down => (i, h),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f32,
    /// rsLoRA: scale alpha/√r instead of alpha/r.
    pub use_rslora: bool,
    pub targets: Vec<Target>,
}

impl LoraConfig {
    pub fn scale(&self) -> f32 {
        if self.use_rslora {
            self.alpha / (self.r as f32).sqrt()
        } else {
            self.alpha / self.r as f32
        }
    }
}

/// One adapted projection: parameters, their gradients and (lazily) optimizer state.
pub struct LoraModule {
    pub a: GpuBuffer,
    pub b: GpuBuffer,
    pub grad_a: GpuBuffer,
    pub grad_b: GpuBuffer,
    pub d_in: usize,
    pub d_out: usize,
}

pub struct Lora {
    pub cfg: LoraConfig,
    /// Where the base model's layers are named (`ModelConfig::text_prefix`), for PEFT's names.
    pub text_prefix: &'static str,
    /// Per layer, per `Target` (indexed by `Target as usize`).
    pub layers: Vec<[Option<LoraModule>; 7]>,
    /// Per layer, its adapters as inference's stacked products read them (`Lora::stack`);
    /// empty where no layer's products stack.
    pub stacks: Vec<LoraStack>,
    /// Counts the GPU's writes of A and B (`Lora::changed`): a stack holding an older count
    /// is refilled before its next use.
    version: AtomicU64,
}

/// One layer's adapters stacked (`Model::record_layer`, inference only): A of q | k | v
/// [3r, hidden] and their B [q + k + v rows, r] beside the stacked q | k | v weight, so that
/// one x·Aᵀ product and the frozen stacked product carry all three; A of gate | up [2r, hidden]
/// and their B [2 × intermediate, r] beside the paired gate | up weight likewise. A target
/// without an adapter gets zeros (its rows add nothing). Kept per layer and filled once per
/// change of the adapter: copying them in before each layer's products cost ~9 % of a
/// decoding step on lavapipe.
pub struct LoraStack {
    pub a_qkv: GpuBuffer,
    pub b_qkv: GpuBuffer,
    pub a_gate_up: GpuBuffer,
    pub b_gate_up: GpuBuffer,
    /// The adapter's `version` these values are (`u64::MAX`: none yet).
    holds: AtomicU64,
}

impl LoraStack {
    pub fn bytes(&self) -> u64 {
        self.a_qkv.bytes + self.b_qkv.bytes + self.a_gate_up.bytes + self.b_gate_up.bytes
    }

    /// The stack's tensors in floats (the plan counts them with the adapter's parameters): A of
    /// q | k | v, their B, A of gate | up, their B; none where no layer's products stack.
    pub fn sizes(c: &ModelConfig, r: usize, targets: &[Target]) -> Vec<usize> {
        let has = |t: Target| targets.contains(&t);
        let qkv = c.stacks_qkv() && (has(Target::Q) || has(Target::K) || has(Target::V));
        let gate_up = has(Target::Gate) && has(Target::Up);
        if !qkv && !gate_up {
            return vec![];
        }
        let rows = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
        vec![3 * r * c.hidden_size, rows * r, 2 * r * c.hidden_size, 2 * c.intermediate_size * r]
    }
}

impl Lora {
    /// Builds an adapter from host values; `values(layer, target)` gives (A, B) row-major.
    pub fn from_values(
        gpu: &Gpu,
        model: &ModelConfig,
        cfg: LoraConfig,
        mut values: impl FnMut(usize, Target) -> Result<(Vec<f32>, Vec<f32>)>,
    ) -> Result<Lora> {
        if cfg.r == 0 {
            return Err(Error::Invalid("LoRA rank r must be at least 1".into()));
        }
        let mut layers = Vec::new();
        for l in 0..model.num_layers {
            let mut mods: [Option<LoraModule>; 7] = Default::default();
            for &t in &cfg.targets {
                let (d_in, d_out) = t.dims(model);
                let (a, b) = values(l, t)?;
                if a.len() != cfg.r * d_in || b.len() != d_out * cfg.r {
                    return Err(Error::Invalid(format!(
                        "layer {l} {}: adapter sizes do not match r={}",
                        t.name(),
                        cfg.r
                    )));
                }
                let what = format!("lora {l}.{}", t.name());
                mods[t as usize] = Some(LoraModule {
                    a: gpu.upload(bytemuck::cast_slice(&a), &what)?,
                    b: gpu.upload(bytemuck::cast_slice(&b), &what)?,
                    grad_a: gpu.alloc((a.len() * 4) as u64, &what)?,
                    grad_b: gpu.alloc((b.len() * 4) as u64, &what)?,
                    d_in,
                    d_out,
                });
            }
            layers.push(mods);
        }
        let mut stacks = Vec::new();
        if let [a_qkv, b_qkv, a_gate_up, b_gate_up] = LoraStack::sizes(model, cfg.r, &cfg.targets)[..] {
            for _ in 0..model.num_layers {
                stacks.push(LoraStack {
                    a_qkv: gpu.alloc((a_qkv * 4) as u64, "lora q|k|v A stacked")?,
                    b_qkv: gpu.alloc((b_qkv * 4) as u64, "lora q|k|v B stacked")?,
                    a_gate_up: gpu.alloc((a_gate_up * 4) as u64, "lora gate|up A stacked")?,
                    b_gate_up: gpu.alloc((b_gate_up * 4) as u64, "lora gate|up B stacked")?,
                    holds: AtomicU64::new(u64::MAX),
                });
            }
        }
        Ok(Lora {
            cfg,
            text_prefix: model.text_prefix,
            layers,
            stacks,
            version: AtomicU64::new(0),
        })
    }

    /// Says A or B changed on the GPU (after the work that wrote them was submitted): the
    /// stacks refill before inference next reads them.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Layer `layer`'s stack, holding the adapter's current values: where any stack is older,
    /// every stale layer is refilled in one submission of its own, which the queue runs before
    /// whatever the caller is recording (inference never writes A or B).
    pub fn stack(&self, gpu: &Gpu, model: &ModelConfig, layer: usize) -> Result<Option<&LoraStack>> {
        let Some(st) = self.stacks.get(layer) else { return Ok(None) };
        let v = self.version.load(Ordering::Acquire);
        if st.holds.load(Ordering::Acquire) != v {
            let stale: Vec<usize> = (0..self.stacks.len()).filter(|&l| self.stacks[l].holds.load(Ordering::Acquire) != v).collect();
            let mut r = Recorder::new(gpu);
            for &l in &stale {
                self.fill_stack(&mut r, model, l);
            }
            r.submit()?;
            for &l in &stale {
                self.stacks[l].holds.store(v, Ordering::Release);
            }
        }
        Ok(Some(st))
    }

    /// Records the copies of layer `li`'s A and B into its stack (zeros for a target without).
    fn fill_stack(&self, r: &mut Recorder, c: &ModelConfig, li: usize) {
        let (st, h, rank) = (&self.stacks[li], c.hidden_size, self.cfg.r);
        let (qd, kvd, i) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.intermediate_size);
        let parts = [
            (Target::Q, &st.a_qkv, 0, &st.b_qkv, 0, qd),
            (Target::K, &st.a_qkv, 1, &st.b_qkv, qd, kvd),
            (Target::V, &st.a_qkv, 2, &st.b_qkv, qd + kvd, kvd),
            (Target::Gate, &st.a_gate_up, 0, &st.b_gate_up, 0, i),
            (Target::Up, &st.a_gate_up, 1, &st.b_gate_up, i, i),
        ];
        for (target, a, slot, b, row0, rows) in parts {
            let (a_at, a_bytes) = ((slot * rank * h * 4) as u64, (rank * h * 4) as u64);
            let (b_at, b_bytes) = ((row0 * rank * 4) as u64, (rows * rank * 4) as u64);
            match self.module(li, target) {
                Some(m) => {
                    r.copy(&m.a, 0, a, a_at, a_bytes);
                    r.copy(&m.b, 0, b, b_at, b_bytes);
                }
                None => {
                    r.zero_range(a, a_at, a_bytes);
                    r.zero_range(b, b_at, b_bytes);
                }
            }
        }
    }

    /// PEFT's default init: A Kaiming-uniform (a = √5, i.e. U(±1/√in)), B zero, seeded.
    pub fn init(gpu: &Gpu, model: &ModelConfig, cfg: LoraConfig, seed: u64) -> Result<Lora> {
        let r = cfg.r;
        Lora::from_values(gpu, model, cfg, |l, t| {
            let (d_in, d_out) = t.dims(model);
            let bound = 1.0 / (d_in as f64).sqrt();
            let stream = seed ^ ((l as u64) << 8 | t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let a = (0..r * d_in)
                .map(|i| {
                    ((super::generate::uniform(stream, i as u64) * 2.0 - 1.0) * bound) as f32
                })
                .collect();
            Ok((a, vec![0.0; d_out * r]))
        })
    }

    pub fn module(&self, layer: usize, t: Target) -> Option<&LoraModule> {
        self.layers.get(layer).and_then(|m| m[t as usize].as_ref())
    }

    /// Every module with its PEFT name prefix, in a fixed order.
    pub fn modules(&self) -> impl Iterator<Item = (usize, Target, &LoraModule)> {
        self.layers.iter().enumerate().flat_map(|(l, m)| {
            Target::ALL
                .into_iter()
                .filter_map(move |t| m[t as usize].as_ref().map(|x| (l, t, x)))
        })
    }

    pub fn num_params(&self) -> usize {
        self.modules()
            .map(|(_, _, m)| self.cfg.r * (m.d_in + m.d_out))
            .sum()
    }
}
