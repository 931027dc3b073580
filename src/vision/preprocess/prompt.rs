//! The image tokens of a prompt, as `Idefics3Processor` writes them: each `<image>`
//! placeholder, in order, becomes its image's tiles — `<fake_token_around_image>`, the tile's
//! `<row_i_col_j>` tag and `<image>` × `image_seq_len` per tile, a newline after each row of
//! tiles, then a blank line and the whole image as `<fake_token_around_image><global-img>`
//! `<image>` × `image_seq_len` `<fake_token_around_image>`. An image that was not split (one
//! tile) is the global part alone, without the newlines.

use crate::error::{Error, Result};

pub const IMAGE_TOKEN: &str = "<image>";
pub const FAKE_TOKEN_AROUND_IMAGE: &str = "<fake_token_around_image>";
pub const GLOBAL_IMAGE_TOKEN: &str = "<global-img>";
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";

/// An image's tile grid: `rows` × `cols` tiles plus the global image, or 0 × 0 when the image
/// is one tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    pub rows: usize,
    pub cols: usize,
}

impl ImageLayout {
    /// The tiles the vision tower sees for this image (the global image included).
    pub fn tiles(&self) -> usize {
        if self.rows == 0 && self.cols == 0 { 1 } else { self.rows * self.cols + 1 }
    }

    /// The text that stands for this image in the prompt (`replace_image_token`).
    pub fn tokens(&self, image_seq_len: usize) -> String {
        let image = IMAGE_TOKEN.repeat(image_seq_len);
        let global = format!("{FAKE_TOKEN_AROUND_IMAGE}{GLOBAL_IMAGE_TOKEN}{image}{FAKE_TOKEN_AROUND_IMAGE}");
        if self.rows == 0 && self.cols == 0 {
            return global;
        }
        let mut s = String::new();
        for r in 1..=self.rows {
            for c in 1..=self.cols {
                s.push_str(&format!("{FAKE_TOKEN_AROUND_IMAGE}<row_{r}_col_{c}>{image}"));
            }
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&global);
        s
    }
}

/// `text` with its `<image>` placeholders expanded, the i-th for `layouts[i]`. The number of
/// placeholders must equal the number of images, as transformers requires.
pub fn expand_prompt(text: &str, layouts: &[ImageLayout], image_seq_len: usize) -> Result<String> {
    let pieces: Vec<&str> = text.split(IMAGE_TOKEN).collect();
    let found = pieces.len() - 1;
    if found != layouts.len() {
        return Err(Error::Invalid(format!(
            "the prompt has {found} {IMAGE_TOKEN} placeholder{} but {} image{} came with it: \
             put one {IMAGE_TOKEN} where each image goes",
            if found == 1 { "" } else { "s" },
            layouts.len(),
            if layouts.len() == 1 { "" } else { "s" },
        )));
    }
    let mut out = String::with_capacity(text.len() + layouts.len() * image_seq_len * IMAGE_TOKEN.len());
    out.push_str(pieces[0]);
    for (piece, layout) in pieces[1..].iter().zip(layouts) {
        out.push_str(&layout.tokens(image_seq_len));
        out.push_str(piece);
    }
    Ok(out)
}
