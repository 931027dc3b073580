//! The slow (PIL) `Idefics3ImageProcessor` of transformers, step for step: resize so the
//! longest edge is `size.longest_edge`, resize again to whole multiples of the tile side
//! (`max_image_size`), cut row-major tiles plus the whole image shrunk to one tile (or, without
//! splitting, one square tile), rescale and normalise, and pad every sample to the same number
//! of tiles with a pixel attention mask. Every resize rounds to 8 bits as PIL does, so the
//! pixel values match transformers' to float32 rounding.

use crate::error::{Error, Result};

use super::config::{MAX_IMAGE_SIZE, ProcessorConfig, Size};
use super::prompt::ImageLayout;
use super::resize::resize;
use super::RgbImage;

/// What the vision tower reads for a batch of samples, each with one or more images.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelValues {
    /// `[samples, tiles, 3, side, side]`, channel-first, row-major; padded tiles are zeros.
    pub data: Vec<f32>,
    pub shape: [usize; 5],
    /// `[samples, tiles, side, side]`: 1 where a pixel is image, 0 in padding tiles.
    pub pixel_attention_mask: Vec<u8>,
    /// The tiles of each sample that hold an image (the rest are padding).
    pub tiles_per_sample: Vec<usize>,
    /// Per sample, per image: its tile grid, which the prompt's image tokens spell out.
    pub layouts: Vec<Vec<ImageLayout>>,
}

/// `(height, width)` with the longest edge scaled to `max_len`, the other edge rounded up to
/// an even number (transformers' `_resize_output_size_rescale_to_max_len`).
fn rescale_to_max_len(height: usize, width: usize, max_len: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let (mut h, mut w);
    if width >= height {
        w = max_len;
        h = (w as f64 / aspect) as usize;
        if h % 2 != 0 {
            h += 1;
        }
    } else {
        h = max_len;
        w = (h as f64 * aspect) as usize;
        if w % 2 != 0 {
            w += 1;
        }
    }
    (h.max(1), w.max(1))
}

/// `(height, width)` shrunk so neither edge passes `max_len`
/// (`_resize_output_size_scale_below_upper_bound`).
fn scale_below(height: usize, width: usize, max_len: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let (mut h, mut w) = (height, width);
    if width >= height && width > max_len {
        w = max_len;
        h = (w as f64 / aspect) as usize;
    } else if height > width && height > max_len {
        h = max_len;
        w = (h as f64 * aspect) as usize;
    }
    (h.max(1), w.max(1))
}

/// `(height, width)` rounded up to whole tiles, the shorter edge first following the aspect
/// ratio (`resize_for_vision_encoder`).
fn tile_multiple(height: usize, width: usize, tile: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let up = |x: f64| (x / tile as f64).ceil() as usize * tile;
    if width >= height {
        let w = up(width as f64);
        let h = (w as f64 / aspect) as usize;
        (up(h as f64), w)
    } else {
        let h = up(height as f64);
        let w = (h as f64 * aspect) as usize;
        (h, up(w as f64))
    }
}

/// The image sizes the processor goes through for an image of `height` × `width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// After the first resize (`do_resize`).
    pub resized: (usize, usize),
    /// After `resize_for_vision_encoder` (the image the tiles are cut from), when splitting.
    pub tiled: Option<(usize, usize)>,
    pub layout: ImageLayout,
}

impl ProcessorConfig {
    /// The sizes an image of `height` × `width` goes through, without touching pixels.
    pub fn plan(&self, height: usize, width: usize) -> Plan {
        let resized = if !self.do_resize {
            (height, width)
        } else {
            match self.size {
                Size::LongestEdge(l) => {
                    let (h, w) = rescale_to_max_len(height, width, l);
                    scale_below(h, w, MAX_IMAGE_SIZE)
                }
                Size::Exact { height, width } => (height, width),
            }
        };
        let tile = self.max_image_size;
        if !self.do_image_splitting {
            return Plan { resized, tiled: None, layout: ImageLayout { rows: 0, cols: 0 } };
        }
        let (h, w) = tile_multiple(resized.0, resized.1, tile);
        let layout = if h > tile || w > tile {
            ImageLayout { rows: h / tile, cols: w / tile }
        } else {
            ImageLayout { rows: 0, cols: 0 }
        };
        Plan { resized, tiled: Some((h, w)), layout }
    }

