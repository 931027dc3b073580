//! The header parser: a bounds-checked cursor over the file's bytes.

use std::collections::HashMap;

use super::{Array, GgmlType, TYPE_NAMES, TensorInfo, Value};

pub(super) struct Header {
    pub(super) version: u32,
    pub(super) alignment: u64,
    pub(super) data_offset: u64,
    pub(super) metadata: Vec<(String, Value)>,
    pub(super) keys: HashMap<String, usize>,
    pub(super) tensors: Vec<TensorInfo>,
    pub(super) names: HashMap<String, usize>,
}

type Msg<T> = std::result::Result<T, String>;

/// A cursor over the file's bytes; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Msg<&'a [u8]> {
        if n > self.left() {
            return Err(format!(
                "truncated: {} at byte {} needs {n} bytes, but the file ends at byte {}",
                what(),
                self.pos,
                self.buf.len()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Msg<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: impl FnOnce() -> String) -> Msg<u32> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: impl FnOnce() -> String) -> Msg<u64> {
        self.array(what).map(u64::from_le_bytes)
    }
    fn string(&mut self, what: &dyn Fn() -> String) -> Msg<String> {
        let at = self.pos;
        let len = self.u64(|| format!("the length of {}", what()))?;
        if len > self.left() {
            return Err(format!(
                "{}: string length {len} (at byte {at}) runs past the end of the file ({} bytes)",
                what(),
                self.buf.len()
            ));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{}: string at byte {at} is not valid UTF-8", what()))
    }
    /// `count` fixed-size elements decoded by `f` (after checking they fit in the file).
    fn fixed<T, const N: usize>(
        &mut self,
        count: u64,
        what: &dyn Fn() -> String,
        f: impl Fn([u8; N]) -> T,
    ) -> Msg<Vec<T>> {
        let bytes = self.take(count * N as u64, what)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect())
    }

    fn value(&mut self, ty: u32, what: &dyn Fn() -> String) -> Msg<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => Value::Bool(self.array::<1>(what)?[0] != 0),
            8 => Value::Str(self.string(what)?),
            9 => Value::Array(self.array_value(what)?),
            10 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            t => return Err(format!("{}: unknown value type {t}", what())),
        })
    }

    fn array_value(&mut self, what: &dyn Fn() -> String) -> Msg<Array> {
        let ty = self.u32(|| format!("the element type of {}", what()))?;
        let at = self.pos;
        let count = self.u64(|| format!("the element count of {}", what()))?;
        let elem: u64 = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8, // a string needs at least its 8-byte length
            9 => return Err(format!("{}: nested arrays are not supported", what())),
            t => return Err(format!("{}: unknown array element type {t}", what())),
        };
        if count.checked_mul(elem).is_none_or(|n| n > self.left()) {
            return Err(format!(
                "{}: array of {count} {} elements (count at byte {at}) runs past the end of the \
                 file ({} bytes)",
                what(),
                TYPE_NAMES[ty as usize],
                self.buf.len()
            ));
        }
        if count > MAX_ARRAY_LEN {
            return Err(format!(
                "{}: array of {count} elements (count at byte {at}) is longer than edgerl \
                 supports ({MAX_ARRAY_LEN})",
                what()
            ));
        }
        Ok(match ty {
            0 => Array::U8(self.fixed(count, what, |[b]: [u8; 1]| b)?),
            1 => Array::I8(self.fixed(count, what, i8::from_le_bytes)?),
            2 => Array::U16(self.fixed(count, what, u16::from_le_bytes)?),
            3 => Array::I16(self.fixed(count, what, i16::from_le_bytes)?),
            4 => Array::U32(self.fixed(count, what, u32::from_le_bytes)?),
            5 => Array::I32(self.fixed(count, what, i32::from_le_bytes)?),
            6 => Array::F32(self.fixed(count, what, f32::from_le_bytes)?),
            7 => Array::Bool(self.fixed(count, what, |[b]: [u8; 1]| b != 0)?),
            10 => Array::U64(self.fixed(count, what, u64::from_le_bytes)?),
            11 => Array::I64(self.fixed(count, what, i64::from_le_bytes)?),
            12 => Array::F64(self.fixed(count, what, f64::from_le_bytes)?),
            _ => {
                let mut v = Vec::with_capacity(count.min(RESERVE) as usize);
                for i in 0..count {
                    v.push(self.string(&|| format!("{}[{i}]", what()))?);
                }
                Array::Str(v)
            }
        })
    }
}

/// The smallest encodings: a key/value pair (empty key, u8 value), a tensor info (empty name,
/// 0 dims). Counts are checked against these before anything is reserved.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;
const MAX_DIMS: u32 = 4;
/// Far above any real file (tens of keys; vocabularies and merge lists of up to ~1M entries;
/// tensors in the thousands), so that a file of zeros or repeated entries, which passes the
/// size checks above, cannot make the parsed header many times larger than the file.
const MAX_KVS: u64 = 1 << 20;
const MAX_TENSORS: u64 = 1 << 20;
const MAX_ARRAY_LEN: u64 = 1 << 24;
/// What is reserved up front for a counted list; the rest grows with the entries actually read
/// (a count from the file is a claim, and a parsed entry takes several times its minimal
/// encoding).
const RESERVE: u64 = 1024;

