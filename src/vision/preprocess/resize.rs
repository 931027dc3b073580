//! Pillow's `Image.resize` for 8-bit RGB images, bit for bit: the convolution filters
//! (box, bilinear, hamming, bicubic, lanczos) run as two separable passes, each with float
//! kernel weights that are normalised to sum to one and then turned into fixed point with 22
//! fraction bits, and each pass rounds and clips its result to 8 bits before the next one
//! reads it. Which pass runs first follows Pillow too: horizontal, unless the height shrinks
//! by more than twice what the width does. Matching these roundings is what makes the pixel
//! values equal transformers' slow Idefics3 processor (which resizes through PIL).

use crate::error::{Error, Result};

use super::RgbImage;

/// The resampling filter, numbered as PIL's `Image.Resampling` (the `resample` key of
/// preprocessor_config.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Lanczos,
    Bilinear,
    Bicubic,
    Box,
    Hamming,
}

/// Fraction bits of the fixed-point weights: 32 bits less 8 for the value and 2 for the
/// overshoot of filters with negative lobes.
const PRECISION_BITS: u32 = 32 - 8 - 2;

impl Filter {
    /// The filter PIL numbers `n` (0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX,
    /// 5 HAMMING). NEAREST takes a different path in Pillow and is not supported.
    pub fn from_pil(n: i64) -> Result<Filter> {
        Ok(match n {
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            0 => {
                return Err(Error::Invalid(
                    "resample 0 (NEAREST) is not supported: edgerl resizes with PIL's convolution \
                     filters (1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING)"
                        .into(),
                ));
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "resample {n} is not a PIL resampling filter (1 LANCZOS, 2 BILINEAR, \
                     3 BICUBIC, 4 BOX, 5 HAMMING)"
                )));
            }
        })
    }

    /// Half the width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The kernel at `x`, with Pillow's conditions and constants (hamming's are f32).
    fn weight(self, x: f64) -> f64 {
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        };
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output position along one axis: the first input position read and the
/// fixed-point weights of the inputs from there on.
struct Kernels {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// The kernels that map `in_size` samples onto `out_size` (the whole axis: PIL's box is the
/// full image in every resize transformers does).
fn kernels(in_size: usize, out_size: usize, filter: Filter) -> Kernels {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let inv_filterscale = 1.0 / filterscale;
    let mut first = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero, as `as` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let w: Vec<f64> = (xmin..xmax)
            .map(|x| filter.weight((x as f64 - center + 0.5) * inv_filterscale))
            .collect();
        let total: f64 = w.iter().sum();
        let fixed = w
            .iter()
            .map(|&k| {
                let k = if total != 0.0 { k / total } else { k };
                let f = k * (1u32 << PRECISION_BITS) as f64;
                (if k < 0.0 { -0.5 + f } else { 0.5 + f }) as i32
            })
            .collect();
        first.push(xmin as usize);
        weights.push(fixed);
    }
    Kernels { first, weights }
}

/// One weighted sum in fixed point, rounded and clipped to 8 bits. Wrapping arithmetic as
/// Pillow's C ints (the sums stay far inside i32 for 8-bit inputs).
fn convolve(samples: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let mut ss: i32 = 1 << (PRECISION_BITS - 1);
    for (v, &k) in samples.zip(weights) {
        ss = ss.wrapping_add((v as i32).wrapping_mul(k));
    }
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

fn horizontal(img: &RgbImage, out_w: usize, filter: Filter) -> RgbImage {
    let k = kernels(img.width, out_w, filter);
    let mut data = vec![0u8; out_w * img.height * 3];
    for y in 0..img.height {
        let row = &img.data[y * img.width * 3..(y + 1) * img.width * 3];
        for xx in 0..out_w {
            let (x0, w) = (k.first[xx], &k.weights[xx]);
            for c in 0..3 {
                let samples = (0..w.len()).map(|i| row[(x0 + i) * 3 + c]);
                data[(y * out_w + xx) * 3 + c] = convolve(samples, w);
            }
        }
    }
    RgbImage { width: out_w, height: img.height, data }
}

fn vertical(img: &RgbImage, out_h: usize, filter: Filter) -> RgbImage {
    let k = kernels(img.height, out_h, filter);
    let w3 = img.width * 3;
    let mut data = vec![0u8; w3 * out_h];
    for yy in 0..out_h {
        let (y0, w) = (k.first[yy], &k.weights[yy]);
        for i in 0..w3 {
            let samples = (0..w.len()).map(|j| img.data[(y0 + j) * w3 + i]);
            data[yy * w3 + i] = convolve(samples, w);
        }
    }
    RgbImage { width: img.width, height: out_h, data }
}

/// `img` resized to `width` × `height` as `PIL.Image.resize((width, height), filter)` does.
pub fn resize(img: &RgbImage, width: usize, height: usize, filter: Filter) -> Result<RgbImage> {
    if width == 0 || height == 0 {
        return Err(Error::Invalid(format!("cannot resize an image to {width}x{height}")));
    }
    let (in_w, in_h) = (img.width as i64, img.height as i64);
    let need_h = width != img.width;
    let need_v = height != img.height;
    // Pillow runs the vertical pass first when the height shrinks by more than twice the
    // amount the width does; the order changes the intermediate rounding.
    let dh = in_h - height as i64;
    let horizontal_first = !(dh > 0 && dh > (in_w - width as i64) * 2);
    let out = match (need_h, need_v, horizontal_first) {
        (false, false, _) => img.clone(),
        (true, false, _) => horizontal(img, width, filter),
        (false, true, _) => vertical(img, height, filter),
        (true, true, true) => vertical(&horizontal(img, width, filter), height, filter),
        (true, true, false) => horizontal(&vertical(img, height, filter), width, filter),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kernels sum to one in fixed point up to rounding, and never read outside the input.
    #[test]
    fn kernels_stay_inside_and_sum_to_one() {
        for filter in [Filter::Box, Filter::Bilinear, Filter::Hamming, Filter::Bicubic, Filter::Lanczos] {
            for (i, o) in [(1, 1), (1, 7), (7, 1), (13, 5), (5, 13), (100, 3), (3, 100)] {
                let k = kernels(i, o, filter);
                for (x0, w) in k.first.iter().zip(&k.weights) {
                    assert!(x0 + w.len() <= i, "{filter:?} {i}->{o}");
                    let s: i64 = w.iter().map(|&v| v as i64).sum();
                    assert!((s - (1 << PRECISION_BITS)).abs() <= w.len() as i64, "{filter:?} {i}->{o}: {s}");
                }
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage { width: 9, height: 4, data: [10u8, 200, 255].repeat(36) };
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
            let out = resize(&img, 5, 11, filter).unwrap();
            assert_eq!(out.data, [10u8, 200, 255].repeat(55), "{filter:?}");
        }
    }
}
