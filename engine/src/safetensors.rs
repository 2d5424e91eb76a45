//! A no-alloc reader of the safetensors format, in place over a byte slice.
//!
//! ```text
//! [u64 little-endian N][N bytes of JSON header][tensor data]
//! header = { "name": {"dtype": "I8", "shape": [r, c], "data_offsets": [b, e]}, ...,
//!            "__metadata__": {"key": "value", ...} }
//! ```
//!
//! Headers are at most [`MAX_HEADER`] bytes with at most [`MAX_TENSORS`]
//! tensors (a Kantor model has a few hundred at most), which bounds the
//! pairwise checks below on hostile input.
//!
//! [`SafeTensors::parse`] validates the whole header once — JSON syntax, every
//! dtype, shape and offset, sizes that match, tensors that neither overlap
//! nor leave gaps, no duplicate names — so that later lookups cannot fail
//! on anything but a missing name. Strings are compared raw: names with JSON
//! escapes are never looked up by the engine.

use crate::json::Json;

/// Most tensors a file may hold.
pub const MAX_TENSORS: usize = 512;
/// Largest header accepted (bytes).
pub const MAX_HEADER: usize = 1 << 20;
/// Highest tensor rank accepted.
pub const MAX_RANK: usize = 4;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    BF16,
    /// Signed byte.
    I8,
    /// Unsigned byte.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 64-bit integer.
    I64,
    /// 64-bit float.
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::F16 | Dtype::BF16 | Dtype::U16 | Dtype::I16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    fn from_name(name: &[u8]) -> Option<Dtype> {
        Some(match name {
            b"F32" => Dtype::F32,
            b"F16" => Dtype::F16,
            b"BF16" => Dtype::BF16,
            b"I8" => Dtype::I8,
            b"U8" => Dtype::U8,
            b"U16" => Dtype::U16,
            b"I16" => Dtype::I16,
            b"I32" => Dtype::I32,
            b"U32" => Dtype::U32,
            b"I64" => Dtype::I64,
            b"F64" => Dtype::F64,
            _ => return None,
        })
    }
}

/// Why a file is not a valid safetensors file (or lacks what was asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer than 8 bytes.
    TooShort,
    /// The header length runs past the end of the file, or over [`MAX_HEADER`].
    HeaderLength {
        /// Declared header length.
        declared: u64,
    },
    /// The header is not the JSON we expect; `offset` is into the header.
    Json {
        /// Byte offset of the problem within the header.
        offset: usize,
    },
    /// A dtype name we do not know.
    UnknownDtype {
        /// Index of the tensor entry.
        tensor: usize,
    },
    /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
    MissingField {
        /// Index of the tensor entry.
        tensor: usize,
    },
    /// A shape of rank over [`MAX_RANK`] or whose size overflows.
    BadShape {
        /// Index of the tensor entry.
        tensor: usize,
    },
    /// Offsets that are reversed or past the end of the data.
    OffsetsOutOfBounds {
        /// Index of the tensor entry.
        tensor: usize,
    },
    /// The offsets span a different number of bytes than dtype × shape.
    SizeMismatch {
        /// Index of the tensor entry.
        tensor: usize,
    },
    /// Two tensors share bytes.
    Overlap {
        /// Index of the first tensor entry.
        first: usize,
        /// Index of the second.
        second: usize,
    },
    /// The tensors do not cover the data exactly.
    Gap,
    /// Two tensors have the same name.
    DuplicateName {
        /// Index of the later entry.
        tensor: usize,
    },
    /// More than [`MAX_TENSORS`] tensors.
    TooManyTensors,
}

/// A tensor's shape (up to [`MAX_RANK`] dimensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: usize,
}

impl Shape {
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.dims.get(..self.rank).unwrap_or(&[])
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
}

/// A tensor borrowed from the file.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Shape,
    /// The raw little-endian bytes (not necessarily aligned).
    pub data: &'a [u8],
}

/// A validated safetensors file.
#[derive(Clone, Copy, Debug)]
pub struct SafeTensors<'a> {
    header: &'a [u8],
    data: &'a [u8],
}

/// One entry of the header as parsed (name and value span, raw).
#[derive(Clone, Copy)]
struct Entry<'a> {
    name: &'a [u8],
    /// Offset of the entry's value within the header.
    value: usize,
}

