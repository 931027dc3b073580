//! What the CPU prepares for the tower from transformers-style inputs, as
//! `Idefics3Model.get_image_features` and `Idefics3VisionEmbeddings.forward` compute it: the
//! padding images dropped, each patch's mask from the pixel mask, the bucketed position ids,
//! the pixels unfolded into patch rows (so the stride = kernel Conv2d is a product), and the
//! pixel shuffle as a row gather.

use crate::error::{Error, Result};
use crate::vision::preprocess::PixelValues;

use super::VisionConfig;

/// A batch of images as the processor gives them: `values` [images, channels, height, width]
/// and, optionally, `mask` [images, height, width] (the `pixel_attention_mask`: 0 on the
/// padding around a smaller image). Images whose values are all exactly zero are padding images
/// and are dropped, as transformers drops them.
#[derive(Clone, Copy)]
pub struct Pixels<'a> {
    pub values: &'a [f32],
    pub mask: Option<&'a [u8]>,
    pub images: usize,
    pub height: usize,
    pub width: usize,
}

impl<'a> From<&'a PixelValues> for Pixels<'a> {
    /// The processor's output, every sample's tiles in a row.
    fn from(p: &'a PixelValues) -> Pixels<'a> {
        let [samples, tiles, _, height, width] = p.shape;
        Pixels {
            values: &p.data,
            mask: Some(&p.pixel_attention_mask),
            images: samples * tiles,
            height,
            width,
        }
    }
}

/// The tower's inputs for the real images.
#[derive(Debug)]
pub struct Prepared {
    /// Indices (in `Pixels`) of the images kept.
    pub real: Vec<usize>,
    /// Patches a side of each image (square).
    pub side: usize,
    /// [real × side², patch_dim]: a patch's values in the Conv2d weight's order (channel, row,
    /// column).
    pub patches: Vec<f32>,
    /// [real × side²]: each patch's row of the position embedding.
    pub position_ids: Vec<u32>,
    /// [real × side²]: 1 for patches that are attention keys.
    pub key_mask: Vec<u32>,
}

impl Prepared {
    pub fn seq(&self) -> usize {
        self.side * self.side
    }
}

/// Checks `px` against `cfg` and prepares the real images.
pub fn prepare(cfg: &VisionConfig, px: &Pixels) -> Result<Prepared> {
    let (c, h, w, p) = (cfg.num_channels, px.height, px.width, cfg.patch_size);
    let per_image = c.saturating_mul(h).saturating_mul(w);
    if Some(px.values.len()) != px.images.checked_mul(per_image) {
        return Err(Error::Invalid(format!(
            "pixel values: {} given for {} images of {c}×{h}×{w}",
            px.values.len(),
            px.images
        )));
    }
    if let Some(m) = px.mask
        && Some(m.len()) != px.images.checked_mul(h * w)
    {
        return Err(Error::Invalid(format!(
            "pixel attention mask: {} values given for {} images of {h}×{w}",
            m.len(),
            px.images
        )));
    }
    let r = cfg.scale_factor;
    if h != w || h == 0 || !h.is_multiple_of(p) || !(h / p).is_multiple_of(r) {
        return Err(Error::Invalid(format!(
            "images of {h}×{w} pixels: the tower takes square images whose side is a multiple of patch_size × scale_factor = {}",
            p * r
        )));
    }
    let side = h / p;
    let seq = side * side;
    let n_side = cfg.patches_per_side();
    let boundaries = bucket_boundaries(n_side);
    let mut out = Prepared {
        real: Vec::new(),
        side,
        patches: Vec::new(),
        position_ids: Vec::new(),
        key_mask: Vec::new(),
    };
    for i in 0..px.images {
        let values = &px.values[i * per_image..(i + 1) * per_image];
        if values.iter().all(|&v| v == 0.0) {
            continue; // a padding image
        }
        let pmask = match px.mask {
            Some(m) => patch_mask(&m[i * h * w..(i + 1) * h * w], h, w, p),
            None => vec![true; seq],
        };
        if !pmask.iter().any(|&b| b) {
            return Err(Error::Invalid(format!(
                "image {i} has pixels but its pixel attention mask covers no patch"
            )));
        }
        out.position_ids.extend(position_ids(&pmask, side, side, n_side, &boundaries));
        out.key_mask.extend(pmask.iter().map(|&b| b as u32));
        unfold(values, c, h, w, p, &mut out.patches);
        out.real.push(i);
    }
    Ok(out)
}

/// A patch attends (and is attended to) when any of its pixels is valid: transformers' unfold of
/// the pixel mask summed over each patch.
pub fn patch_mask(mask: &[u8], h: usize, w: usize, p: usize) -> Vec<bool> {
    let (gh, gw) = (h / p, w / p);
    let mut out = vec![false; gh * gw];
    for (y, row) in mask.chunks(w).take(gh * p).enumerate() {
        for (x, &m) in row.iter().take(gw * p).enumerate() {
            if m != 0 {
                out[(y / p) * gw + x / p] = true;
            }
        }
    }
    out
}

