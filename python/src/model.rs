//! `Model`: a model on the process's device, with `generate` and `score` as the CLI's.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use edgerl::Error;
use edgerl::data::{ContentPart, Message, PartsMessage};
use edgerl::gpu::{DType, Gpu, GpuBuffer};
use edgerl::lora::Lora;
use edgerl::model::{LoadedModel, SamplingOptions};
use edgerl::vision::ImageSide;
use edgerl::vision::preprocess::RgbImage;

use crate::{Unchecked, gpu, gpu_lock, invalid, to_py};

#[pyclass(module = "edgerl._edgerl")]
pub struct Model {
    m: LoadedModel,
    lora: Option<Lora>,
    #[pyo3(get)]
    path: String,
}

fn parse_dtype(s: Option<&str>) -> Result<Option<DType>, Error> {
    s.map(|o| {
        DType::from_name(o).ok_or_else(|| {
            Error::Invalid(format!("dtype {o:?}: expected f32, f16, bf16, q8_0, q5_0, q4_0, q4_1, q4_k or q6_k"))
        })
    })
    .transpose()
}

/// A prompt: `prompt` (a string, tokenized with the special tokens as `score`), or `chat` (one
/// user message, or a list of (role, content) messages, or messages with content parts as
/// JSON, rendered with the chat template and the generation prompt).
pub(crate) enum PromptArg {
    Text(String),
    User(String),
    Messages(Vec<Message>),
    Parts(Vec<PartsMessage>),
}

impl PromptArg {
    pub(crate) fn new(
        prompt: Option<String>,
        chat: Option<String>,
        messages: Option<Vec<(String, String)>>,
        parts_json: Option<String>,
    ) -> PyResult<PromptArg> {
        Ok(match (prompt, chat, messages, parts_json) {
            (Some(p), None, None, None) => PromptArg::Text(p),
            (None, Some(c), None, None) => PromptArg::User(c),
            (None, None, Some(m), None) => {
                if m.is_empty() {
                    return Err(invalid("`chat` is an empty message list"));
                }
                PromptArg::Messages(m.into_iter().map(|(role, content)| Message { role, content }).collect())
            }
            (None, None, None, Some(j)) => {
                let m: Vec<PartsMessage> = serde_json::from_str(&j).map_err(|e| {
                    invalid(format!(
                        "`chat`: each message needs a string `role` and a `content` that is a string or a list of parts ({{\"type\": \"text\", \"text\": …}} or {{\"type\": \"image\"}}): {e}"
                    ))
                })?;
                if m.is_empty() {
                    return Err(invalid("`chat` is an empty message list"));
                }
                PromptArg::Parts(m)
            }
            (None, None, None, None) => return Err(invalid("give `prompt` or `chat`")),
            _ => return Err(invalid("give either `prompt` or `chat`, not both")),
        })
    }
}

/// An image as the Python side hands it over: a file (PNG or JPEG, decoded with the GIL
/// released, as `--image` does), or pixels already decoded.
pub(crate) enum ImageArg {
    File(PathBuf),
    Pixels(RgbImage),
}

/// The `images` argument: each a path (str), or `(width, height, channels, bytes)` with
/// interleaved 8-bit RGB (3 channels) or RGBA (4; composited onto white as transformers'
/// `convert_to_rgb`) rows top to bottom. The pixels are checked (and copied) here.
pub(crate) fn image_args(images: Option<Vec<Bound<'_, PyAny>>>) -> PyResult<Vec<ImageArg>> {
    let Some(images) = images else { return Ok(Vec::new()) };
    images
        .iter()
        .enumerate()
        .map(|(i, obj)| {
            if let Ok(t) = obj.downcast::<PyTuple>() {
                let (w, h, c, bytes): (usize, usize, usize, Bound<'_, PyBytes>) = t
                    .extract()
                    .map_err(|_| invalid(format!("image {i}: expected (width, height, channels, bytes)")))?;
                let px = bytes.as_bytes();
                let img = match c {
                    3 => RgbImage::from_rgb(w, h, px.to_vec()),
                    4 => RgbImage::from_rgba(w, h, px),
                    _ => Err(Error::Invalid(format!("{c} channels: expected 3 (RGB) or 4 (RGBA)"))),
                };
                return img.map(ImageArg::Pixels).map_err(|e| invalid(format!("image {i}: {e}")));
            }
            obj.extract::<PathBuf>()
                .map(ImageArg::File)
                .map_err(|_| invalid(format!("image {i}: expected an image file's path or pixels, got {}", obj.get_type())))
        })
        .collect()
}

/// The images decoded (files read now, as the CLI reads `--image` files before GPU work).
pub(crate) fn decode_images(images: Vec<ImageArg>) -> Result<Vec<RgbImage>, Error> {
    images
        .into_iter()
        .map(|a| match a {
            ImageArg::File(p) => RgbImage::open(&p),
            ImageArg::Pixels(img) => Ok(img),
        })
        .collect()
}

/// What generate and score run on: a model's weights and tokenizer, and an adapter.
pub(crate) struct Target<'a> {
    pub model: &'a edgerl::model::Model,
    pub tokenizer: &'a edgerl::model::Tokenizer,
    pub eos: &'a [u32],
    pub lora: Option<&'a Lora>,
    /// A vision-language model's processor and tower (`None`: a text model).
    pub vision: Option<&'a ImageSide>,
}