impl<'a> SafeTensors<'a> {
    /// Parse and validate a whole file.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(FormatError::TooShort)?;
        let declared = u64::from_le_bytes(len_bytes);
        let header_len = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= MAX_HEADER && n <= bytes.len() - 8)
            .ok_or(FormatError::HeaderLength { declared })?;
        let header = bytes
            .get(8..8 + header_len)
            .ok_or(FormatError::HeaderLength { declared })?;
        let data = bytes.get(8 + header_len..).unwrap_or(&[]);
        let file = SafeTensors { header, data };
        file.validate()?;
        Ok(file)
    }

    /// The bytes after the header.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    fn validate(&self) -> Result<(), FormatError> {
        let mut count = 0usize;
        let mut total = 0usize;
        let mut entries = self.entries();
        while let Some(entry) = entries.next_entry()? {
            if entry.name == b"__metadata__" {
                self.check_metadata(entry.value)?;
                continue;
            }
            let index = count;
            count += 1;
            if count > MAX_TENSORS {
                return Err(FormatError::TooManyTensors);
            }
            let (_, _, span) = self.tensor_at(entry.value, index)?;
            total += span.1 - span.0;
            // Pairwise checks against the earlier entries.
            let mut earlier = self.entries();
            let mut j = 0usize;
            while let Some(other) = earlier.next_entry()? {
                if other.value == entry.value {
                    break;
                }
                if other.name == b"__metadata__" {
                    continue;
                }
                if other.name == entry.name {
                    return Err(FormatError::DuplicateName { tensor: index });
                }
                let (_, _, o) = self.tensor_at(other.value, j)?;
                if span.0 < o.1 && o.0 < span.1 {
                    return Err(FormatError::Overlap {
                        first: j,
                        second: index,
                    });
                }
                j += 1;
            }
        }
        if total != self.data.len() {
            return Err(FormatError::Gap);
        }
        Ok(())
    }

    fn entries(&self) -> Entries<'a> {
        Entries {
            json: Json::at(self.header, 0),
            started: false,
            done: false,
        }
    }

    /// Parse the tensor entry whose value starts at `value`.
    fn tensor_at(
        &self,
        value: usize,
        index: usize,
    ) -> Result<(Dtype, Shape, (usize, usize)), FormatError> {
        let mut json = Json::at(self.header, value);
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        json.expect(b'{')?;
        if !json.eat(b'}') {
            loop {
                let key = json.string()?;
                json.expect(b':')?;
                match key {
                    b"dtype" => {
                        let name = json.string()?;
                        dtype = Some(
                            Dtype::from_name(name)
                                .ok_or(FormatError::UnknownDtype { tensor: index })?,
                        );
                    }
                    b"shape" => {
                        let mut dims = [0usize; MAX_RANK];
                        let mut rank = 0;
                        json.expect(b'[')?;
                        if !json.eat(b']') {
                            loop {
                                let d = json.number()?;
                                let slot = dims
                                    .get_mut(rank)
                                    .ok_or(FormatError::BadShape { tensor: index })?;
                                *slot = d;
                                rank += 1;
                                if json.eat(b']') {
                                    break;
                                }
                                json.expect(b',')?;
                            }
                        }
                        shape = Some(Shape { dims, rank });
                    }
                    b"data_offsets" => {
                        json.expect(b'[')?;
                        let begin = json.number()?;
                        json.expect(b',')?;
                        let end = json.number()?;
                        json.expect(b']')?;
                        offsets = Some((begin, end));
                    }
                    _ => json.skip_value()?,
                }
                if json.eat(b'}') {
                    break;
                }
                json.expect(b',')?;
            }
        }
        let (Some(dtype), Some(shape), Some((begin, end))) = (dtype, shape, offsets) else {
            return Err(FormatError::MissingField { tensor: index });
        };
        let bytes = shape
            .dims()
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or(FormatError::BadShape { tensor: index })?;
        if begin > end || end > self.data.len() {
            return Err(FormatError::OffsetsOutOfBounds { tensor: index });
        }
        if end - begin != bytes {
            return Err(FormatError::SizeMismatch { tensor: index });
        }
        Ok((dtype, shape, (begin, end)))
    }

    fn check_metadata(&self, value: usize) -> Result<(), FormatError> {
        let mut json = Json::at(self.header, value);
        json.expect(b'{')?;
        if json.eat(b'}') {
            return Ok(());
        }
        loop {
            json.string()?;
            json.expect(b':')?;
            json.string()?;
            if json.eat(b'}') {
                return Ok(());
            }
            json.expect(b',')?;
        }
    }

    /// Look up a tensor by name.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'a>> {
        let mut entries = self.entries();
        let mut index = 0;
        while let Ok(Some(entry)) = entries.next_entry() {
            if entry.name == b"__metadata__" {
                continue;
            }
            if entry.name == name.as_bytes() {
                let (dtype, shape, (begin, end)) = self.tensor_at(entry.value, index).ok()?;
                return Some(TensorView {
                    dtype,
                    shape,
                    data: self.data.get(begin..end)?,
                });
            }
            index += 1;
        }
        None
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        let mut entries = self.entries();
        let mut n = 0;
        while let Ok(Some(entry)) = entries.next_entry() {
            n += usize::from(entry.name != b"__metadata__");
        }
        n
    }

    /// True if the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A metadata value (raw JSON string contents, escapes not decoded).
    pub fn metadata(&self, key: &str) -> Option<&'a str> {
        let mut entries = self.entries();
        while let Ok(Some(entry)) = entries.next_entry() {
            if entry.name != b"__metadata__" {
                continue;
            }
            let mut json = Json::at(self.header, entry.value);
            json.expect(b'{').ok()?;
            if json.eat(b'}') {
                return None;
            }
            loop {
                let k = json.string().ok()?;
                json.expect(b':').ok()?;
                let v = json.string().ok()?;
                if k == key.as_bytes() {
                    return core::str::from_utf8(v).ok();
                }
                if json.eat(b'}') {
                    return None;
                }
                json.expect(b',').ok()?;
            }
        }
        None
    }
}

