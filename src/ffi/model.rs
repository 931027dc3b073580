//! Models over the C ABI: loading, and generate / score on the base model or a session's
//! adapter.

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

/// A generate or score request: what makes a result the same one again.
#[derive(PartialEq)]
enum Request {
    Generate { model: u64, session: u64, prompt: String, flags: u32, max_new: u32, temperature: u32, seed: u64 },
    Score { model: u64, session: u64, text: String },
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
        if out.is_null() && out_len > 0 {
            return Err(invalid("`out` is NULL but `out_len` is not 0"));
        }
        let opts = SamplingOptions {
            max_new_tokens: max_new_tokens as usize,
            temperature,
            seed,
            ..SamplingOptions::default()
        };
        opts.validate()?;
        let request = Request::Generate {
            model,
            session,
            prompt: prompt.to_string(),
            flags,
            max_new: max_new_tokens,
            temperature: temperature.to_bits(),
            seed,
        };
        let text = match take_kept(&request) {
            Some(Output::Text(text)) => text,
            _ => with_target(model, session, |t| {
                count_computation();
                let ids = prompt_ids(t.tokenizer, prompt, flags)?;
                if max_new_tokens == 0 {
                    return Ok(String::new());
                }
                let new_ids = crate::model::generate(t.gpu, t.model, t.lora, &ids, t.eos, &opts)?;
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
    })
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
        if n.is_null() {
            return Err(invalid("`n` is NULL"));
        }
        if logprobs.is_null() && cap > 0 {
            return Err(invalid("`logprobs` is NULL but `cap` is not 0"));
        }
        let request = Request::Score { model, session, text: s.to_string() };
        let lp = match take_kept(&request) {
            Some(Output::Logprobs(lp)) => lp,
            _ => with_target(model, session, |t| {
                count_computation();
                let ids = t.tokenizer.encode(s, true)?;
                if ids.len() < 2 {
                    return Ok(Vec::new());
                }
                let mut cache = t.model.new_cache(t.gpu, ids.len())?;
                let hidden = t.model.forward(t.gpu, &ids, &mut cache, t.lora)?;
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
    })
}
