//! GGUF files (llama.cpp's container): header, metadata and tensor directory, memory-mapped and
//! checked as untrusted input. Every count, length and offset is compared with the bytes that are
//! left before anything is allocated or sliced, tensor sizes use checked arithmetic, and a bad file
//! gives an error naming the file and what is wrong, never a panic or a huge allocation.
//!
//! Layout (versions 2 and 3, little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//! kv_count × (string key, u32 type, value), tensor_count × (string name, u32 n_dims,
//! n_dims × u64 dim, u32 ggml type, u64 offset), padding to `general.alignment` (default 32),
//! then the tensor data; each tensor's offset is relative to the start of that data section.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};

pub mod blocks;
mod parse;
#[cfg(test)]
pub(crate) mod tests;
mod types;
#[cfg(test)]
pub(crate) mod writer;

use parse::parse_header;
use types::TYPE_NAMES;
pub use types::{Array, GgmlType, Value};

/// One entry of the tensor directory.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub ggml_type: GgmlType,
    /// GGUF order: `dims[0]` is the contiguous (column) dimension, so a PyTorch `[rows, cols]`
    /// weight is stored as `[cols, rows]`.
    pub dims: Vec<u64>,
    /// Offset from the start of the data section.
    pub offset: u64,
    /// Absolute byte range in the file, checked against its length.
    start: usize,
    end: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    pub fn n_bytes(&self) -> u64 {
        (self.end - self.start) as u64
    }
}

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open GGUF file.
pub struct Gguf {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    keys: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    names: HashMap<String, usize>,
}

impl Gguf {
    /// Memory-maps and parses `path`; the tensor data is not read.
    pub fn open(path: &Path) -> Result<Gguf> {
        let file = File::open(path).map_err(|e| Error::file(path, e))?;
        // Safety: read-only mapping; as with every mmap-based loader, a file truncated by another
        // process while mapped is outside what we can guard against.
        let mmap = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::file(path, format!("cannot map: {e}")))?;
        Gguf::parse(path, Bytes::Mapped(mmap))
    }

    /// Parses a GGUF image held in memory; `origin` is only used in messages.
    pub fn from_bytes(origin: &Path, bytes: Vec<u8>) -> Result<Gguf> {
        Gguf::parse(origin, Bytes::Owned(bytes))
    }

    fn parse(path: &Path, bytes: Bytes) -> Result<Gguf> {
        let header = parse_header(bytes.as_slice()).map_err(|e| Error::file(path, e))?;
        Ok(Gguf {
            path: path.to_path_buf(),
            bytes,
            version: header.version,
            alignment: header.alignment,
            data_offset: header.data_offset,
            metadata: header.metadata,
            keys: header.keys,
            tensors: header.tensors,
            names: header.names,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Where the data section starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
    /// Every key/value pair, in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.get(key).map(|&i| &self.metadata[i].1)
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        want: &str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T> {
        let v = self
            .get(key)
            .ok_or_else(|| Error::file(&self.path, format!("metadata key {key} is missing")))?;
        f(v).ok_or_else(|| {
            Error::file(
                &self.path,
                format!("metadata key {key} is {}, expected {want}", v.describe()),
            )
        })
    }
    /// A non-negative integer of any integer type.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }
    /// A float, or an integer converted.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.typed(key, "a number", Value::as_f64)
    }
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.typed(key, "a bool", Value::as_bool)
    }
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.typed(key, "a string", Value::as_str)
    }
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        self.typed(key, "an array of strings", |v| v.as_array()?.as_strs())
    }
    /// An array of any integer type.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>> {
        self.typed(key, "an array of integers", |v| v.as_array()?.to_i64_vec())
    }
    /// `general.architecture` ("llama", "qwen2", ...).
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// The tensor directory, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.names.get(name).map(|&i| &self.tensors[i])
    }
    /// The tensor's bytes as stored (empty for an info that is not from this file).
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        self.bytes
            .as_slice()
            .get(info.start..info.end)
            .unwrap_or_default()
    }
}
