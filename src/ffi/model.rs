//! Models over the C ABI: loading, and generate / score (text, or text with images for a
//! vision-language model) on the base model or a session's adapter.

use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{
    EDGERL_ERR_BUFFER_TOO_SMALL, EDGERL_ERR_BUSY, EDGERL_PROMPT_CHAT, EDGERL_PROMPT_RAW, Entry,
    Fail, ModelEntry, Res, Slot, copy_out, get_model, get_runtime, get_session, guard, invalid,
    issue, put, release, text, this_call,
};
use crate::gpu::Gpu;
use crate::lora::Lora;
use crate::model::{LoadedModel, Model, SamplingOptions, Tokenizer};
use crate::vision::ImageSide;
use crate::vision::preprocess::RgbImage;

use super::images::{EdgerlImage, read_images};

/// A generate or score request: what makes a result the same one again (the images as RGB,
/// after compositing: pixels that composite alike give the same result).
#[derive(PartialEq)]
enum Request {
    Generate { model: u64, session: u64, prompt: String, images: Vec<RgbImage>, flags: u32, max_new: u32, temperature: u32, seed: u64 },
    Score { model: u64, session: u64, text: String, images: Vec<RgbImage> },
}

enum Output {
    Text(String),
    Logprobs(Vec<f32>),
}

/// A result that did not fit the caller's buffer, with the request and the call
/// (`this_call`) that computed it.
struct Kept {
    call: u64,
    request: Request,
    result: Output,
}

thread_local! {
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    static COMPUTED: Cell<u64> = const { Cell::new(0) };
}

/// The result kept by the thread's previous call, if that call made the same request; drops
/// whatever was kept either way.
fn take_kept(request: &Request) -> Option<Output> {
    let k = KEPT.with(|k| k.borrow_mut().take())?;
    (k.call + 1 == this_call() && k.request == *request).then_some(k.result)
}

fn keep(request: Request, result: Output) {
    KEPT.with(|k| *k.borrow_mut() = Some(Kept { call: this_call(), request, result }));
}

/// How many generate / score results this thread has computed (not handed over from a kept
/// one): lets tests tell the two apart.
#[doc(hidden)]
pub fn computations_on_this_thread() -> u64 {
    COMPUTED.with(|c| c.get())
}

fn count_computation() {
    COMPUTED.with(|c| c.set(c.get() + 1));
}

/// # Safety
/// `path` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_model_load(
    runtime: u64,
    path: *const c_char,
    out: *mut u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("`out` is NULL"));
        }
        let rt = get_runtime(runtime)?;
        let path = PathBuf::from(unsafe { text(path, "path") }?);
        let m = {
            let _g = rt.lock();
            LoadedModel::open(&rt.gpu, &path, None).map_err(|e| rt.explain(e))?
        };
        let id = issue(Entry::Model(Arc::new(ModelEntry {
            rt,
            path,
            slot: Mutex::new(Slot::Here(Box::new(m))),
        })));
        unsafe { put(out, "out", id) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn edgerl_model_free(model: u64) -> i32 {
    guard(|| release(model, "a model", |e| matches!(e, Entry::Model(_))))
}

/// What generate and score run on: the model's weights, its tokenizer, and an adapter.
struct Target<'a> {
    gpu: &'a Gpu,
    model: &'a Model,
    tokenizer: &'a Tokenizer,
    eos: &'a [u32],
    lora: Option<&'a Lora>,
    /// The processor and vision tower of a vision-language model.
    vision: Option<&'a ImageSide>,
}

/// Runs `f` on the base model (`session` 0) or on a session's model and adapter, holding the
/// runtime's GPU lock. A model lent to a session is reached through that session.
fn with_target<T>(model: u64, session: u64, f: impl FnOnce(Target) -> Res<T>) -> Res<T> {
    let (s, use_adapter) = if session != 0 {
        let s = get_session(session)?;
        if model != 0 && model != s.model_id {
            return Err(invalid(format!(
                "session {session} trains model {}, not model {model}",
                s.model_id
            )));
        }
        (s, true)
    } else {
        let m = get_model(model)?;
        let slot = m.slot.lock().unwrap_or_else(|e| e.into_inner());
        let sid = match &*slot {
            Slot::Here(lm) => {
                let _g = m.rt.lock();
                return f(Target {
                    gpu: &m.rt.gpu,
                    model: &lm.model,
                    tokenizer: &lm.tokenizer,
                    eos: &lm.eos,
                    lora: None,
                    vision: lm.vision.as_ref(),
                });
            }
            Slot::Lent(sid) => *sid,
        };
        drop(slot);
        let s = get_session(sid).map_err(|_| {
            Fail(
                EDGERL_ERR_BUSY,
                format!("model {model} is being handed back by session {sid}; try again"),
            )
        })?;
        (s, false)
    };
    s.with_trainer(|t| {
        let run = || {
            let _g = s.model.rt.lock();
            let tokenizer = t
                .tokenizer
                .as_ref()
                .ok_or_else(|| invalid("the session's model has no tokenizer"))?;
            f(Target {
                gpu: t.gpu,
                model: &t.model,
                tokenizer,
                eos: &t.eos,
                lora: use_adapter.then_some(&t.lora),
                vision: s.vision.as_ref(),
            })
        };
        // A call on the session (not on a model it borrows) can be cancelled, e.g. in a render.
        if use_adapter { s.cancellable(run) } else { run() }
    })
}

