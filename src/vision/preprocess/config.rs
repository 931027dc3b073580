//! The image processor's settings from preprocessor_config.json (and processor_config.json,
//! where transformers 5 may nest them under "image_processor" and keeps `image_seq_len`), with
//! the defaults of transformers' `Idefics3ImageProcessor` for keys a file leaves out.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::resize::Filter;

/// How the processor resizes, splits and normalises (the slow Idefics3 processor's keys).
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessorConfig {
    pub do_resize: bool,
    /// `size`: the longest edge the first resize scales to, or a fixed height and width.
    pub size: Size,
    /// `max_image_size.longest_edge`: the side of every tile the vision tower sees.
    pub max_image_size: usize,
    pub do_image_splitting: bool,
    pub resample: Filter,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    pub do_pad: bool,
    /// `<image>` tokens per tile in the prompt (processor_config.json; transformers' default 169).
    pub image_seq_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    LongestEdge(usize),
    Exact { height: usize, width: usize },
}

/// Images are never resized past 4096 pixels a side (transformers' `MAX_IMAGE_SIZE`).
pub const MAX_IMAGE_SIZE: usize = 4096;

impl Default for ProcessorConfig {
    /// transformers' `Idefics3ImageProcessor` class defaults and `Idefics3Processor`'s 169.
    fn default() -> Self {
        ProcessorConfig {
            do_resize: true,
            size: Size::LongestEdge(4 * 364),
            max_image_size: 364,
            do_image_splitting: true,
            resample: Filter::Lanczos,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            do_pad: true,
            image_seq_len: 169,
        }
    }
}

/// Reads typed keys from one JSON object, naming the file and key in every error.
struct Keys<'a> {
    map: &'a Map<String, Value>,
    file: &'a str,
}