pub(super) fn parse_header(buf: &[u8]) -> Msg<Header> {
    let mut r = Reader { buf, pos: 0 };
    let magic = r.array::<4>(|| "the magic number".into())?;
    if &magic != b"GGUF" {
        return Err(format!(
            "not a GGUF file (starts with {:?}, expected \"GGUF\")",
            String::from_utf8_lossy(&magic)
        ));
    }
    let version = r.u32(|| "the version".into())?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(
                "GGUF version 1 is not supported (only versions 2 and 3); convert the model again \
                 with a current llama.cpp"
                    .into(),
            );
        }
        v if (1..=3).contains(&v.swap_bytes()) => {
            return Err(format!(
                "GGUF version {v} is not supported: this looks like a big-endian file (version {} \
                 byte-swapped); only little-endian versions 2 and 3 are",
                v.swap_bytes()
            ));
        }
        v => {
            return Err(format!(
                "GGUF version {v} is not supported (only versions 2 and 3)"
            ));
        }
    }
    let tensor_count = r.u64(|| "the tensor count".into())?;
    let kv_count = r.u64(|| "the metadata count".into())?;
    if kv_count
        .checked_mul(MIN_KV_BYTES)
        .is_none_or(|n| n > r.left())
    {
        return Err(format!(
            "metadata count {kv_count} runs past the end of the file ({} bytes)",
            buf.len()
        ));
    }
    if kv_count > MAX_KVS {
        return Err(format!(
            "metadata count {kv_count} is larger than edgerl supports ({MAX_KVS})"
        ));
    }
    let mut metadata = Vec::with_capacity(kv_count.min(RESERVE) as usize);
    let mut keys = HashMap::with_capacity(kv_count.min(RESERVE) as usize);
    for i in 0..kv_count {
        let key = r.string(&|| format!("metadata key #{i}"))?;
        let what = || format!("metadata key {key}");
        let ty = r.u32(|| format!("the value type of {}", what()))?;
        let value = r.value(ty, &what)?;
        if keys.insert(key.clone(), metadata.len()).is_some() {
            return Err(format!("duplicate metadata key {key}"));
        }
        metadata.push((key, value));
    }

    let alignment = match keys.get("general.alignment").map(|&i| &metadata[i].1) {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => a,
            _ => {
                return Err(format!(
                    "general.alignment ({}) is not a nonzero power of two",
                    v.describe()
                ));
            }
        },
    };

    if tensor_count
        .checked_mul(MIN_TENSOR_INFO_BYTES)
        .is_none_or(|n| n > r.left())
    {
        return Err(format!(
            "tensor count {tensor_count} runs past the end of the file ({} bytes)",
            buf.len()
        ));
    }
    if tensor_count > MAX_TENSORS {
        return Err(format!(
            "tensor count {tensor_count} is larger than edgerl supports ({MAX_TENSORS})"
        ));
    }
    struct Raw {
        name: String,
        ggml_type: GgmlType,
        dims: Vec<u64>,
        offset: u64,
        n_bytes: u64,
    }
    let mut raw = Vec::with_capacity(tensor_count.min(RESERVE) as usize);
    let mut names = HashMap::with_capacity(tensor_count.min(RESERVE) as usize);
    for i in 0..tensor_count {
        let name = r.string(&|| format!("the name of tensor #{i}"))?;
        let n_dims = r.u32(|| format!("the dimension count of tensor {name}"))?;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "tensor {name}: {n_dims} dimensions (at most {MAX_DIMS} are supported)"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(r.u64(|| format!("dimension {d} of tensor {name}"))?);
        }
        let type_id = r.u32(|| format!("the type of tensor {name}"))?;
        let ggml_type = GgmlType::from_id(type_id)
            .ok_or_else(|| format!("tensor {name}: unknown ggml type id {type_id}"))?;
        let offset = r.u64(|| format!("the data offset of tensor {name}"))?;
        let n_bytes = ggml_type
            .n_bytes(&dims)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        if dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .is_none()
        {
            return Err(format!(
                "tensor {name}: element count of dims {dims:?} overflows"
            ));
        }
        if offset % alignment != 0 {
            return Err(format!(
                "tensor {name}: data offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        if names.insert(name.clone(), raw.len()).is_some() {
            return Err(format!("duplicate tensor name {name}"));
        }
        raw.push(Raw {
            name,
            ggml_type,
            dims,
            offset,
            n_bytes,
        });
    }

    let header_end = r.pos as u64;
    let data_offset = header_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| format!("alignment {alignment} overflows the data offset"))?;
    let len = buf.len() as u64;
    let mut tensors = Vec::with_capacity(raw.len());
    for t in raw {
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!(
                "tensor {}: data offset {} + size {} overflows",
                t.name, t.offset, t.n_bytes
            ));
        };
        if end > len {
            return Err(format!(
                "tensor {}: data [{start}..{end}) runs past the end of the file ({len} bytes)",
                t.name
            ));
        }
        tensors.push(TensorInfo {
            name: t.name,
            ggml_type: t.ggml_type,
            dims: t.dims,
            offset: t.offset,
            start: start as usize,
            end: end as usize,
        });
    }
    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        keys,
        tensors,
        names,
    })
}
