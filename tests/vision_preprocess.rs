//! Images in, against transformers and PIL: decoding, PIL's resize bit for bit, the slow
//! Idefics3 image processor's pixel values and masks, SmolVLM-256M's real processor config,
//! and the prompt's image tokens as Idefics3Processor expands them. The fixtures come from
//! tests/fixtures/vision/make_vision_fixtures.py; nothing here needs Python or a GPU.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgerl::data::{ChatTemplate, ContentPart, PartsMessage};
use edgerl::vision::preprocess::{
    Filter, ImageLayout, ImageProcessor, ProcessorConfig, RgbImage, expand_prompt, resize::resize,
};
use safetensors::SafeTensors;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vision")
}

fn image(name: &str) -> RgbImage {
    RgbImage::open(&dir().join("images").join(name)).unwrap()
}

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn open(name: &str) -> Fixture {
        Fixture { bytes: std::fs::read(dir().join(name)).unwrap() }
    }

    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    /// The JSON list stored under `key` in the file's metadata.
    fn meta(&self, key: &str) -> Vec<Value> {
        let (_, m) = SafeTensors::read_metadata(&self.bytes).unwrap();
        let map: &HashMap<String, String> = m.metadata().as_ref().unwrap();
        serde_json::from_str(&map[key]).unwrap()
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// PIL's decoding of every input (exif_transpose, then transparency over white, 16-bit grey
/// clipped), as `RgbImage`s.
fn pil_decoded() -> Vec<(String, RgbImage)> {
    let f = Fixture::open("decoded.safetensors");
    let st = f.tensors();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let t = st.tensor(&n).unwrap();
            let img = RgbImage::from_rgb(t.shape()[1], t.shape()[0], t.data().to_vec()).unwrap();
            (n, img)
        })
        .collect()
}

/// PNG inputs (RGB, RGBA, grey, 16-bit grey, palette with transparency, 1×1) decode to the
/// bytes PIL hands the processor, exactly.
#[test]
fn png_decoding_matches_pil() {
    let all = pil_decoded();
    let pngs: Vec<_> = all.iter().filter(|(n, _)| n.ends_with(".png")).collect();
    assert!(pngs.len() >= 7, "{all:?}");
    for (name, want) in pngs {
        assert_eq!(&image(name), want, "{name}");
    }
}

/// RGBA bytes as apps hand them over (the C ABI's bitmaps) composite over white exactly as
/// PIL does for an RGBA file.
#[test]
fn rgba_bytes_composite_as_pil() {
    let path = dir().join("images/alpha_29x17.png");
    let rgba = image::open(&path).unwrap().to_rgba8();
    let (w, h) = (rgba.width() as usize, rgba.height() as usize);
    let got = RgbImage::from_rgba(w, h, rgba.as_raw()).unwrap();
    let want = pil_decoded().into_iter().find(|(n, _)| n == "alpha_29x17.png").unwrap().1;
    assert_eq!(got, want);
}

/// JPEG is decoded by zune-jpeg (through the `image` crate), PIL by libjpeg-turbo: their
/// inverse DCTs round differently (grey: off by at most 1) and so do their chroma upsampling
/// and colour conversion (colour: a few levels, more on this script's noisy chroma). Close,
/// not equal — the EXIF rotation included.
#[test]
fn jpeg_decoding_is_close_to_libjpeg() {
    for (name, want) in pil_decoded().iter().filter(|(n, _)| n.ends_with(".jpg")) {
        let got = image(name);
        assert_eq!((got.width, got.height), (want.width, want.height), "{name}");
        let d: Vec<u8> = got.data.iter().zip(&want.data).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = *d.iter().max().unwrap();
        let mean = d.iter().map(|&x| x as f64).sum::<f64>() / d.len() as f64;
        let (max_ok, mean_ok) = if name.starts_with("gray") { (1, 0.1) } else { (16, 2.0) };
        assert!(max <= max_ok && mean <= mean_ok, "{name}: differs from PIL by up to {max}, {mean:.2} on average");
    }
}

