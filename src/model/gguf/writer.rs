//! A tiny GGUF writer for tests: round trips, corrupt files, and tokenizers built from small
//! vocabularies.

use super::{Array, GgmlType, Value};

/// Builds GGUF images in memory. Tensor data is laid out in order, each at the next aligned
/// offset, and filled with a byte pattern; `offset` overrides a tensor's stored offset.
pub(crate) struct Writer {
    pub version: u32,
    pub alignment: u64,
    pub kv: Vec<(String, u32, Vec<u8>)>,
    pub tensors: Vec<(String, Vec<u64>, u32, Option<u64>)>,
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The GGUF type id and encoding of a value.
pub(crate) fn encode(v: &Value) -> (u32, Vec<u8>) {
    let mut o = Vec::new();
    let ty = match v {
        Value::U8(x) => {
            o.extend(x.to_le_bytes());
            0
        }
        Value::I8(x) => {
            o.extend(x.to_le_bytes());
            1
        }
        Value::U16(x) => {
            o.extend(x.to_le_bytes());
            2
        }
        Value::I16(x) => {
            o.extend(x.to_le_bytes());
            3
        }
        Value::U32(x) => {
            o.extend(x.to_le_bytes());
            4
        }
        Value::I32(x) => {
            o.extend(x.to_le_bytes());
            5
        }
        Value::F32(x) => {
            o.extend(x.to_le_bytes());
            6
        }
        Value::Bool(x) => {
            o.push(*x as u8);
            7
        }
        Value::Str(s) => {
            put_str(&mut o, s);
            8
        }
        Value::U64(x) => {
            o.extend(x.to_le_bytes());
            10
        }
        Value::I64(x) => {
            o.extend(x.to_le_bytes());
            11
        }
        Value::F64(x) => {
            o.extend(x.to_le_bytes());
            12
        }
        Value::Array(a) => {
            fn items<T>(o: &mut Vec<u8>, ty: u32, v: &[T], f: impl Fn(&T) -> Value) {
                o.extend(ty.to_le_bytes());
                o.extend((v.len() as u64).to_le_bytes());
                for x in v {
                    o.extend(encode(&f(x)).1);
                }
            }
            match a {
                Array::U8(v) => items(&mut o, 0, v, |&x| Value::U8(x)),
                Array::I8(v) => items(&mut o, 1, v, |&x| Value::I8(x)),
                Array::U16(v) => items(&mut o, 2, v, |&x| Value::U16(x)),
                Array::I16(v) => items(&mut o, 3, v, |&x| Value::I16(x)),
                Array::U32(v) => items(&mut o, 4, v, |&x| Value::U32(x)),
                Array::I32(v) => items(&mut o, 5, v, |&x| Value::I32(x)),
                Array::F32(v) => items(&mut o, 6, v, |&x| Value::F32(x)),
                Array::Bool(v) => items(&mut o, 7, v, |&x| Value::Bool(x)),
                Array::Str(v) => items(&mut o, 8, v, |x| Value::Str(x.clone())),
                Array::U64(v) => items(&mut o, 10, v, |&x| Value::U64(x)),
                Array::I64(v) => items(&mut o, 11, v, |&x| Value::I64(x)),
                Array::F64(v) => items(&mut o, 12, v, |&x| Value::F64(x)),
            }
            9
        }
    };
    (ty, o)
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            version: 3,
            alignment: 32,
            kv: Vec::new(),
            tensors: Vec::new(),
        }
    }
    pub fn kv(mut self, key: &str, v: Value) -> Writer {
        let (ty, bytes) = encode(&v);
        self.kv.push((key.into(), ty, bytes));
        self
    }
    /// A key with a raw type id and payload, for corrupt values.
    pub fn raw_kv(mut self, key: &str, ty: u32, payload: Vec<u8>) -> Writer {
        self.kv.push((key.into(), ty, payload));
        self
    }
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: u32) -> Writer {
        self.tensors.push((name.into(), dims.to_vec(), ty, None));
        self
    }
    pub fn tensor_at(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Writer {
        self.tensors
            .push((name.into(), dims.to_vec(), ty, Some(offset)));
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut o = b"GGUF".to_vec();
        o.extend(self.version.to_le_bytes());
        o.extend((self.tensors.len() as u64).to_le_bytes());
        o.extend((self.kv.len() as u64).to_le_bytes());
        for (k, ty, payload) in &self.kv {
            put_str(&mut o, k);
            o.extend(ty.to_le_bytes());
            o.extend(payload);
        }
        let sizes: Vec<u64> = self
            .tensors
            .iter()
            .map(|(_, dims, ty, _)| {
                GgmlType::from_id(*ty)
                    .and_then(|t| t.n_bytes(dims).ok())
                    .filter(|&n| n < 1 << 20)
                    .unwrap_or(0)
            })
            .collect();
        let mut next = 0u64;
        for ((name, dims, ty, offset), size) in self.tensors.iter().zip(&sizes) {
            put_str(&mut o, name);
            o.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                o.extend(d.to_le_bytes());
            }
            o.extend(ty.to_le_bytes());
            o.extend(offset.unwrap_or(next).to_le_bytes());
            next = (next + size).next_multiple_of(self.alignment);
        }
        o.resize(
            (o.len() as u64).next_multiple_of(self.alignment) as usize,
            0,
        );
        let data_start = o.len();
        o.resize(data_start + next as usize, 0);
        for (i, b) in o[data_start..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        o
    }
}