impl Keys<'_> {
    fn wrong(&self, key: &str, want: &str) -> Error {
        Error::Invalid(format!("{}: `{key}` should be {want}, found {}", self.file, self.map[key]))
    }

    fn bool(&self, key: &str, into: &mut bool) -> Result<()> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Bool(b)) => {
                *into = *b;
                Ok(())
            }
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn positive(&self, v: &Value, key: &str) -> Result<usize> {
        match v.as_u64() {
            Some(n) if n >= 1 && n as usize <= MAX_IMAGE_SIZE * 4 => Ok(n as usize),
            _ => Err(self.wrong(key, &format!("a whole number from 1 to {}", MAX_IMAGE_SIZE * 4))),
        }
    }

    fn number(&self, key: &str, into: &mut f64) -> Result<()> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => {
                    *into = x;
                    Ok(())
                }
                _ => Err(self.wrong(key, "a number")),
            },
        }
    }

    /// A per-channel triple (`image_mean`, `image_std`); a single number means all three.
    fn triple(&self, key: &str, into: &mut [f64; 3]) -> Result<()> {
        let v = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(()),
            Some(v) => v,
        };
        let bad = || self.wrong(key, "three numbers (one per RGB channel) or one number");
        match v {
            Value::Number(n) => *into = [n.as_f64().ok_or_else(bad)?; 3],
            Value::Array(a) if a.len() == 3 => {
                for (slot, x) in into.iter_mut().zip(a) {
                    *slot = x.as_f64().filter(|x| x.is_finite()).ok_or_else(bad)?;
                }
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

impl ProcessorConfig {
    /// The settings of a model directory: preprocessor_config.json, else the
    /// "image_processor" object of processor_config.json; `image_seq_len` from
    /// processor_config.json when it has one. A directory with neither file is an error.
    pub fn from_dir(dir: &Path) -> Result<ProcessorConfig> {
        let read = |name: &str| -> Result<Option<Value>> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| Error::file(&path, format!("not valid JSON: {e}"))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::file(&path, e)),
            }
        };
        let pre = read("preprocessor_config.json")?;
        let proc = read("processor_config.json")?;
        let nested = proc.as_ref().and_then(|p| p.get("image_processor"));
        let (image, file) = match (&pre, nested) {
            (Some(p), _) => (p, "preprocessor_config.json"),
            (None, Some(n)) => (n, "processor_config.json"),
            (None, None) => {
                return Err(Error::file(
                    dir,
                    "no preprocessor_config.json (nor an image_processor in processor_config.json): \
                     not a vision model directory",
                ));
            }
        };
        let mut cfg = ProcessorConfig::from_value(image, &dir.join(file).display().to_string())?;
        if let Some(p) = &proc {
            let path = dir.join("processor_config.json").display().to_string();
            let map = p.as_object().ok_or_else(|| Error::Invalid(format!("{path}: not a JSON object")))?;
            let keys = Keys { map, file: &path };
            if let Some(v) = map.get("image_seq_len").filter(|v| !v.is_null()) {
                cfg.image_seq_len = keys.positive(v, "image_seq_len")?;
            }
        }
        Ok(cfg)
    }

    /// The settings in one JSON text (preprocessor_config.json's keys, plus `image_seq_len`).
    pub fn from_json(text: &str) -> Result<ProcessorConfig> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("image processor config: not valid JSON: {e}")))?;
        ProcessorConfig::from_value(&v, "image processor config")
    }

    fn from_value(v: &Value, file: &str) -> Result<ProcessorConfig> {
        let map = v.as_object().ok_or_else(|| Error::Invalid(format!("{file}: not a JSON object")))?;
        let k = Keys { map, file };
        let mut c = ProcessorConfig::default();
        k.bool("do_resize", &mut c.do_resize)?;
        k.bool("do_image_splitting", &mut c.do_image_splitting)?;
        k.bool("do_rescale", &mut c.do_rescale)?;
        k.bool("do_normalize", &mut c.do_normalize)?;
        k.bool("do_pad", &mut c.do_pad)?;
        // Always RGB here (the tower takes three channels); the key is checked, not used.
        let mut convert_rgb = true;
        k.bool("do_convert_rgb", &mut convert_rgb)?;
        k.number("rescale_factor", &mut c.rescale_factor)?;
        k.triple("image_mean", &mut c.image_mean)?;
        k.triple("image_std", &mut c.image_std)?;
        if c.image_std.contains(&0.0) {
            return Err(k.wrong("image_std", "non-zero"));
        }
        if let Some(r) = map.get("resample").filter(|v| !v.is_null()) {
            let n = r.as_i64().ok_or_else(|| k.wrong("resample", "a PIL resampling number"))?;
            c.resample = Filter::from_pil(n).map_err(|e| Error::Invalid(format!("{file}: {e}")))?;
        }
        if let Some(s) = map.get("size").filter(|v| !v.is_null()) {
            let want = "an object with \"longest_edge\", or \"height\" and \"width\"";
            let o = s.as_object().ok_or_else(|| k.wrong("size", want))?;
            c.size = match (o.get("longest_edge"), o.get("height"), o.get("width")) {
                (Some(l), _, _) if !l.is_null() => Size::LongestEdge(k.positive(l, "size")?),
                (_, Some(h), Some(w)) => Size::Exact { height: k.positive(h, "size")?, width: k.positive(w, "size")? },
                _ => return Err(k.wrong("size", want)),
            };
        }
        if let Some(s) = map.get("max_image_size").filter(|v| !v.is_null()) {
            let l = s
                .as_object()
                .and_then(|o| o.get("longest_edge"))
                .ok_or_else(|| k.wrong("max_image_size", "an object with \"longest_edge\""))?;
            c.max_image_size = k.positive(l, "max_image_size")?;
        }
        if let Some(v) = map.get("image_seq_len").filter(|v| !v.is_null()) {
            c.image_seq_len = k.positive(v, "image_seq_len")?;
        }
        Ok(c)
    }
}