    /// One image's tiles as 8-bit RGB, in the processor's order (row-major tiles, then the
    /// whole image), with its layout.
    pub fn tiles(&self, img: &RgbImage) -> Result<(Vec<RgbImage>, ImageLayout)> {
        let plan = self.plan(img.height, img.width);
        let f = self.resample;
        let resized = resize(img, plan.resized.1, plan.resized.0, f)?;
        let tile = self.max_image_size;
        let Some((h, w)) = plan.tiled else {
            return Ok((vec![resize(&resized, tile, tile, f)?], plan.layout));
        };
        let whole = resize(&resized, w, h, f)?;
        if plan.layout.rows == 0 {
            return Ok((vec![whole], plan.layout));
        }
        let mut tiles = Vec::with_capacity(plan.layout.rows * plan.layout.cols + 1);
        for r in 0..plan.layout.rows {
            for c in 0..plan.layout.cols {
                let mut data = Vec::with_capacity(tile * tile * 3);
                for y in r * tile..(r + 1) * tile {
                    let row = (y * w + c * tile) * 3;
                    data.extend_from_slice(&whole.data[row..row + tile * 3]);
                }
                tiles.push(RgbImage { width: tile, height: tile, data });
            }
        }
        tiles.push(resize(&whole, tile, tile, f)?);
        Ok((tiles, plan.layout))
    }

    /// A tile's float values, channel-first: `u8 as f64 * rescale_factor` cast to f32, then
    /// `(x - mean) / std` in f32, as transformers' numpy code computes them.
    fn normalise_into(&self, tile: &RgbImage, out: &mut [f32]) {
        let n = tile.width * tile.height;
        let mean = self.image_mean.map(|m| m as f32);
        let std = self.image_std.map(|s| s as f32);
        for c in 0..3 {
            for i in 0..n {
                let v = tile.data[i * 3 + c];
                let mut x = if self.do_rescale { (v as f64 * self.rescale_factor) as f32 } else { v as f32 };
                if self.do_normalize {
                    x = (x - mean[c]) / std[c];
                }
                out[c * n + i] = x;
            }
        }
    }

    /// Pixel values for a batch: each sample's images become tiles, one after another, and
    /// samples with fewer tiles are padded with zero tiles whose mask is 0.
    pub fn process_batch(&self, samples: &[Vec<RgbImage>]) -> Result<PixelValues> {
        if samples.iter().all(|s| s.is_empty()) {
            return Err(Error::Invalid("no images to process".into()));
        }
        let mut tiles = Vec::with_capacity(samples.len());
        let mut layouts = Vec::with_capacity(samples.len());
        for sample in samples {
            let mut t = Vec::new();
            let mut l = Vec::new();
            for img in sample {
                let (tt, layout) = self.tiles(img)?;
                t.extend(tt);
                l.push(layout);
            }
            tiles.push(t);
            layouts.push(l);
        }
        let max_tiles = tiles.iter().map(Vec::len).max().unwrap_or(0);
        if !self.do_pad && tiles.iter().any(|t| t.len() != max_tiles) {
            return Err(Error::Invalid(format!(
                "do_pad is false, but the samples have different numbers of tiles ({:?}); \
                 transformers would return ragged lists, which the vision tower cannot take",
                tiles.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        let side = self.max_image_size;
        let per_tile = 3 * side * side;
        let mut data = vec![0f32; samples.len() * max_tiles * per_tile];
        let mut mask = vec![0u8; samples.len() * max_tiles * side * side];
        for (s, t) in tiles.iter().enumerate() {
            for (j, tile) in t.iter().enumerate() {
                let at = s * max_tiles + j;
                self.normalise_into(tile, &mut data[at * per_tile..(at + 1) * per_tile]);
                mask[at * side * side..(at + 1) * side * side].fill(1);
            }
        }
        Ok(PixelValues {
            data,
            shape: [samples.len(), max_tiles, 3, side, side],
            pixel_attention_mask: mask,
            tiles_per_sample: tiles.iter().map(Vec::len).collect(),
            layouts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size rules on hand-worked cases: 4:3 scaled to 64 → 48 high, an odd 47 rounded
    /// up to 48, a tall image, and one below the tile.
    #[test]
    fn sizes_follow_transformers_rules() {
        assert_eq!(rescale_to_max_len(300, 400, 64), (48, 64));
        assert_eq!(rescale_to_max_len(47 * 3, 64 * 3, 64), (48, 64));
        assert_eq!(rescale_to_max_len(100, 10, 64), (64, 6));
        assert_eq!(tile_multiple(48, 64, 32), (64, 64));
        assert_eq!(tile_multiple(20, 10, 32), (32, 32));
        assert_eq!(scale_below(5000, 8000, 4096), (2560, 4096));
    }
}