/// Iterator over the top-level entries of the header object.
struct Entries<'a> {
    json: Json<'a>,
    started: bool,
    done: bool,
}

impl<'a> Entries<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, FormatError> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            self.json.expect(b'{')?;
            if self.json.eat(b'}') {
                self.done = true;
                self.json.end()?;
                return Ok(None);
            }
        } else if self.json.eat(b'}') {
            self.done = true;
            self.json.end()?;
            return Ok(None);
        } else {
            self.json.expect(b',')?;
        }
        let name = self.json.string()?;
        self.json.expect(b':')?;
        self.json.skip_ws();
        let value = self.json.pos();
        self.json.skip_value()?;
        Ok(Some(Entry { name, value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a file: header JSON plus data.
    fn file(header: &str, data: &[u8]) -> heapless::Vec<u8, 1024> {
        let mut out = heapless::Vec::new();
        out.extend_from_slice(&(header.len() as u64).to_le_bytes())
            .unwrap();
        out.extend_from_slice(header.as_bytes()).unwrap();
        out.extend_from_slice(data).unwrap();
        out
    }

    const GOOD: &str = r#"{"__metadata__":{"dim":"4","note":"a \"quoted\" word"},
        "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
        "b":{"dtype":"I8","shape":[2,2],"data_offsets":[8,12],"extra":{"x":[1,{"y":null}]}}}"#;

    #[test]
    fn reads_tensors_and_metadata() {
        let mut data = [0u8; 12];
        data[..4].copy_from_slice(&1.5f32.to_le_bytes());
        data[8] = 0xFF;
        let bytes = file(GOOD, &data);
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(st.len(), 2);
        let a = st.tensor("a").unwrap();
        assert_eq!((a.dtype, a.shape.dims()), (Dtype::F32, &[2][..]));
        assert_eq!(a.data[..4], 1.5f32.to_le_bytes());
        let b = st.tensor("b").unwrap();
        assert_eq!(
            (b.dtype, b.shape.numel(), b.data[0] as i8),
            (Dtype::I8, 4, -1)
        );
        assert!(st.tensor("c").is_none());
        assert_eq!(st.metadata("dim"), Some("4"));
        assert_eq!(st.metadata("note"), Some(r#"a \"quoted\" word"#));
        assert_eq!(st.metadata("nope"), None);
    }

    #[test]
    fn rejects_lying_offsets_sizes_and_overlaps() {
        let cases: [(&str, usize, FormatError); 7] = [
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#,
                8,
                FormatError::OffsetsOutOfBounds { tensor: 0 },
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                FormatError::SizeMismatch { tensor: 0 },
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                8,
                FormatError::Overlap {
                    first: 0,
                    second: 1,
                },
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
                8,
                FormatError::Gap,
            ),
            (
                r#"{"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}}"#,
                4,
                FormatError::UnknownDtype { tensor: 0 },
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[1,1,1,1,4],"data_offsets":[0,4]}}"#,
                4,
                FormatError::BadShape { tensor: 0 },
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}"#,
                4,
                FormatError::DuplicateName { tensor: 1 },
            ),
        ];
        for (header, n, expected) in cases {
            let data = [0u8; 16];
            assert_eq!(
                SafeTensors::parse(&file(header, &data[..n])).unwrap_err(),
                expected,
                "{header}"
            );
        }
    }

    #[test]
    fn rejects_truncated_and_malformed_headers() {
        let bytes = file(GOOD, &[0u8; 12]);
        for cut in [0, 7, 8, 20, 100, bytes.len() - 1] {
            assert!(SafeTensors::parse(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            SafeTensors::parse(&huge).unwrap_err(),
            FormatError::HeaderLength { declared: u64::MAX }
        );
        for header in [
            "{",
            "[]",
            r#"{"a":}"#,
            r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[99999999999999999999999],"data_offsets":[0,0]}}"#,
            r#"{"a":{"shape":[0],"data_offsets":[0,0]}}"#,
            r#"{} trailing"#,
            r#"{"__metadata__":{"k":5}}"#,
        ] {
            assert!(SafeTensors::parse(&file(header, &[])).is_err(), "{header}");
        }
        let mut deep = heapless::String::<512>::new();
        deep.push_str(r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":"#)
            .unwrap();
        for _ in 0..100 {
            deep.push('[').unwrap();
        }
        for _ in 0..100 {
            deep.push(']').unwrap();
        }
        deep.push_str("}}").unwrap();
        assert!(SafeTensors::parse(&file(&deep, &[])).is_err());
    }

    #[test]
    fn empty_and_zero_sized_tensors_are_fine() {
        let st_bytes = file("{}", &[]);
        assert!(SafeTensors::parse(&st_bytes).unwrap().is_empty());
        let z = file(
            r#"{"z":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]}}"#,
            &[],
        );
        assert_eq!(
            SafeTensors::parse(&z)
                .unwrap()
                .tensor("z")
                .unwrap()
                .shape
                .numel(),
            0
        );
    }
}
