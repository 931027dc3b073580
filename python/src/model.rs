//! `Model`: a model on the process's device, with `generate` and `score` as the CLI's.

use std::path::PathBuf;

use pyo3::prelude::*;

use edgerl::Error;
use edgerl::data::Message;
use edgerl::gpu::DType;
use edgerl::lora::Lora;
use edgerl::model::{LoadedModel, SamplingOptions};

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
/// user message, or a list of (role, content) messages, rendered with the chat template and
/// the generation prompt).
pub(crate) enum PromptArg {
    Text(String),
    User(String),
    Messages(Vec<Message>),
}

impl PromptArg {
    pub(crate) fn new(prompt: Option<String>, chat: Option<String>, messages: Option<Vec<(String, String)>>) -> PyResult<PromptArg> {
        Ok(match (prompt, chat, messages) {
            (Some(p), None, None) => PromptArg::Text(p),
            (None, Some(c), None) => PromptArg::User(c),
            (None, None, Some(m)) => {
                if m.is_empty() {
                    return Err(invalid("`chat` is an empty message list"));
                }
                PromptArg::Messages(m.into_iter().map(|(role, content)| Message { role, content }).collect())
            }
            (None, None, None) => return Err(invalid("give `prompt` or `chat`")),
            _ => return Err(invalid("give either `prompt` or `chat`, not both")),
        })
    }
}

/// What generate and score run on: a model's weights and tokenizer, and an adapter.
pub(crate) struct Target<'a> {
    pub model: &'a edgerl::model::Model,
    pub tokenizer: &'a edgerl::model::Tokenizer,
    pub eos: &'a [u32],
    pub lora: Option<&'a Lora>,
}

/// `edgerl generate`: the new ids and their text.
pub(crate) fn generate_on(t: Target, arg: &PromptArg, opts: &SamplingOptions) -> Result<(Vec<u32>, String), Error> {
    let gpu = gpu()?;
    let ids = match arg {
        PromptArg::Text(p) => t.tokenizer.encode(p, true)?,
        PromptArg::User(c) => t.tokenizer.chat_ids(c)?,
        PromptArg::Messages(msgs) => t.tokenizer.messages_ids(msgs)?,
    };
    let _g = gpu_lock();
    let new_ids = edgerl::model::generate(gpu, t.model, t.lora, &ids, t.eos, opts)?;
    let text = t.tokenizer.decode(&new_ids)?;
    Ok((new_ids, text))
}

/// `edgerl score`: the ids and each one's log-prob given the ones before.
pub(crate) fn score_on(t: Target, text: &str) -> Result<(Vec<u32>, Vec<f32>), Error> {
    let gpu = gpu()?;
    let ids = t.tokenizer.encode(text, true)?;
    if ids.is_empty() {
        return Err(Error::Invalid("the text tokenizes to nothing".into()));
    }
    let _g = gpu_lock();
    let mut cache = t.model.new_cache(gpu, ids.len())?;
    let hidden = t.model.forward(gpu, &ids, &mut cache, t.lora)?;
    let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
    let lp = if targets.is_empty() { vec![] } else { t.model.target_logprobs(gpu, &hidden, &targets, 1.0)? };
    Ok((ids, lp))
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
    /// 0 is greedy; the same seed on the same device gives the same tokens.
    #[pyo3(signature = (prompt=None, chat=None, messages=None, max_new_tokens=64, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn _generate(
        &mut self,
        py: Python<'_>,
        prompt: Option<String>,
        chat: Option<String>,
        messages: Option<Vec<(String, String)>>,
        max_new_tokens: usize,
        temperature: f32,
        top_k: usize,
        top_p: f32,
        min_p: f32,
        seed: u64,
    ) -> PyResult<(Vec<u32>, String)> {
        let arg = PromptArg::new(prompt, chat, messages)?;
        let opts = SamplingOptions { max_new_tokens, temperature, top_k, top_p, min_p, seed };
        opts.validate().map_err(to_py)?;
        let this = Unchecked(&mut *self);
        py.allow_threads(move || {
            let this = this;
            let Model { m, lora, .. } = this.0;
            generate_on(Target { model: &m.model, tokenizer: &m.tokenizer, eos: &m.eos, lora: lora.as_ref() }, &arg, &opts)
        })
        .map_err(to_py)
    }

    /// `(ids, token_logprobs)` as `edgerl score --json`: ids as `tokenizer(text)` gives them,
    /// `token_logprobs[i] = log p(ids[i+1] | ids[..=i])`.
    fn _score(&mut self, py: Python<'_>, text: String) -> PyResult<(Vec<u32>, Vec<f32>)> {
        let this = Unchecked(&mut *self);
        py.allow_threads(move || {
            let this = this;
            let Model { m, lora, .. } = this.0;
            score_on(Target { model: &m.model, tokenizer: &m.tokenizer, eos: &m.eos, lora: lora.as_ref() }, &text)
        })
        .map_err(to_py)
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