/// `text` tokenized (`special`: with the special tokens) with `images` in its `<image>` places,
/// and the features of its image tokens (`LoadedModel::encode_with_images`).
fn encode_on(gpu: &Gpu, t: &Target, text: &str, images: &[RgbImage], special: bool) -> Result<(Vec<u32>, Option<GpuBuffer>), Error> {
    if images.is_empty() {
        return Ok((t.tokenizer.encode(text, special)?, None));
    }
    let side = t.vision.ok_or_else(edgerl::vision::model::no_tower)?;
    let (ids, features) = side.encode_text(gpu, t.tokenizer, text, special, images)?;
    Ok((ids, Some(features)))
}

/// A prompt's ids and image features, as `edgerl generate` makes them: `--prompt` with its
/// `<image>` places; `--chat` with the images before the user's text
/// (`LoadedModel::chat_with_images`); messages rendered with the chat template (`<image>` in a
/// string content, or image parts), as a dataset's chat prompt.
fn prompt_on(gpu: &Gpu, t: &Target, arg: &PromptArg, images: &[RgbImage]) -> Result<(Vec<u32>, Option<GpuBuffer>), Error> {
    match arg {
        PromptArg::Text(p) => encode_on(gpu, t, p, images, true),
        PromptArg::User(c) if images.is_empty() => Ok((t.tokenizer.chat_ids(c)?, None)),
        PromptArg::User(c) => {
            let mut content = vec![ContentPart::Image; images.len()];
            content.push(ContentPart::Text { text: c.clone() });
            let text = t.tokenizer.render_parts(&[PartsMessage { role: "user".into(), content }], true)?;
            encode_on(gpu, t, &text, images, false)
        }
        PromptArg::Messages(m) => encode_on(gpu, t, &t.tokenizer.messages_text(m)?, images, false),
        PromptArg::Parts(m) => encode_on(gpu, t, &t.tokenizer.parts_text(m)?, images, false),
    }
}

/// `edgerl generate`: the new ids and their text.
pub(crate) fn generate_on(t: Target, arg: &PromptArg, images: Vec<ImageArg>, opts: &SamplingOptions) -> Result<(Vec<u32>, String), Error> {
    let images = decode_images(images)?;
    let gpu = gpu()?;
    let _g = gpu_lock();
    let (ids, features) = prompt_on(gpu, &t, arg, &images)?;
    let new_ids = edgerl::model::generate::generate_with_images(gpu, t.model, t.lora, &ids, features.as_ref(), t.eos, opts)?;
    let text = t.tokenizer.decode(&new_ids)?;
    Ok((new_ids, text))
}

/// `edgerl score`: the ids and each one's log-prob given the ones before.
pub(crate) fn score_on(t: Target, text: &str, images: Vec<ImageArg>) -> Result<(Vec<u32>, Vec<f32>), Error> {
    let images = decode_images(images)?;
    let gpu = gpu()?;
    let _g = gpu_lock();
    let (ids, features) = encode_on(gpu, &t, text, &images, true)?;
    if ids.is_empty() {
        return Err(Error::Invalid("the text tokenizes to nothing".into()));
    }
    let mut cache = t.model.new_cache(gpu, ids.len())?;
    let hidden = t.model.forward_with_images(gpu, &ids, features.as_ref(), &mut cache, t.lora)?;
    let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
    let lp = if targets.is_empty() { vec![] } else { t.model.target_logprobs(gpu, &hidden, &targets, 1.0)? };
    Ok((ids, lp))
}