/// PIL's `Image.resize` on awkward sizes (up, down, one axis, 1-pixel edges, either pass
/// first) and every convolution filter: equal to the byte.
#[test]
fn resize_is_bit_exact_with_pil() {
    let f = Fixture::open("resize.safetensors");
    let st = f.tensors();
    let cases = f.meta("cases");
    assert!(cases.len() >= 30);
    for case in cases {
        let src = st.tensor(&format!("src/{}", case["src"].as_str().unwrap())).unwrap();
        let img = RgbImage::from_rgb(src.shape()[1], src.shape()[0], src.data().to_vec()).unwrap();
        let (w, h) = (case["width"].as_u64().unwrap() as usize, case["height"].as_u64().unwrap() as usize);
        let filter = Filter::from_pil(case["resample"].as_i64().unwrap()).unwrap();
        let got = resize(&img, w, h, filter).unwrap();
        let want = st.tensor(case["key"].as_str().unwrap()).unwrap();
        assert_eq!([got.height, got.width, 3], want.shape(), "{case}");
        let bad = got.data.iter().zip(want.data()).filter(|(a, b)| a != b).count();
        assert_eq!(bad, 0, "{case}: {bad} bytes differ from PIL");
    }
}

/// The slow Idefics3 image processor: pixel values within 1e-5, masks and tile grids equal,
/// for splitting, no splitting, another filter and normalisation, no resize, no rescale,
/// JPEG inputs (as PIL decoded them), and samples padded to the longest one's tile count.
#[test]
fn processor_matches_transformers() {
    let f = Fixture::open("processor.safetensors");
    let st = f.tensors();
    // JPEG inputs as PIL decoded them: this test is about the processor, and decoders differ
    // (see jpeg_decoding_is_close_to_libjpeg).
    let pil: HashMap<String, RgbImage> = pil_decoded().into_iter().collect();
    let image = |n: &str| if n.ends_with(".jpg") { pil[n].clone() } else { image(n) };
    for case in f.meta("cases") {
        let name = case["name"].as_str().unwrap();
        let proc = ImageProcessor::from_json(&case["config"].to_string()).unwrap();
        let samples: Vec<Vec<RgbImage>> = case["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_array().unwrap().iter().map(|n| image(n.as_str().unwrap())).collect())
            .collect();
        let got = proc.process_batch(&samples).unwrap();
        let want = st.tensor(&format!("{name}/pixel_values")).unwrap();
        assert_eq!(&got.shape[..], want.shape(), "{name}");
        let diff = max_abs_diff(&got.data, &f32s(want.data()));
        assert!(diff <= 1e-5, "{name}: pixel values differ by {diff}");
        let mask = st.tensor(&format!("{name}/pixel_attention_mask")).unwrap();
        assert_eq!(got.pixel_attention_mask, mask.data(), "{name}: pixel attention mask");
        for (s, layouts) in got.layouts.iter().enumerate() {
            for (i, l) in layouts.iter().enumerate() {
                let want = (case["rows"][s][i].as_u64().unwrap(), case["cols"][s][i].as_u64().unwrap());
                assert_eq!((l.rows as u64, l.cols as u64), want, "{name}: sample {s} image {i}");
            }
        }
        let tiles: Vec<usize> = got.layouts.iter().map(|l| l.iter().map(ImageLayout::tiles).sum()).collect();
        assert_eq!(got.tiles_per_sample, tiles, "{name}");
    }
}

/// SmolVLM-256M's processor files (written by hand: no hub here) on a 120×90 screenshot:
/// 2048×1536 after the resize, 3 × 4 tiles of 512 plus the global image; every tile's 8-bit
/// pixels equal transformers' (CRC32), and a strided sample of the values within 1e-5.
#[test]
fn smolvlm_256m_config_on_a_modest_image() {
    let proc = ImageProcessor::from_dir(&dir().join("smolvlm_256m")).unwrap();
    let c = &proc.config;
    assert_eq!((c.max_image_size, c.image_seq_len, c.resample), (512, 64, Filter::Lanczos));
    let want: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("smolvlm_256m.json")).unwrap()).unwrap();
    let img = image(want["image"].as_str().unwrap());
    let (tiles, layout) = c.tiles(&img).unwrap();
    assert_eq!((layout.rows as u64, layout.cols as u64), (want["rows"].as_u64().unwrap(), want["cols"].as_u64().unwrap()));
    let crcs: Vec<u64> = tiles
        .iter()
        .map(|t| {
            let n = t.width * t.height;
            let chw: Vec<u8> = (0..3).flat_map(|ch| (0..n).map(move |i| t.data[i * 3 + ch])).collect();
            crc32fast::hash(&chw) as u64
        })
        .collect();
    let want_crcs: Vec<u64> = want["tile_crc32_chw_u8"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(crcs, want_crcs);
    let pv = proc.process(&[img]).unwrap();
    let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(&pv.shape[..], &shape[..]);
    let stride = want["sample_stride"].as_u64().unwrap() as usize;
    let sample: Vec<f32> = pv.data.iter().step_by(stride).copied().collect();
    let want_sample: Vec<f32> = want["sample"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert!(max_abs_diff(&sample, &want_sample) <= 1e-5);
    let ones = pv.pixel_attention_mask.iter().map(|&m| m as u64).sum::<u64>();
    assert_eq!(ones, want["mask_sum"].as_u64().unwrap());
}

fn prompts() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("prompts.json")).unwrap()).unwrap()
}

