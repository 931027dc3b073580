//! Images over the C ABI (`edgerl_image`): RGBA pixels from the app, checked and composited
//! onto white as transformers does, and prompts whose `<image>` places they fill.

use super::{EDGERL_PROMPT_CHAT, EDGERL_PROMPT_RAW, Res, invalid};
use crate::gpu::{Gpu, GpuBuffer};
use crate::model::Tokenizer;
use crate::vision::ImageSide;
use crate::vision::preprocess::RgbImage;

/// `edgerl_image`: `height` rows of `width` RGBA pixels (8 bits a channel, not premultiplied),
/// each row `stride_bytes` after the one before (0: `width * 4`, rows packed).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EdgerlImage {
    pub rgba: *const u8,
    pub width: u32,
    pub height: u32,
    pub stride_bytes: u32,
}

/// The longest side an image may have: far beyond what the processor keeps (it resizes to a few
/// hundred pixels a tile), small enough that `width * height * 4` stays well inside memory.
pub const MAX_IMAGE_SIDE: u32 = 16384;

/// The app's images, checked (a NULL array with images, NULL pixels, an empty or oversized
/// image, a stride shorter than a row) and converted to RGB.
///
/// # Safety
/// `images` is NULL or valid for `n` `EdgerlImage`s, each of whose `rgba` is NULL or valid for
/// `(height - 1) * stride + width * 4` bytes.
pub(super) unsafe fn read_images(images: *const EdgerlImage, n: usize) -> Res<Vec<RgbImage>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if images.is_null() {
        return Err(invalid(format!("`images` is NULL but `n_images` is {n}")));
    }
    let images = unsafe { std::slice::from_raw_parts(images, n) };
    images
        .iter()
        .enumerate()
        .map(|(i, im)| unsafe { read_image(im) }.map_err(|msg| invalid(format!("images[{i}]: {msg}"))))
        .collect()
}

/// # Safety
/// As `read_images`, for one image.
unsafe fn read_image(im: &EdgerlImage) -> Result<RgbImage, String> {
    let (w, h) = (im.width, im.height);
    if w == 0 || h == 0 {
        return Err(format!("the image is empty ({w}x{h} pixels)"));
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(format!("{w}x{h} pixels is too large (at most {MAX_IMAGE_SIDE} a side)"));
    }
    if im.rgba.is_null() {
        return Err("`rgba` is NULL".into());
    }
    // Both at most 16384 * 4 and 16384 rows: no product below overflows a u64 or a usize of
    // 64 bits, but a 32-bit one could, hence the checks.
    let row = w as usize * 4;
    let stride = if im.stride_bytes == 0 { row } else { im.stride_bytes as usize };
    if stride < row {
        return Err(format!(
            "`stride_bytes` {stride} is shorter than a row of {w} RGBA pixels ({row} bytes)"
        ));
    }
    let span = (h as usize - 1)
        .checked_mul(stride)
        .and_then(|b| b.checked_add(row))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| format!("{w}x{h} pixels with a stride of {stride} bytes do not fit in memory"))?;
    let bytes = unsafe { std::slice::from_raw_parts(im.rgba, span) };
    let mut rgba = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        rgba.extend_from_slice(&bytes[y * stride..y * stride + row]);
    }
    RgbImage::from_rgba(w as usize, h as usize, &rgba).map_err(|e| e.to_string())
}

/// A prompt's ids and image features: `EDGERL_PROMPT_RAW` takes the text with one `<image>`
/// per image (tokenized with the tokenizer's special tokens, `add_special_tokens`), and
/// `EDGERL_PROMPT_CHAT` one user turn with the images before its text and the generation
/// prompt, as `LoadedModel::encode_with_images` / `chat_with_images` do (written again here
/// because a session holds the tokenizer and the image side without a `LoadedModel`).
pub(super) fn encode(
    gpu: &Gpu,
    tokenizer: &Tokenizer,
    vision: Option<&ImageSide>,
    prompt: &str,
    images: &[RgbImage],
    flags: u32,
    add_special_tokens: bool,
) -> Res<(Vec<u32>, Option<GpuBuffer>)> {
    let side = vision.ok_or_else(|| {
        invalid("this model has no vision tower: images need a vision-language model (Idefics3 / SmolVLM)")
    })?;
    let (text, add_special_tokens) = match flags {
        EDGERL_PROMPT_RAW => (prompt.to_string(), add_special_tokens),
        EDGERL_PROMPT_CHAT => {
            use crate::data::template::{ContentPart, PartsMessage};
            let mut content = vec![ContentPart::Image; images.len()];
            content.push(ContentPart::Text { text: prompt.to_string() });
            let text = tokenizer.render_parts(&[PartsMessage { role: "user".into(), content }], true)?;
            (text, false)
        }
        f => {
            return Err(invalid(format!(
                "unknown prompt flags {f}: expected EDGERL_PROMPT_RAW or EDGERL_PROMPT_CHAT"
            )));
        }
    };
    let enc = side.encode(gpu, images)?;
    let expanded = side.expand(&text, &enc.layouts)?;
    Ok((tokenizer.encode(&expanded, add_special_tokens)?, Some(enc.features)))
}
