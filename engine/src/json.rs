//! A cursor over JSON bytes, with just what the safetensors header needs:
//! structure, raw strings, non-negative integers and skipping any value,
//! without allocation and with bounded nesting. Strings are returned raw
//! (between the quotes, escapes left as they are).

use crate::safetensors::FormatError;

/// Where the JSON went wrong: a byte offset into the bytes scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Byte offset of the problem.
    pub(crate) offset: usize,
}

impl From<JsonError> for FormatError {
    fn from(e: JsonError) -> Self {
        FormatError::Json { offset: e.offset }
    }
}

/// A cursor over JSON bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Json<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Deepest nesting [`Json::skip_value`] follows.
const MAX_DEPTH: usize = 64;

impl<'a> Json<'a> {
    /// A cursor at byte `pos` of `bytes`.
    pub(crate) const fn at(bytes: &'a [u8], pos: usize) -> Self {
        Json { bytes, pos }
    }

    /// The byte offset the cursor is at.
    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    fn error(&self) -> JsonError {
        JsonError { offset: self.pos }
    }

    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Only trailing whitespace may follow the header object.
    pub(crate) fn end(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error()),
        }
    }

    /// A string's raw contents (between the quotes, escapes left as they are).
    pub(crate) fn string(&mut self) -> Result<&'a [u8], JsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(self.error()),
                Some(b'"') => break,
                Some(b'\\') => match self.bytes.get(self.pos + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                    Some(b'u') => {
                        let hex = self.bytes.get(self.pos + 2..self.pos + 6);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return Err(self.error());
                        }
                        self.pos += 6;
                    }
                    _ => return Err(self.error()),
                },
                Some(&c) if c < 0x20 => return Err(self.error()),
                Some(_) => self.pos += 1,
            }
        }
        let s = self.bytes.get(start..self.pos).ok_or(self.error())?;
        self.pos += 1;
        Ok(s)
    }

    /// A non-negative integer that fits in `usize`.
    pub(crate) fn number(&mut self) -> Result<usize, JsonError> {
        self.skip_ws();
        let start = self.pos;
        let mut value = 0usize;
        while let Some(&c) = self.bytes.get(self.pos) {
            if !c.is_ascii_digit() {
                break;
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(c - b'0')))
                .ok_or(self.error())?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error());
        }
        Ok(value)
    }

    /// Skip any JSON value (iteratively, at most [`MAX_DEPTH`] deep).
    pub(crate) fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit `d` of `objects` tells whether the container at depth `d` is an object.
        let mut objects = 0u64;
        let mut depth = 0usize;
        'value: loop {
            match self.peek().ok_or(self.error())? {
                open @ (b'{' | b'[') => {
                    self.pos += 1;
                    let object = open == b'{';
                    if !self.eat(if object { b'}' } else { b']' }) {
                        if depth == MAX_DEPTH {
                            return Err(self.error());
                        }
                        objects = (objects & !(1 << depth)) | (u64::from(object) << depth);
                        depth += 1;
                        if object {
                            self.string()?;
                            self.expect(b':')?;
                        }
                        continue 'value;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => {
                    while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') =
                        self.bytes.get(self.pos)
                    {
                        self.pos += 1;
                    }
                }
                first => {
                    let word: &[u8] = match first {
                        b't' => b"true",
                        b'f' => b"false",
                        b'n' => b"null",
                        _ => return Err(self.error()),
                    };
                    if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
                        return Err(self.error());
                    }
                    self.pos += word.len();
                }
            }
            // A value is complete: close containers, or go on to the next element.
            while depth > 0 {
                let object = objects & (1 << (depth - 1)) != 0;
                if self.eat(b',') {
                    if object {
                        self.string()?;
                        self.expect(b':')?;
                    }
                    continue 'value;
                }
                if !self.eat(if object { b'}' } else { b']' }) {
                    return Err(self.error());
                }
                depth -= 1;
            }
            return Ok(());
        }
    }
}