impl Model {
    fn target(&self) -> Target<'_> {
        let m = &self.m;
        Target { model: &m.model, tokenizer: &m.tokenizer, eos: &m.eos, lora: self.lora.as_ref(), vision: m.vision.as_ref() }
    }
}

#[pymethods]
impl Model {
    /// `Model(path, adapter=None, dtype=None)`: a Hugging Face directory or a `.gguf` file, as
    /// the CLI's `--model`; `adapter` a PEFT LoRA directory; `dtype="f16"` stores an f32
    /// checkpoint's matrices as f16.
    #[new]
    #[pyo3(signature = (path, adapter=None, dtype=None))]
    fn new(py: Python<'_>, path: PathBuf, adapter: Option<PathBuf>, dtype: Option<String>) -> PyResult<Model> {
        let dt = parse_dtype(dtype.as_deref()).map_err(to_py)?;
        let p = path.clone();
        let (m, lora) = py
            .allow_threads(move || -> Result<_, Error> {
                let gpu = gpu()?;
                let _g = gpu_lock();
                let m = LoadedModel::open(gpu, &p, dt)?;
                let lora = adapter.as_ref().map(|d| Lora::load_peft(gpu, d, &m.model.cfg)).transpose()?;
                Ok(Unchecked((m, lora)))
            })
            .map_err(to_py)?
            .0;
        Ok(Model { m, lora, path: path.to_string_lossy().into_owned() })
    }

    /// `(new_ids, text)`: up to `max_new_tokens` after the prompt, stopping at EOS; temperature
    /// 0 is greedy; the same seed on the same device gives the same tokens. `images`: see
    /// `image_args`.
    #[pyo3(signature = (prompt=None, chat=None, messages=None, parts_json=None, images=None, max_new_tokens=64, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn _generate(
        &mut self,
        py: Python<'_>,
        prompt: Option<String>,
        chat: Option<String>,
        messages: Option<Vec<(String, String)>>,
        parts_json: Option<String>,
        images: Option<Vec<Bound<'_, PyAny>>>,
        max_new_tokens: usize,
        temperature: f32,
        top_k: usize,
        top_p: f32,
        min_p: f32,
        seed: u64,
    ) -> PyResult<(Vec<u32>, String)> {
        let arg = PromptArg::new(prompt, chat, messages, parts_json)?;
        let opts = SamplingOptions { max_new_tokens, temperature, top_k, top_p, min_p, seed };
        opts.validate().map_err(to_py)?;
        let images = image_args(images)?;
        let this = Unchecked(&mut *self);
        py.allow_threads(move || {
            let this = this;
            generate_on(this.0.target(), &arg, images, &opts)
        })
        .map_err(to_py)
    }

    /// `(ids, token_logprobs)` as `edgerl score --json`: ids as `tokenizer(text)` gives them
    /// (each `<image>` expanded for its image), `token_logprobs[i] = log p(ids[i+1] | ids[..=i])`.
    #[pyo3(signature = (text, images=None))]
    fn _score(&mut self, py: Python<'_>, text: String, images: Option<Vec<Bound<'_, PyAny>>>) -> PyResult<(Vec<u32>, Vec<f32>)> {
        let images = image_args(images)?;
        let this = Unchecked(&mut *self);
        py.allow_threads(move || {
            let this = this;
            score_on(this.0.target(), &text, images)
        })
        .map_err(to_py)
    }

    /// Whether the model has a vision tower (takes images).
    #[getter]
    fn has_vision(&self) -> bool {
        self.m.vision.is_some()
    }

    /// The tokenizer's ids for `text` (`add_special_tokens` as transformers' flag).
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn encode(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        self.m.tokenizer.encode(text, add_special_tokens).map_err(to_py)
    }

    /// The text of `ids` (special tokens dropped).
    fn decode(&self, ids: Vec<u32>) -> PyResult<String> {
        self.m.tokenizer.decode(&ids).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!("edgerl.Model({:?})", self.path)
    }
}
