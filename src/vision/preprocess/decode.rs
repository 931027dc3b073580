//! PNG and JPEG files to 8-bit RGB, as the transformers image processor sees them when TRL
//! hands it a dataset's PIL image: the EXIF orientation applied (`ImageOps.exif_transpose`,
//! which `datasets` and `transformers.image_utils.load_image` both do), then converted to RGB
//! the way PIL converts — transparency composited onto white (`convert_to_rgb`), 16-bit
//! channels cut to their high byte, 16-bit grey clipped at 255 (PIL's `I;16` → `RGB`).
//! PNG comes out byte for byte as PIL's. JPEG does not quite: zune-jpeg (the `image` crate's
//! decoder) rounds its inverse DCT, chroma upsampling and colour conversion differently from
//! libjpeg-turbo (PIL's), so pixels may differ by a few levels (grey JPEG: by at most 1).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::error::{Error, Result};

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (`[y][x][c]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image from interleaved RGB bytes; the length must be `width * height * 3`.
    pub fn from_rgb(width: usize, height: usize, data: Vec<u8>) -> Result<RgbImage> {
        if width == 0 || height == 0 {
            return Err(Error::Invalid(format!("an image of {width}x{height} pixels is empty")));
        }
        if width.checked_mul(height).and_then(|n| n.checked_mul(3)) != Some(data.len()) {
            return Err(Error::Invalid(format!(
                "a {width}x{height} RGB image needs {} bytes, got {}",
                width as u128 * height as u128 * 3,
                data.len()
            )));
        }
        Ok(RgbImage { width, height, data })
    }

    /// An image from interleaved RGBA bytes (as apps hand over bitmaps), transparency
    /// composited onto white as transformers' `convert_to_rgb` does.
    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<RgbImage> {
        if width == 0 || height == 0 {
            return Err(Error::Invalid(format!("an image of {width}x{height} pixels is empty")));
        }
        if width.checked_mul(height).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
            return Err(Error::Invalid(format!(
                "a {width}x{height} RGBA image needs {} bytes, got {}",
                width as u128 * height as u128 * 4,
                rgba.len()
            )));
        }
        let data = rgba.chunks_exact(4).flat_map(over_white).collect();
        Ok(RgbImage { width, height, data })
    }

    /// The image file at `path` (PNG or JPEG, told by its content).
    pub fn open(path: &Path) -> Result<RgbImage> {
        let bytes = read_image_file(path).map_err(|why| Error::file(path, why))?;
        RgbImage::decode(&bytes).map_err(|why| Error::file(path, why))
    }

    /// A PNG or JPEG file's bytes; the error says why in words.
    pub fn decode(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("reading the image: {e}"))?;
        match reader.format() {
            Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
            Some(f) => {
                return Err(format!("unsupported image format {f:?} (edgerl reads PNG and JPEG)"));
            }
            None => return Err("not a PNG or JPEG image (edgerl reads PNG and JPEG)".into()),
        }
        let mut decoder = reader.into_decoder().map_err(|e| format!("decoding the image: {e}"))?;
        let orientation = decoder.orientation().map_err(|e| format!("decoding the image: {e}"))?;
        let mut img = DynamicImage::from_decoder(decoder).map_err(|e| format!("decoding the image: {e}"))?;
        img.apply_orientation(orientation);
        let (width, height) = (img.width() as usize, img.height() as usize);
        if width == 0 || height == 0 {
            return Err(format!("the image is empty ({width}x{height} pixels)"));
        }
        let hi = |v: u16| (v >> 8) as u8;
        let data: Vec<u8> = match img {
            DynamicImage::ImageRgb8(b) => b.into_raw(),
            DynamicImage::ImageLuma8(b) => b.into_raw().into_iter().flat_map(|v| [v; 3]).collect(),
            DynamicImage::ImageRgba8(b) => b.into_raw().chunks_exact(4).flat_map(over_white).collect(),
            DynamicImage::ImageLumaA8(b) => {
                b.into_raw().chunks_exact(2).flat_map(|p| over_white(&[p[0], p[0], p[0], p[1]])).collect()
            }
            DynamicImage::ImageRgb16(b) => b.into_raw().into_iter().map(hi).collect(),
            DynamicImage::ImageLuma16(b) => {
                b.into_raw().into_iter().flat_map(|v| [v.min(255) as u8; 3]).collect()
            }
            DynamicImage::ImageRgba16(b) => b
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| over_white(&[hi(p[0]), hi(p[1]), hi(p[2]), hi(p[3])]))
                .collect(),
            DynamicImage::ImageLumaA16(b) => b
                .into_raw()
                .chunks_exact(2)
                .flat_map(|p| over_white(&[hi(p[0]), hi(p[0]), hi(p[0]), hi(p[1])]))
                .collect(),
            other => return Err(format!("unsupported pixel layout {:?}", other.color())),
        };
        RgbImage::from_rgb(width, height, data).map_err(|e| e.to_string())
    }
}

/// The largest image file read: far above any PNG or JPEG worth decoding (the decoder refuses
/// more than 512 MiB of pixels, and the processor shrinks every image to 4096 pixels a side).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// An image file's bytes: a regular file of at most `MAX_IMAGE_FILE_BYTES`, read no further.
/// Image paths come from dataset rows and apps; a device (`/dev/zero`) or a huge file was read
/// until memory ran out, which aborts the process (a host app, over the C ABI).
fn read_image_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let reading = |e: std::io::Error| format!("reading the image: {e}");
    let file = std::fs::File::open(path).map_err(reading)?;
    let meta = file.metadata().map_err(reading)?;
    if !meta.is_file() {
        return Err("reading the image: not a regular file".into());
    }
    let too_big = |n: u64| format!("reading the image: {n} bytes, more than an image file may have ({} MiB)", MAX_IMAGE_FILE_BYTES >> 20);
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while it is read.
    file.take(MAX_IMAGE_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(reading)?;
    if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// One RGBA pixel over opaque white, as `PIL.Image.alpha_composite(white, im)` computes it:
/// integer blending with 7 extra bits and rounded divisions by 255.
fn over_white(p: &[u8]) -> [u8; 3] {
    const BITS: u32 = 7;
    let a = p[3] as u32;
    if a == 0 {
        return [255; 3];
    }
    let div255 = |v: u32| ((v >> 8) + v) >> 8;
    let blend = 255 * (255 - a);
    let outa255 = a * 255 + blend;
    let coef1 = a * 255 * 255 * (1 << BITS) / outa255;
    let coef2 = 255 * (1 << BITS) - coef1;
    let mix = |c: u8| (div255(c as u32 * coef1 + 255 * coef2 + (0x80 << BITS)) >> BITS) as u8;
    [mix(p[0]), mix(p[1]), mix(p[2])]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values PIL gives for `alpha_composite(white, im).convert("RGB")`.
    #[test]
    fn opaque_pixels_keep_their_colour_and_clear_ones_turn_white() {
        assert_eq!(over_white(&[12, 200, 0, 255]), [12, 200, 0]);
        assert_eq!(over_white(&[12, 200, 0, 0]), [255, 255, 255]);
        assert_eq!(over_white(&[0, 0, 0, 128]), [127, 127, 127]);
    }

    #[test]
    fn bad_sizes_and_bytes_are_errors() {
        assert!(RgbImage::from_rgb(0, 3, vec![]).is_err());
        assert!(RgbImage::from_rgb(2, 2, vec![0; 11]).is_err());
        assert!(RgbImage::from_rgba(2, 2, &[0; 15]).is_err());
        let e = RgbImage::decode(b"GIF89a not really").unwrap_err();
        assert!(e.contains("PNG and JPEG"), "{e}");
        let e = RgbImage::decode(b"\x89PNG\r\n\x1a\n truncated").unwrap_err();
        assert!(e.contains("decoding"), "{e}");
    }
}
