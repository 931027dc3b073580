//! The tower's tensors (names without the checkpoint's `model.` prefix, shapes from the config),
//! written once: the loader (`weights`) and the memory plan (`plan`) both read this list.

use super::VisionConfig;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TowerTensor {
    pub name: String,
    /// As stored; a matrix is [shape[0], product of the rest] on the GPU (the Conv2d weight is
    /// 4-D in the file).
    pub shape: Vec<usize>,
    /// A matrix (checkpoint type or the override, split by rows) or an f32 vector.
    pub matrix: bool,
}

impl TowerTensor {
    fn matrix(name: String, shape: &[usize]) -> TowerTensor {
        TowerTensor { name, shape: shape.to_vec(), matrix: true }
    }
    fn vector(name: String, len: usize) -> TowerTensor {
        TowerTensor { name, shape: vec![len], matrix: false }
    }
    pub fn rows(&self) -> usize {
        self.shape[0]
    }
    pub fn cols(&self) -> usize {
        self.shape[1..].iter().product()
    }
}

pub struct LayerTensors {
    pub ln1_weight: TowerTensor,
    pub ln1_bias: TowerTensor,
    pub q: TowerTensor,
    pub q_bias: TowerTensor,
    pub k: TowerTensor,
    pub k_bias: TowerTensor,
    pub v: TowerTensor,
    pub v_bias: TowerTensor,
    pub o: TowerTensor,
    pub o_bias: TowerTensor,
    pub ln2_weight: TowerTensor,
    pub ln2_bias: TowerTensor,
    pub fc1: TowerTensor,
    pub fc1_bias: TowerTensor,
    pub fc2: TowerTensor,
    pub fc2_bias: TowerTensor,
}

pub struct GlobalTensors {
    pub patch: TowerTensor,
    pub patch_bias: TowerTensor,
    pub position: TowerTensor,
    pub post_weight: TowerTensor,
    pub post_bias: TowerTensor,
    pub projection: TowerTensor,
}

impl LayerTensors {
    pub fn into_list(self) -> [TowerTensor; 16] {
        let l = self;
        [
            l.ln1_weight, l.ln1_bias, l.q, l.q_bias, l.k, l.k_bias, l.v, l.v_bias, l.o, l.o_bias,
            l.ln2_weight, l.ln2_bias, l.fc1, l.fc1_bias, l.fc2, l.fc2_bias,
        ]
    }
}

impl GlobalTensors {
    pub fn into_list(self) -> [TowerTensor; 6] {
        let g = self;
        [g.patch, g.patch_bias, g.position, g.post_weight, g.post_bias, g.projection]
    }
}

impl VisionConfig {
    pub fn global_tensors(&self) -> GlobalTensors {
        let (d, c, p, n) = (self.hidden_size, self.num_channels, self.patch_size, self.patches_per_side());
        let e = |s: &str| format!("vision_model.embeddings.{s}");
        GlobalTensors {
            patch: TowerTensor::matrix(e("patch_embedding.weight"), &[d, c, p, p]),
            patch_bias: TowerTensor::vector(e("patch_embedding.bias"), d),
            position: TowerTensor::matrix(e("position_embedding.weight"), &[n * n, d]),
            post_weight: TowerTensor::vector("vision_model.post_layernorm.weight".into(), d),
            post_bias: TowerTensor::vector("vision_model.post_layernorm.bias".into(), d),
            projection: TowerTensor::matrix(
                "connector.modality_projection.proj.weight".into(),
                &[self.text_hidden_size, self.connector_dim()],
            ),
        }
    }

    pub fn layer_tensors(&self, li: usize) -> LayerTensors {
        let (d, i) = (self.hidden_size, self.intermediate_size);
        let s = |x: &str| format!("vision_model.encoder.layers.{li}.{x}");
        let m = |x: &str, shape: &[usize]| TowerTensor::matrix(s(x), shape);
        let v = |x: &str, len: usize| TowerTensor::vector(s(x), len);
        LayerTensors {
            ln1_weight: v("layer_norm1.weight", d),
            ln1_bias: v("layer_norm1.bias", d),
            q: m("self_attn.q_proj.weight", &[d, d]),
            q_bias: v("self_attn.q_proj.bias", d),
            k: m("self_attn.k_proj.weight", &[d, d]),
            k_bias: v("self_attn.k_proj.bias", d),
            v: m("self_attn.v_proj.weight", &[d, d]),
            v_bias: v("self_attn.v_proj.bias", d),
            o: m("self_attn.out_proj.weight", &[d, d]),
            o_bias: v("self_attn.out_proj.bias", d),
            ln2_weight: v("layer_norm2.weight", d),
            ln2_bias: v("layer_norm2.bias", d),
            fc1: m("mlp.fc1.weight", &[i, d]),
            fc1_bias: v("mlp.fc1.bias", i),
            fc2: m("mlp.fc2.weight", &[d, i]),
            fc2_bias: v("mlp.fc2.bias", d),
        }
    }

    /// Every tower tensor, globals then layer by layer.
    pub fn tower_tensors(&self) -> impl Iterator<Item = TowerTensor> + '_ {
        let layers = (0..self.num_layers).flat_map(|li| self.layer_tensors(li).into_list());
        self.global_tensors().into_list().into_iter().chain(layers)
    }
}