pub(super) fn prompt_ids(tok: &Tokenizer, prompt: &str, flags: u32) -> Res<Vec<u32>> {
    let ids = match flags {
        EDGERL_PROMPT_RAW => tok.encode(prompt, true)?,
        EDGERL_PROMPT_CHAT => tok.chat_ids(prompt)?,
        f => {
            return Err(invalid(format!(
                "unknown prompt flags {f}: expected EDGERL_PROMPT_RAW or EDGERL_PROMPT_CHAT"
            )));
        }
    };
    if ids.is_empty() {
        return Err(invalid("the prompt tokenizes to nothing"));
    }
    Ok(ids)
}

/// Generates up to `max_new_tokens` after `prompt` (temperature 0: greedy). The text (special
/// tokens dropped) goes to `out`, NUL-terminated; `*needed` gets its full length in bytes
/// without the NUL. When it doesn't fit, `out` holds a prefix, the call returns
/// `EDGERL_ERR_BUFFER_TOO_SMALL` and the text is kept for the thread's next call (see edgerl.h).
///
/// # Safety
/// `prompt` is a NUL-terminated string; `out` is NULL or valid for `out_len` bytes; `needed`
/// is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_generate(
    model: u64,
    session: u64,
    prompt: *const c_char,
    flags: u32,
    max_new_tokens: u32,
    temperature: f32,
    seed: u64,
    out: *mut c_char,
    out_len: usize,
    needed: *mut usize,
) -> i32 {
    guard(|| {
        let prompt = unsafe { text(prompt, "prompt") }?;
        let args = Gen { model, session, flags, max_new_tokens, temperature, seed };
        unsafe { generate(args, prompt, Vec::new(), out, out_len, needed) }
    })
}

/// `edgerl_generate` with images: `EDGERL_PROMPT_RAW` prompts hold one `<image>` per image,
/// `EDGERL_PROMPT_CHAT` ones get the images before the user's text.
///
/// # Safety
/// As `edgerl_generate`; `images` is NULL or valid for `n_images` `edgerl_image`s whose
/// pixels are valid as the header says.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_generate_images(
    model: u64,
    session: u64,
    prompt: *const c_char,
    images: *const EdgerlImage,
    n_images: usize,
    flags: u32,
    max_new_tokens: u32,
    temperature: f32,
    seed: u64,
    out: *mut c_char,
    out_len: usize,
    needed: *mut usize,
) -> i32 {
    guard(|| {
        let prompt = unsafe { text(prompt, "prompt") }?;
        let images = unsafe { read_images(images, n_images) }?;
        let args = Gen { model, session, flags, max_new_tokens, temperature, seed };
        unsafe { generate(args, prompt, images, out, out_len, needed) }
    })
}

/// The scalar arguments of a generate call.
struct Gen {
    model: u64,
    session: u64,
    flags: u32,
    max_new_tokens: u32,
    temperature: f32,
    seed: u64,
}