fn tokenizer() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_file(dir().join("tokenizer.json")).unwrap()
}

/// Prompts with one image, three (split and single-tile), and no splitting: the expanded text
/// and its token ids equal Idefics3Processor's.
#[test]
fn prompts_expand_as_idefics3_processor() {
    let p = prompts();
    let tok = tokenizer();
    let seq = p["image_seq_len"].as_u64().unwrap() as usize;
    for case in p["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut cfg = ProcessorConfig::from_json(&case["config"].to_string()).unwrap();
        cfg.image_seq_len = seq;
        let proc = ImageProcessor { config: cfg };
        let images: Vec<RgbImage> = case["images"].as_array().unwrap().iter().map(|n| image(n.as_str().unwrap())).collect();
        let pv = proc.process_batch(&[images]).unwrap();
        let layouts = &pv.layouts[0];
        let rows: Vec<u64> = layouts.iter().map(|l| l.rows as u64).collect();
        let cols: Vec<u64> = layouts.iter().map(|l| l.cols as u64).collect();
        assert_eq!(serde_json::json!(rows), case["rows"], "{name}");
        assert_eq!(serde_json::json!(cols), case["cols"], "{name}");
        let text = proc.expand_prompt(case["text"].as_str().unwrap(), layouts).unwrap();
        assert_eq!(text, case["expanded"].as_str().unwrap(), "{name}");
        let ids = tok.encode(text.as_str(), true).unwrap().get_ids().to_vec();
        assert_eq!(serde_json::json!(ids), case["input_ids"], "{name}");
    }
}

/// A chat as TRL's vision datasets write it (content parts, images in the `images` column):
/// SmolVLM's chat template renders it as transformers does, and the expanded prompt's ids
/// equal Idefics3Processor's.
#[test]
fn chat_with_image_parts_renders_as_transformers() {
    let p = prompts();
    let chat = &p["chat"];
    let messages: Vec<PartsMessage> = serde_json::from_value(chat["messages"].clone()).unwrap();
    assert_eq!(messages[0].content[0], ContentPart::Image);
    let template = ChatTemplate::new(chat["template"].as_str().unwrap(), "", "").unwrap();
    let rendered = template.render_parts(&messages, true).unwrap();
    assert_eq!(rendered, chat["rendered"].as_str().unwrap());
    let mut cfg = ProcessorConfig::from_json(&p["cases"][0]["config"].to_string()).unwrap();
    cfg.image_seq_len = p["image_seq_len"].as_u64().unwrap() as usize;
    let proc = ImageProcessor { config: cfg };
    let images: Vec<RgbImage> = chat["images"].as_array().unwrap().iter().map(|n| image(n.as_str().unwrap())).collect();
    let pv = proc.process_batch(&[images]).unwrap();
    let text = proc.expand_prompt(&rendered, &pv.layouts[0]).unwrap();
    let ids = tokenizer().encode(text.as_str(), true).unwrap().get_ids().to_vec();
    assert_eq!(serde_json::json!(ids), chat["input_ids"]);
}

/// Wrong counts of placeholders, and layouts' own arithmetic.
#[test]
fn placeholders_must_match_images() {
    let one = [ImageLayout { rows: 0, cols: 0 }];
    let e = expand_prompt("no placeholder", &one, 4).unwrap_err().to_string();
    assert!(e.contains("0 <image> placeholders but 1 image"), "{e}");
    let e = expand_prompt("<image><image>", &one, 4).unwrap_err().to_string();
    assert!(e.contains("2 <image> placeholders"), "{e}");
    assert_eq!(expand_prompt("plain", &[], 4).unwrap(), "plain");
    assert_eq!(ImageLayout { rows: 2, cols: 3 }.tiles(), 7);
    assert_eq!(ImageLayout { rows: 0, cols: 0 }.tiles(), 1);
}