/// `torch.arange(1 / n, 1.0, 1 / n)` in float32 exactly as torch's CPU kernel computes it (the
/// bucket boundaries of the position ids): in steps of 16 elements through 8-float vectors,
/// lane j = f32(f32(start + step · base) + j · step) in double, and the remainder scalar,
/// f32(start + step · i). For n a power of two (SmolVLM's 32) every form is exact; for others
/// an ulp decides the bucket of patches that fall exactly on a boundary.
pub fn bucket_boundaries(n: usize) -> Vec<f32> {
    let s = 1.0 / n as f64;
    let len = ((1.0 - s) / s).ceil().max(0.0) as usize;
    let vectorized = len / 16 * 16;
    (0..len)
        .map(|i| {
            if i < vectorized {
                let base = (s + s * (i - i % 8) as f64) as f32;
                (base as f64 + (i % 8) as f64 * s) as f32
            } else {
                (s + s * i as f64) as f32
            }
        })
        .collect()
}

/// Idefics3's position ids for one image's patch mask [gh, gw] (a valid region in the top-left
/// corner): each valid patch's fractional coordinates over the valid rows and columns, bucketed
/// into the `n_side`² grid the embeddings were trained on; padded patches take id 0. In f32 as
/// transformers computes it.
pub fn position_ids(
    mask: &[bool],
    gh: usize,
    gw: usize,
    n_side: usize,
    boundaries: &[f32],
) -> Vec<u32> {
    // Valid rows: the first column's count; valid columns: the first row's.
    let nb_h = (0..gh).filter(|&y| mask[y * gw]).count() as f32;
    let nb_w = (0..gw).filter(|&x| mask[x]).count() as f32;
    let (step_h, step_w) = (1.0f32 / nb_h, 1.0f32 / nb_w);
    let bucket = |i: usize, step: f32| -> u32 {
        let f = (i as f32 * step).min(1.0f32 - 1e-6);
        boundaries.iter().filter(|&&b| b <= f).count() as u32
    };
    let mut ids = Vec::with_capacity(gh * gw);
    for y in 0..gh {
        for x in 0..gw {
            let id = bucket(y, step_h) * n_side as u32 + bucket(x, step_w);
            ids.push(if mask[y * gw + x] { id } else { 0 });
        }
    }
    ids
}

/// Appends one image's patches [gh × gw, c × p × p], row-major over the patch grid.
fn unfold(values: &[f32], c: usize, h: usize, w: usize, p: usize, out: &mut Vec<f32>) {
    for gy in 0..h / p {
        for gx in 0..w / p {
            for ch in 0..c {
                for ky in 0..p {
                    let row = (ch * h + gy * p + ky) * w + gx * p;
                    out.extend_from_slice(&values[row..row + p]);
                }
            }
        }
    }
}

/// The connector's pixel shuffle as a gather of `d`-wide rows: output row `o` (of
/// `images × side²`) is input row `sources[o]`. Viewed as [images, (side / r)², r² · d], output
/// token (i, j) holds, for a, b in 0..r, the patch (i · r + a, j · r + b) at columns
/// (a · r + b) · d: `Idefics3Connector.pixel_shuffle`'s views and permutes, worked through.
pub fn pixel_shuffle_sources(images: usize, side: usize, r: usize) -> Vec<u32> {
    let s = side / r;
    let mut src = Vec::with_capacity(images * side * side);
    for img in 0..images {
        for i in 0..s {
            for j in 0..s {
                for a in 0..r {
                    for b in 0..r {
                        src.push((img * side * side + (i * r + a) * side + j * r + b) as u32);
                    }
                }
            }
        }
    }
    src
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_positions_and_shuffle() {
        // 3 × 5 valid pixels of 8 × 8 in patches of 2: 2 × 3 valid patches.
        let mut m = vec![0u8; 64];
        for y in 0..3 {
            for x in 0..5 {
                m[y * 8 + x] = 1;
            }
        }
        let pm = patch_mask(&m, 8, 8, 2);
        let valid: Vec<usize> = (0..16).filter(|&i| pm[i]).collect();
        assert_eq!(valid, vec![0, 1, 2, 4, 5, 6]);
        // Over an 8-a-side grid, 2 rows → buckets 0, 4; 3 columns → 0, 2, 5 (1/3 and 2/3 of 8).
        let ids = position_ids(&pm, 4, 4, 8, &bucket_boundaries(8));
        assert_eq!(&ids[..8], &[0, 2, 5, 0, 32, 34, 37, 0]);
        assert!(ids[8..].iter().all(|&i| i == 0));
        assert_eq!(bucket_boundaries(4), vec![0.25, 0.5, 0.75]);
        // Side 4, r 2: token 0 gathers patches 0, 1, 4, 5.
        let s = pixel_shuffle_sources(2, 4, 2);
        assert_eq!(&s[..8], &[0, 1, 4, 5, 2, 3, 6, 7]);
        assert_eq!(s[16], 16);
    }
}