/// # Safety
/// As `edgerl_generate`'s `out` and `needed`.
unsafe fn generate(
    g: Gen,
    prompt: &str,
    images: Vec<RgbImage>,
    out: *mut c_char,
    out_len: usize,
    needed: *mut usize,
) -> Res<()> {
    if out.is_null() && out_len > 0 {
        return Err(invalid("`out` is NULL but `out_len` is not 0"));
    }
    let opts = SamplingOptions {
        max_new_tokens: g.max_new_tokens as usize,
        temperature: g.temperature,
        seed: g.seed,
        ..SamplingOptions::default()
    };
    opts.validate()?;
    let request = Request::Generate {
        model: g.model,
        session: g.session,
        prompt: prompt.to_string(),
        images,
        flags: g.flags,
        max_new: g.max_new_tokens,
        temperature: g.temperature.to_bits(),
        seed: g.seed,
    };
    let Request::Generate { images, .. } = &request else { unreachable!() };
    let text = match take_kept(&request) {
        Some(Output::Text(text)) => text,
        _ => with_target(g.model, g.session, |t| {
            count_computation();
            let (ids, features) = if images.is_empty() {
                (prompt_ids(t.tokenizer, prompt, g.flags)?, None)
            } else {
                super::images::encode(t.gpu, t.tokenizer, t.vision, prompt, images, g.flags, true)?
            };
            if ids.is_empty() {
                return Err(invalid("the prompt tokenizes to nothing"));
            }
            if g.max_new_tokens == 0 {
                return Ok(String::new());
            }
            let new_ids = crate::model::generate::generate_with_images(
                t.gpu, t.model, t.lora, &ids, features.as_ref(), t.eos, &opts,
            )?;
            Ok(t.tokenizer.decode(&new_ids)?.replace('\0', ""))
        })?,
    };
    if !needed.is_null() {
        unsafe { needed.write(text.len()) };
    }
    if unsafe { copy_out(&text, out, out_len) } {
        return Ok(());
    }
    let msg = format!(
        "the text needs {} bytes and a NUL; `out_len` is {out_len}: it is kept for the next call with the same arguments",
        text.len()
    );
    keep(request, Output::Text(text));
    Err(Fail(EDGERL_ERR_BUFFER_TOO_SMALL, msg))
}

/// Log-probs of each token of `text` (tokenized with special tokens) given the ones before:
/// `*n` gets the count (tokens - 1). When `cap` is smaller, the first `cap` are written and the
/// call returns `EDGERL_ERR_BUFFER_TOO_SMALL`, keeping them as `edgerl_generate` keeps a text;
/// `logprobs` may be NULL with `cap` 0 to ask.
///
/// # Safety
/// `text` is a NUL-terminated string; `logprobs` is NULL or valid for `cap` floats; `n` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_score(
    model: u64,
    session: u64,
    text: *const c_char,
    logprobs: *mut f32,
    cap: usize,
    n: *mut usize,
) -> i32 {
    guard(|| {
        let s = unsafe { self::text(text, "text") }?;
        unsafe { score(model, session, s, Vec::new(), logprobs, cap, n) }
    })
}

/// `edgerl_score` of a text whose `<image>` places take `images`, in order.
///
/// # Safety
/// As `edgerl_score`; `images` as for `edgerl_generate_images`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_score_images(
    model: u64,
    session: u64,
    text: *const c_char,
    images: *const EdgerlImage,
    n_images: usize,
    logprobs: *mut f32,
    cap: usize,
    n: *mut usize,
) -> i32 {
    guard(|| {
        let s = unsafe { self::text(text, "text") }?;
        let images = unsafe { read_images(images, n_images) }?;
        unsafe { score(model, session, s, images, logprobs, cap, n) }
    })
}

/// # Safety
/// As `edgerl_score`'s `logprobs` and `n`.
unsafe fn score(
    model: u64,
    session: u64,
    s: &str,
    images: Vec<RgbImage>,
    logprobs: *mut f32,
    cap: usize,
    n: *mut usize,
) -> Res<()> {
    if n.is_null() {
        return Err(invalid("`n` is NULL"));
    }
    if logprobs.is_null() && cap > 0 {
        return Err(invalid("`logprobs` is NULL but `cap` is not 0"));
    }
    let request = Request::Score { model, session, text: s.to_string(), images };
    let Request::Score { images, .. } = &request else { unreachable!() };
    let lp = match take_kept(&request) {
        Some(Output::Logprobs(lp)) => lp,
        _ => with_target(model, session, |t| {
            count_computation();
            let (ids, features) = if images.is_empty() {
                (t.tokenizer.encode(s, true)?, None)
            } else {
                let raw = super::EDGERL_PROMPT_RAW;
                super::images::encode(t.gpu, t.tokenizer, t.vision, s, images, raw, true)?
            };
            if ids.len() < 2 {
                return Ok(Vec::new());
            }
            let mut cache = t.model.new_cache(t.gpu, ids.len())?;
            let hidden = t.model.forward_with_images(t.gpu, &ids, features.as_ref(), &mut cache, t.lora)?;
            let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
            Ok(t.model.target_logprobs(t.gpu, &hidden, &targets, 1.0)?)
        })?,
    };
    unsafe { n.write(lp.len()) };
    let k = lp.len().min(cap);
    if k > 0 {
        unsafe { std::ptr::copy_nonoverlapping(lp.as_ptr(), logprobs, k) };
    }
    if k < lp.len() {
        let msg = format!(
            "{} log-probs, `cap` is {cap}: they are kept for the next call with the same arguments",
            lp.len()
        );
        keep(request, Output::Logprobs(lp));
        return Err(Fail(EDGERL_ERR_BUFFER_TOO_SMALL, msg));
    }
    Ok(())
}
