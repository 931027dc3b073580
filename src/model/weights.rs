//! Where weights come from: Hugging Face safetensors (single or sharded, memory-mapped, never
//! read whole into memory), or a generator for benchmarks. Every header is checked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::gpu::{DType, quant};

/// One tensor's bytes as stored (little-endian), with its element type and shape.
pub struct RawTensor<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
    /// Where it came from, for error messages.
    pub origin: PathBuf,
}

pub trait WeightSource {
    /// The tensor called `name`, or `None` when the checkpoint has no such tensor.
    fn get(&self, name: &str) -> Result<Option<RawTensor<'_>>>;
    /// Whether the checkpoint has a tensor called `name` (without reading it).
    fn has(&self, name: &str) -> bool;
    /// Where the weights live, for messages.
    fn origin(&self) -> PathBuf;
    /// The stored element type of tensor `name` (`None`: no such tensor), without converting
    /// its data; the memory planner sizes weights from it.
    fn dtype_of(&self, name: &str) -> Result<Option<DType>> {
        Ok(self.get(name)?.map(|t| t.dtype))
    }
    /// Where the model's shapes come from, for shape errors.
    fn config_source(&self) -> &'static str {
        "config.json"
    }
}

struct Entry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The safetensors files of a Hugging Face model directory.
pub struct SafetensorsWeights {
    dir: PathBuf,
    files: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
}

fn map_dtype(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}

impl SafetensorsWeights {
    /// Opens one safetensors file (an adapter, say).
    pub fn open_file(path: &Path) -> Result<SafetensorsWeights> {
        let mut w = SafetensorsWeights {
            dir: path.to_path_buf(),
            files: Vec::new(),
            entries: HashMap::new(),
        };
        w.add_file(path)?;
        Ok(w)
    }

    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<SafetensorsWeights> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let shard_names: Vec<String> = if single.exists() {
            vec!["model.safetensors".into()]
        } else if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::file(&index, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::file(&index, format!("not valid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::file(&index, "no `weight_map` object"))?;
            let mut names: Vec<String> = Vec::new();
            for (tensor, f) in map {
                let f = f.as_str().ok_or_else(|| {
                    Error::file(&index, format!("weight_map[{tensor:?}] is not a file name"))
                })?;
                if f.contains('/') || f.contains('\\') || f.contains("..") {
                    return Err(Error::file(
                        &index,
                        format!("shard name {f:?} leaves the model directory"),
                    ));
                }
                if !names.iter().any(|n| n == f) {
                    names.push(f.to_string());
                }
            }
            names.sort();
            names
        } else {
            return Err(Error::file(
                dir,
                "no model.safetensors or model.safetensors.index.json",
            ));
        };

        let mut w = SafetensorsWeights {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            entries: HashMap::new(),
        };
        for name in shard_names {
            w.add_file(&dir.join(&name))?;
        }
        Ok(w)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let path = path.to_path_buf();
        let file = File::open(&path).map_err(|e| Error::file(&path, e))?;
        // Safety: the file is opened read-only; as with every mmap-based loader, a file
        // truncated by another process while mapped is outside what we can guard against.
        let mmap = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::file(&path, format!("cannot map: {e}")))?;
        let entries = read_header(&mmap, self.files.len()).map_err(|e| Error::file(&path, e))?;
        for (tname, entry) in entries {
            if self.entries.contains_key(&tname) {
                return Err(Error::file(
                    &path,
                    format!("tensor {tname} appears in more than one shard"),
                ));
            }
            self.entries.insert(tname, entry);
        }
        self.files.push((path, mmap));
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }
}

/// Checks a safetensors image's header (length, JSON, every tensor's dtype and byte range
/// against the image's size) and returns each tensor with its absolute range; `file` is the
/// shard index stored in the entries. Errors are bare reasons; the caller names the file.
fn read_header(bytes: &[u8], file: usize) -> std::result::Result<Vec<(String, Entry)>, String> {
    let (header_len, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let base = 8 + header_len;
    let mut out = Vec::new();
    for (tname, info) in meta.tensors() {
        let dtype = map_dtype(info.dtype).ok_or_else(|| {
            format!(
                "tensor {tname} has dtype {:?}; expected F32, F16 or BF16",
                info.dtype
            )
        })?;
        let (s, e) = info.data_offsets;
        // read_metadata checked the offsets against the length; checked here again so an
        // entry can never slice outside the file whatever the crate version does.
        let (start, end) = (base.checked_add(s), base.checked_add(e));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!("tensor {tname} has offsets past the end of the file"));
        };
        if start > end || end > bytes.len() {
            return Err(format!(
                "tensor {tname} spans bytes {start}..{end}, outside the file's {} bytes",
                bytes.len()
            ));
        }
        out.push((
            tname,
            Entry {
                file,
                dtype,
                shape: info.shape.clone(),
                start,
                end,
            },
        ));
    }
    Ok(out)
}