/// Missing, corrupt and unsupported files, and configs with keys of the wrong type, are
/// errors that name the file or key — never panics.
#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = std::env::temp_dir().join(format!("edgerl-vision-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let missing = tmp.join("missing.png");
    let e = RgbImage::open(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.png") && e.contains("reading the image"), "{e}");
    // Image paths come from dataset rows: a device or a huge file is refused before it is read
    // (/dev/zero was read until memory ran out). The big file is sparse: it takes no disk.
    let e = RgbImage::open(&tmp).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let huge = tmp.join("huge.png");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(edgerl::vision::preprocess::MAX_IMAGE_FILE_BYTES + 1).unwrap();
    drop(f);
    let e = RgbImage::open(&huge).unwrap_err().to_string();
    assert!(e.contains("huge.png") && e.contains("more than an image file may have"), "{e}");
    std::fs::remove_file(&huge).unwrap();
    let e = RgbImage::open(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    let png = std::fs::read(dir().join("images/gradient_37x23.png")).unwrap();
    for (name, bytes, want) in [
        ("cut.png", png[..png.len() / 2].to_vec(), "decoding"),
        ("empty.jpg", vec![], "PNG and JPEG"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(), "unsupported image format"),
        ("text.png", b"hello, not an image".to_vec(), "PNG and JPEG"),
        ("bad.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46].to_vec(), "decoding"),
    ] {
        let p = tmp.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let e = RgbImage::open(&p).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
    for (json, want) in [
        (r#"{"do_resize": "yes"}"#, "`do_resize` should be true or false"),
        (r#"{"size": 5}"#, "`size` should be an object"),
        (r#"{"size": {"longest_edge": 0}}"#, "`size` should be a whole number"),
        (r#"{"max_image_size": {"height": 3}}"#, "`max_image_size` should be an object with \"longest_edge\""),
        (r#"{"image_mean": [0.5, 0.5]}"#, "`image_mean` should be three numbers"),
        (r#"{"image_std": [0.5, 0, 0.5]}"#, "`image_std` should be non-zero"),
        (r#"{"resample": 0}"#, "NEAREST"),
        (r#"{"resample": "lanczos"}"#, "`resample` should be"),
        (r#"{"image_seq_len": -1}"#, "`image_seq_len` should be"),
        (r#"{"rescale_factor": "1/255"}"#, "`rescale_factor` should be a number"),
        (r#"[1, 2]"#, "not a JSON object"),
        ("{", "not valid JSON"),
    ] {
        let e = ImageProcessor::from_json(json).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
    let e = ImageProcessor::from_dir(&tmp).unwrap_err().to_string();
    assert!(e.contains("no preprocessor_config.json"), "{e}");
    std::fs::write(tmp.join("preprocessor_config.json"), "{}").unwrap();
    std::fs::write(tmp.join("processor_config.json"), r#"{"image_seq_len": "64"}"#).unwrap();
    let e = ImageProcessor::from_dir(&tmp).unwrap_err().to_string();
    assert!(e.contains("processor_config.json") && e.contains("`image_seq_len`"), "{e}");
    let proc = ImageProcessor::from_json("{}").unwrap();
    assert!(proc.process(&[]).unwrap_err().to_string().contains("no images"));
    assert!(RgbImage::from_rgb(3, 0, vec![]).is_err());
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// A model directory whose processor_config.json nests the image processor (transformers 5
/// saves it so) reads the same as one with preprocessor_config.json.
#[test]
fn nested_processor_config_reads_the_same() {
    let tmp = std::env::temp_dir().join(format!("edgerl-vision-nested-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let pre: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("smolvlm_256m/preprocessor_config.json")).unwrap()).unwrap();
    let nested = serde_json::json!({"image_processor": pre, "image_seq_len": 64});
    std::fs::write(tmp.join("processor_config.json"), nested.to_string()).unwrap();
    let a = ImageProcessor::from_dir(&tmp).unwrap();
    let b = ImageProcessor::from_dir(&dir().join("smolvlm_256m")).unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(&tmp).unwrap();
}
