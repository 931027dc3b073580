//! A session's GRPO step on rows with images (`edgerl_session_step_rows_images`): the rows'
//! image places take the app's pixels in order across the rows, or a row's own `images` column
//! (files, as `edgerl train` reads them); each prompt's features come from the session's image
//! side once and serve its sampling, refills and updates.

use std::ffi::{c_char, c_void};

use super::images::{EdgerlImage, read_images};
use super::session::{EdgerlRewardFn, EdgerlStepMetrics, Input, Session, finish, step};
use super::{Fail, Res, get_session, guard, invalid, text};
use crate::data::dataset::{Prompt, Row};
use crate::data::template::ContentPart;
use crate::gpu::Gpu;
use crate::model::Tokenizer;
use crate::rl::rollouts::ImageFeatures;
use crate::vision::preprocess::RgbImage;

/// One GRPO step on dataset rows whose image places take `images`; see edgerl.h.
///
/// # Safety
/// `rows_json` is a NUL-terminated string; `images` is NULL or valid for `n_images`
/// `edgerl_image`s (each as `edgerl_score_images` says); `metrics` is NULL or valid for a
/// write; `cb` is NULL or a function that may be called with `user_data` on this thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_session_step_rows_images(
    session: u64,
    rows_json: *const c_char,
    images: *const EdgerlImage,
    n_images: usize,
    cb: EdgerlRewardFn,
    user_data: *mut c_void,
    metrics: *mut EdgerlStepMetrics,
) -> i32 {
    guard(|| {
        let t0 = std::time::Instant::now();
        let s = get_session(session)?;
        let rows_json = unsafe { text(rows_json, "rows_json") }?;
        // SAFETY: as the function's contract says.
        let images = unsafe { read_images(images, n_images) }?;
        if !images.is_empty() && s.vision.is_none() {
            return Err(Fail::from(crate::vision::model::no_tower()));
        }
        let out = step(&s, Input::Rows(rows_json, images), cb, user_data, t0)?;
        // SAFETY: as the function's contract says, `metrics` is NULL or valid for a write.
        unsafe { finish(out, metrics) }
    })
}

/// The image places of a row's prompt: `{"type": "image"}` parts, or `<image>` in text (as
/// `data::dataset::parse_line` counts them against an `images` column).
fn places(prompt: &Prompt) -> usize {
    match prompt {
        Prompt::Text(t) => t.matches("<image>").count(),
        Prompt::Chat(m) => m.iter().map(|m| m.content.matches("<image>").count()).sum(),
        Prompt::Parts(m) => m.iter().flat_map(|m| &m.content).filter(|p| **p == ContentPart::Image).count(),
    }
}

/// The rows' prompts as ids and image features. A row with an `images` column reads its files
/// (relative to the current directory); the image places of the other rows take `images` in
/// order, which must fill them exactly. On a text model with no images anywhere, `<image>` is
/// text like any other, as `edgerl train` reads it. Everything is checked before the tower runs.
pub(super) fn row_prompts(
    s: &Session,
    gpu: &Gpu,
    tok: &Tokenizer,
    rows: &[Row],
    images: Vec<RgbImage>,
) -> Res<Vec<(Vec<u32>, Option<ImageFeatures>)>> {
    let vision = s.vision.as_ref();
    let wanted: Vec<usize> = rows
        .iter()
        .map(|r| if r.images.is_empty() && vision.is_some() { places(&r.prompt) } else { 0 })
        .collect();
    let total: usize = wanted.iter().sum();
    if total != images.len() {
        let per_row: Vec<String> =
            wanted.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| format!("rows_json[{i}]: {n}")).collect();
        return Err(invalid(format!(
            "{} images for {total} image places in the rows without an `images` column ({}): the rows' `{{\"type\": \"image\"}}` parts and `<image>`s take the images in order",
            images.len(),
            if per_row.is_empty() { "none".to_string() } else { per_row.join(", ") }
        )));
    }
    let mut left = images.into_iter();
    let mut out = Vec::with_capacity(rows.len());
    for (i, (row, n)) in rows.iter().zip(wanted).enumerate() {
        let own: Vec<RgbImage> = left.by_ref().take(n).collect();
        let at = |e: crate::error::Error| {
            let Fail(c, m) = Fail::from(s.model.rt.explain(e));
            Fail(c, format!("rows_json[{i}]: {m}"))
        };
        let (ids, features) = if row.images.is_empty() && own.is_empty() {
            (crate::rl::rollout::prompt_ids(tok, &row.prompt).map_err(at)?, None)
        } else {
            s.check_cancel()?;
            let _g = s.model.rt.lock();
            if own.is_empty() {
                crate::rl::rollout::prompt_with_images(gpu, tok, vision, &row.prompt, &row.images).map_err(at)?
            } else {
                crate::rl::rollout::prompt_with_pixels(gpu, tok, vision, &row.prompt, &own).map_err(at)?
            }
        };
        if ids.is_empty() {
            return Err(invalid(format!("rows_json[{i}]: the prompt tokenizes to nothing")));
        }
        out.push((ids, features.map(|f| ImageFeatures(std::sync::Arc::new(f)))));
    }
    Ok(out)
}
