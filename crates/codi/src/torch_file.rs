//! Reading a PyTorch `torch.save` state dict (`pytorch_model.bin`, what the reference trainer
//! writes with `--save_safetensors False`) without PyTorch.
//!
//! The file is the zip archive PyTorch writes since 1.6: `<name>/data.pkl`, a pickle of the
//! (ordered) dict whose tensors name their storage by a persistent id, and one uncompressed entry
//! `<name>/data/<key>` per storage (little-endian). The pickle is run on a small stack machine that
//! knows the opcodes of protocols 2–4 a state dict uses and the constructors
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` (and `_rebuild_tensor`,
//! `_rebuild_parameter`); anything else becomes an opaque object, which is an error only where a
//! tensor was expected. Nothing is executed. Tensors sharing a storage (tied weights) each get their
//! own copy; strided views are gathered.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use latent_core::hf::safetensors::HostTensor;

use crate::{CodiError, Result};

/// The tensors of the state dict in `path`, in file order, as f32 (integer and boolean tensors are
/// converted too; float64 is rounded).
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, HostTensor)>> {
    let mut archive = Archive::open(path)?;
    let pickle_name = archive
        .names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min()
        .map(str::to_string)
        .ok_or_else(|| {
            bad(
                path,
                "no `<name>/data.pkl` entry: not a PyTorch zip checkpoint (files written by \
                 PyTorch before 1.6 are not supported; re-save them with a current torch.save)",
            )
        })?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    if let Some(order) = archive.entry(&format!("{prefix}byteorder")) {
        let order = archive.read(&order)?;
        if order != b"little" {
            return Err(bad(
                path,
                format!(
                    "byte order {:?}; only little-endian files are supported",
                    String::from_utf8_lossy(&order)
                ),
            ));
        }
    }
    let entry = archive.entry(&pickle_name).expect("listed");
    let pickle = archive.read(&entry)?;
    let root = Unpickler::new(&pickle, path).run()?;
    let Value::Dict(items) = root else {
        return Err(bad(
            path,
            format!("the pickle holds {}, not a state dict", root.kind()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (key, value) in items {
        let Value::Str(key) = key else {
            return Err(bad(
                path,
                format!("a state-dict key is {}, not a string", key.kind()),
            ));
        };
        let Value::Tensor(t) = value else {
            return Err(bad(
                path,
                format!("`{key}` is {}, not a tensor", value.kind()),
            ));
        };
        let storage = archive
            .entry(&format!("{prefix}data/{}", t.storage.key))
            .ok_or_else(|| {
                bad(
                    path,
                    format!("`{key}`: storage entry `data/{}` is missing", t.storage.key),
                )
            })?;
        let bytes = archive.read(&storage)?;
        out.push((key.clone(), t.gather(&bytes, path, &key)?));
    }
    Ok(out)
}

fn bad(path: &Path, reason: impl Into<String>) -> CodiError {
    CodiError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The zip container (stored entries only, zip64 aware).

#[derive(Debug, Clone)]
struct Entry {
    header_offset: u64,
    size: u64,
    method: u16,
    name: String,
}

struct Archive {
    path: PathBuf,
    file: File,
    entries: HashMap<String, Entry>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Archive {
    fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| CodiError::io(path, e))?;
        let len = file.metadata().map_err(|e| CodiError::io(path, e))?.len();
        let not_zip = || {
            bad(
                path,
                "not a zip archive (no end-of-central-directory record)",
            )
        };
        // The end record (22 bytes) plus at most a 64 KiB comment.
        let tail_len = len.min(22 + 65_535);
        let tail = read_at(&mut file, path, len - tail_len, tail_len as usize)?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(&tail, i) == 0x0605_4b50)
            .ok_or_else(not_zip)?;
        let mut count = u64::from(u16_at(&tail, eocd + 10));
        let mut cd_size = u64::from(u32_at(&tail, eocd + 12));
        let mut cd_offset = u64::from(u32_at(&tail, eocd + 16));
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // Zip64: a locator just before the end record points at the zip64 end record.
            let locator = eocd.checked_sub(20).ok_or_else(not_zip)?;
            if u32_at(&tail, locator) != 0x0706_4b50 {
                return Err(bad(path, "zip64 end-of-central-directory locator missing"));
            }
            let record = read_at(&mut file, path, u64_at(&tail, locator + 8), 56)?;
            if u32_at(&record, 0) != 0x0606_4b50 {
                return Err(bad(path, "zip64 end-of-central-directory record missing"));
            }
            count = u64_at(&record, 32);
            cd_size = u64_at(&record, 40);
            cd_offset = u64_at(&record, 48);
        }
        if cd_offset.saturating_add(cd_size) > len {
            return Err(bad(path, "central directory lies outside the file"));
        }
        let cd = read_at(&mut file, path, cd_offset, cd_size as usize)?;
        let mut entries = HashMap::new();
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > cd.len() || u32_at(&cd, at) != 0x0201_4b50 {
                return Err(bad(path, "corrupt central directory"));
            }
            let method = u16_at(&cd, at + 10);
            let mut size = u64::from(u32_at(&cd, at + 24));
            let name_len = usize::from(u16_at(&cd, at + 28));
            let extra_len = usize::from(u16_at(&cd, at + 30));
            let comment_len = usize::from(u16_at(&cd, at + 32));
            let mut header_offset = u64::from(u32_at(&cd, at + 42));
            let compressed_field = u32_at(&cd, at + 20);
            let end = at + 46 + name_len + extra_len + comment_len;
            if end > cd.len() {
                return Err(bad(path, "corrupt central directory"));
            }
            let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]).into_owned();
            // The zip64 extra field holds, in this order, the values whose 32-bit field is saturated.
            let mut extra = &cd[at + 46 + name_len..at + 46 + name_len + extra_len];
            while extra.len() >= 4 {
                let (id, n) = (u16_at(extra, 0), usize::from(u16_at(extra, 2)));
                let body = &extra[4..(4 + n).min(extra.len())];
                if id == 0x0001 {
                    let mut values = body.chunks_exact(8).map(|c| u64_at(c, 0));
                    if size == 0xFFFF_FFFF {
                        size = values.next().unwrap_or(size);
                    }
                    if compressed_field == 0xFFFF_FFFF {
                        values.next();
                    }
                    if header_offset == 0xFFFF_FFFF {
                        header_offset = values.next().unwrap_or(header_offset);
                    }
                }
                extra = &extra[(4 + n).min(extra.len())..];
            }
            entries.insert(
                name.clone(),
                Entry {
                    header_offset,
                    size,
                    method,
                    name,
                },
            );
            at = end;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn entry(&self, name: &str) -> Option<Entry> {
        self.entries.get(name).cloned()
    }

    fn read(&mut self, entry: &Entry) -> Result<Vec<u8>> {
        let path = self.path.clone();
        if entry.method != 0 {
            return Err(bad(
                &path,
                format!(
                    "entry `{}` is compressed (method {}); PyTorch stores entries uncompressed",
                    entry.name, entry.method
                ),
            ));
        }
        let header = read_at(&mut self.file, &path, entry.header_offset, 30)?;
        if u32_at(&header, 0) != 0x0403_4b50 {
            return Err(bad(
                &path,
                format!("entry `{}`: bad local header", entry.name),
            ));
        }
        let skip = 30 + u64::from(u16_at(&header, 26)) + u64::from(u16_at(&header, 28));
        read_at(
            &mut self.file,
            &path,
            entry.header_offset + skip,
            entry.size as usize,
        )
    }
}

fn read_at(file: &mut File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| CodiError::io(path, e))?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Tensors.

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Elem {
    fn from_storage(name: &str) -> Option<Self> {
        Some(match name.rsplit('.').next()? {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::Bf16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            Self::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
            Self::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Self::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::Bf16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Self::I32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32,
            Self::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])),
            Self::I8 => f32::from(b[0] as i8),
            Self::U8 | Self::Bool => f32::from(b[0]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct StorageRef {
    elem: Elem,
    key: String,
}

#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    storage: StorageRef,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorRef {
    /// The tensor's values, read from its storage's bytes.
    fn gather(&self, bytes: &[u8], path: &Path, key: &str) -> Result<HostTensor> {
        let size = self.storage.elem.size();
        let numel: usize = self.shape.iter().product();
        // The furthest element the view reads.
        let last = self.offset
            + self
                .shape
                .iter()
                .zip(&self.stride)
                .map(|(&n, &s)| n.saturating_sub(1) * s)
                .sum::<usize>();
        if numel > 0 && (last + 1) * size > bytes.len() {
            return Err(bad(
                path,
                format!(
                    "`{key}`: shape {:?} stride {:?} offset {} reads past its storage of {} bytes",
                    self.shape,
                    self.stride,
                    self.offset,
                    bytes.len()
                ),
            ));
        }
        let at = |i: usize| self.storage.elem.decode(&bytes[i * size..(i + 1) * size]);
        let mut contiguous = vec![1usize; self.shape.len()];
        for d in (0..self.shape.len().saturating_sub(1)).rev() {
            contiguous[d] = contiguous[d + 1] * self.shape[d + 1];
        }
        let dense = self
            .shape
            .iter()
            .zip(self.stride.iter().zip(&contiguous))
            .all(|(&n, (&s, &c))| n <= 1 || s == c);
        let data = if dense {
            (self.offset..self.offset + numel).map(at).collect()
        } else {
            let mut data = Vec::with_capacity(numel);
            let mut index = vec![0usize; self.shape.len()];
            for _ in 0..numel {
                let flat: usize = self.offset
                    + index
                        .iter()
                        .zip(&self.stride)
                        .map(|(i, s)| i * s)
                        .sum::<usize>();
                data.push(at(flat));
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    if index[d] < self.shape[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
            data
        };
        Ok(HostTensor {
            shape: self.shape.clone(),
            data,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The pickle machine.

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Mark,
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// What an unknown constructor returned.
    Object(String),
}

impl Value {
    fn kind(&self) -> String {
        match self {
            Value::Mark => "a mark".into(),
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(g) => format!("the global {g}"),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Object(c) => format!("an object built by {c}"),
        }
    }

    fn usize(&self) -> Option<usize> {
        match self {
            Value::Int(v) => usize::try_from(*v).ok(),
            _ => None,
        }
    }

    fn usizes(&self) -> Option<Vec<usize>> {
        match self {
            Value::Tuple(items) | Value::List(items) => items.iter().map(Value::usize).collect(),
            _ => None,
        }
    }
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    path: &'a Path,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8], path: &'a Path) -> Self {
        Self {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            path,
        }
    }

    fn err(&self, reason: impl std::fmt::Display) -> CodiError {
        bad(
            self.path,
            format!("data.pkl at byte {}: {reason}", self.pos),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.data.len() {
            return Err(self.err("truncated pickle"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32_at(self.take(4)?, 0))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| bad(self.path, format!("data.pkl at byte {pos}: empty stack")))
    }

    /// The values above the topmost mark (the mark removed).
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| self.err("no mark on the stack"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn put(&mut self, index: u32) -> Result<()> {
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<()> {
        let v = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.err(format!("memo entry {index} is unset")))?;
        self.stack.push(v);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<()> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.err("odd number of dict items"));
        }
        let pos = self.pos;
        let Value::Dict(items) = self.top()? else {
            return Err(bad(
                self.path,
                format!("data.pkl at byte {pos}: items set on a non-dict"),
            ));
        };
        let mut it = pairs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match items.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => items.push((k, v)),
            }
        }
        Ok(())
    }

    fn append(&mut self, values: Vec<Value>) -> Result<()> {
        let pos = self.pos;
        match self.top()? {
            Value::List(items) => {
                items.extend(values);
                Ok(())
            }
            // Appending to an opaque object (a custom list type) keeps it opaque.
            Value::Object(_) => Ok(()),
            _ => Err(bad(
                self.path,
                format!("data.pkl at byte {pos}: append to a non-list"),
            )),
        }
    }

    /// `callable(*args)` for the constructors a state dict uses.
    fn call(&self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = callable else {
            return Ok(Value::Object(callable.kind()));
        };
        let Value::Tuple(args) = args else {
            return Ok(Value::Object(name));
        };
        match name.as_str() {
            "collections.OrderedDict" if args.is_empty() => Ok(Value::Dict(Vec::new())),
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                let bad_args = || self.err(format!("unexpected arguments to {name}"));
                let [Value::Storage(storage), offset, shape, stride, ..] = args.as_slice() else {
                    return Err(bad_args());
                };
                let (Some(offset), Some(shape), Some(stride)) =
                    (offset.usize(), shape.usizes(), stride.usizes())
                else {
                    return Err(bad_args());
                };
                if shape.len() != stride.len() {
                    return Err(bad_args());
                }
                Ok(Value::Tensor(TensorRef {
                    storage: storage.clone(),
                    offset,
                    shape,
                    stride,
                }))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(t @ Value::Tensor(_)) => Ok(t),
                    _ => Err(self.err(format!("unexpected arguments to {name}"))),
                }
            }
            _ => Ok(Value::Object(name)),
        }
    }

    /// `persistent_load(pid)`: `('storage', <storage type>, key, location, numel)`.
    fn persistent(&self, pid: Value) -> Result<Value> {
        let Value::Tuple(items) = pid else {
            return Err(self.err(format!("persistent id is {}", pid.kind())));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(kind), Value::Str(key), ..] if tag == "storage" => {
                let elem = Elem::from_storage(kind)
                    .ok_or_else(|| self.err(format!("unsupported storage type {kind}")))?;
                Ok(Value::Storage(StorageRef {
                    elem,
                    key: key.clone(),
                }))
            }
            _ => Err(self.err("persistent id is not a storage")),
        }
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.byte()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.stack.push(Value::Int(i64::from(u16_at(b, 0))));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        usize::from(self.byte()?)
                    } else {
                        self.u32()? as usize
                    };
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(self.err("integer wider than 64 bits"));
                    }
                    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        0xFF
                    } else {
                        0
                    };
                    let mut le = [fill; 8];
                    le[..n].copy_from_slice(b);
                    self.stack.push(Value::Int(i64::from_le_bytes(le)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c | b'U' => {
                    let n = usize::from(self.byte()?);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = u64_at(self.take(8)?, 0) as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'B' | b'C' => {
                    let n = if op == b'B' {
                        self.u32()? as usize
                    } else {
                        usize::from(self.byte()?)
                    };
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v));
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'q' => {
                    let i = u32::from(self.byte()?);
                    self.put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.put(i)?;
                }
                b'h' => {
                    let i = u32::from(self.byte()?);
                    self.get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    self.stack.push(Value::Object(cls.kind()));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: the state (e.g. an OrderedDict's `_metadata`) is not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'1' => {
                    self.pop_mark()?;
                }
                other => {
                    return Err(self.err(format!(
                        "unsupported pickle opcode 0x{other:02x} (a state dict of tensors does not use it)"
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written protocol-2 pickle: `OrderedDict(w=tensor(storage 0, shape (2, 3), stride
    /// (1, 2)))`, i.e. a transposed view.
    fn pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        p.extend(b"K\x00K\x02K\x03\x86K\x01K\x02\x86\x89h\x00)RtRu.");
        p
    }

    #[test]
    fn runs_a_state_dict_pickle_and_gathers_a_strided_view() {
        let path = Path::new("t.bin");
        let root = Unpickler::new(&pickle(), path).run().unwrap();
        let Value::Dict(items) = root else {
            panic!("{root:?}")
        };
        let Value::Tensor(t) = &items[0].1 else {
            panic!()
        };
        assert_eq!(
            (t.shape.clone(), t.stride.clone()),
            (vec![2, 3], vec![1, 2])
        );
        let bytes: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let host = t.gather(&bytes, path, "w").unwrap();
        // Storage 0..6 read with strides (1, 2): rows [0, 2, 4] and [1, 3, 5].
        assert_eq!(host.data, vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        let err = t.gather(&bytes[..20], path, "w").unwrap_err().to_string();
        assert!(
            err.contains("`w`") && err.contains("past its storage"),
            "{err}"
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let path = Path::new("t.bin");
        let err = Unpickler::new(&[0x80, 2, b'I'], path)
            .run()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.bin") && err.contains("opcode 0x49"),
            "{err}"
        );
        let err = read_state_dict(Path::new("Cargo.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Cargo.toml") && err.contains("zip"), "{err}");
    }
}