/// For fuzz/ ([`crate::fuzzing`]): the header check on an in-memory image. An accepted header
/// must give ranges inside the image whose sizes match dtype × shape; a violation panics, so
/// the fuzzer reports it. Returns the tensor count, or the reason the header was refused.
pub(crate) fn fuzz_header(bytes: &[u8]) -> std::result::Result<usize, String> {
    let entries = read_header(bytes, 0)?;
    for (name, e) in &entries {
        let n = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = n.and_then(|n| n.checked_mul(e.dtype.file_block_bytes()));
        assert!(bytes.get(e.start..e.end).is_some(), "{name}: range outside the image");
        assert_eq!(want, Some(e.end - e.start), "{name}: size is not dtype × shape");
    }
    Ok(entries.len())
}

impl WeightSource for SafetensorsWeights {
    fn get(&self, name: &str) -> Result<Option<RawTensor<'_>>> {
        let Some(e) = self.entries.get(name) else {
            return Ok(None);
        };
        let (path, mmap) = &self.files[e.file];
        // read_metadata has checked offsets against the file length already.
        let data = mmap.get(e.start..e.end).ok_or_else(|| {
            Error::file(path, format!("tensor {name} lies past the end of the file"))
        })?;
        Ok(Some(RawTensor {
            dtype: e.dtype,
            shape: e.shape.clone(),
            data: Cow::Borrowed(data),
            origin: path.clone(),
        }))
    }
    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
    fn origin(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Random weights with a model's exact shapes, for benchmarks: no file needed.
pub struct RandomWeights {
    pub dtype: DType,
    pub shapes: HashMap<String, Vec<usize>>,
    pub seed: u64,
}

impl WeightSource for RandomWeights {
    fn get(&self, name: &str) -> Result<Option<RawTensor<'_>>> {
        let Some(shape) = self.shapes.get(name) else {
            return Ok(None);
        };
        let n: usize = shape.iter().product();
        let dtype = self.stored_dtype(shape);
        let is_norm = name.contains("norm");
        let scale = if is_norm { 0.0 } else { 0.02 };
        let mut state = self.seed
            ^ (name.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
                + if is_norm { 1.0 } else { 0.0 }
        };
        let vals: Vec<f32> = (0..n).map(|_| next()).collect();
        let data = quant::quantize(dtype, &vals)?;
        Ok(Some(RawTensor {
            dtype,
            shape: shape.clone(),
            data: Cow::Owned(data),
            origin: PathBuf::from("<random>"),
        }))
    }
    fn has(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
    }
    fn origin(&self) -> PathBuf {
        PathBuf::from("<random weights>")
    }
    fn dtype_of(&self, name: &str) -> Result<Option<DType>> {
        Ok(self.shapes.get(name).map(|s| self.stored_dtype(s)))
    }
}

impl RandomWeights {
    /// Quantized types hold matrices with whole blocks per row; the rest stays f32 (as GGUF
    /// files keep norms and biases).
    fn stored_dtype(&self, shape: &[usize]) -> DType {
        let blocks = shape.len() == 2 && shape[1].is_multiple_of(self.dtype.block());
        if self.dtype.is_quantized() && !blocks {
            DType::F32
        } else {
            self.dtype
        }
    }
}

/// Converts raw bytes to f32 values (for small tensors: norms, biases). A trailing partial
/// element or block is ignored.
pub fn to_f32(t: &RawTensor) -> Result<Vec<f32>> {
    quant::dequantize(t.dtype, &t.data).map_err(|e| Error::file(&t.origin, e))
}

/// Converts raw bytes to `want`, borrowing when nothing changes (quantizing or dequantizing
/// when asked; a row that isn't whole blocks is an error naming the file).
pub fn convert<'a>(t: &'a RawTensor<'a>, want: DType) -> Result<Cow<'a, [u8]>> {
    if t.dtype == want {
        return Ok(Cow::Borrowed(&t.data));
    }
    let q = quant::quantize(want, &to_f32(t)?).map_err(|e| Error::file(&t.origin, e))?;
    Ok(Cow::Owned(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_blocks_are_errors_naming_the_file() {
        let t = RawTensor {
            dtype: DType::Q8_0,
            shape: vec![1, 32],
            data: Cow::Owned(vec![0u8; 30]),
            origin: PathBuf::from("broken.gguf"),
        };
        let e = to_f32(&t)
            .expect_err("30 bytes are not a Q8_0 block")
            .to_string();
        assert!(e.contains("broken.gguf"), "{e}");
        assert!(convert(&t, DType::F16).is_err());
        let ok = RawTensor {
            data: Cow::Owned(vec![0u8; 34]),
            ..t
        };
        assert_eq!(convert(&ok, DType::F32).unwrap().len(), 32 * 4);
    }
}
