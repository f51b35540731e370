//! Jute primitives: big-endian fixed-width integers, length-prefixed buffers, strings and
//! vectors (zookeeper-jute's BinaryInputArchive / BinaryOutputArchive).
//!
//! A length of -1 is jute's null. Lengths are checked against the bytes that remain before
//! anything is allocated, so a hostile length can never make the decoder allocate more than
//! the packet it was given.

use thiserror::Error;

/// Why a record could not be decoded. Carries the offset into the record's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated at byte {offset}: wanted {wanted} more bytes")]
    Truncated { offset: usize, wanted: usize },
    #[error("negative length {length} at byte {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("string at byte {offset} is not UTF-8")]
    NotUtf8 { offset: usize },
    #[error("unexpected null at byte {offset}")]
    UnexpectedNull { offset: usize },
    #[error("unknown {what} {value} at byte {offset}")]
    Unknown {
        what: &'static str,
        value: i32,
        offset: usize,
    },
    #[error("{extra} trailing bytes after the record")]
    Trailing { extra: usize },
}

/// A jute record: encodes itself and decodes from a [`Reader`].
pub trait Record: Sized {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Decodes a whole buffer: trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Reads jute primitives from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.offset..]
    }

    /// Errors if any bytes are left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing { extra }),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                wanted: n - self.remaining(),
            });
        }
        let out = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A length prefix: `None` for jute's null (-1); other negatives are errors.
    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.offset;
        match self.read_i32()? {
            -1 => Ok(None),
            length if length < 0 => Err(DecodeError::NegativeLength { offset, length }),
            length => Ok(Some(length as usize)),
        }
    }

    /// A buffer that may be null.
    pub fn read_opt_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A buffer where null means the same as empty (a password, an auth packet). A znode's
    /// data is not one: ZooKeeper keeps its null, so it is read with `read_opt_buffer`.
    pub fn read_buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        Ok(self.read_opt_buffer()?.unwrap_or(&[]))
    }

    pub fn read_opt_string(&mut self) -> Result<Option<&'a str>, DecodeError> {
        let offset = self.offset;
        match self.read_opt_buffer()? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| DecodeError::NotUtf8 { offset }),
        }
    }

    /// A string that must not be null.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let offset = self.offset;
        self.read_opt_string()?
            .ok_or(DecodeError::UnexpectedNull { offset })
    }

    /// A string that must not be null. Bytes that are not UTF-8 become U+FFFD, as Java's jute
    /// reads them (`new String(bytes, UTF_8)`): a create of such a path then fails path
    /// validation with BADARGUMENTS and a read of it finds no node, exactly as on ZooKeeper,
    /// instead of the whole request failing to decode.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let offset = self.offset;
        let bytes = self
            .read_opt_buffer()?
            .ok_or(DecodeError::UnexpectedNull { offset })?;
        Ok(utf8_lossy(bytes))
    }

    /// A string where null means the same as empty (the id of an ACL entry: clients send a
    /// null id for the `auth` scheme, whose id ZooKeeper ignores).
    pub fn read_string_or_empty(&mut self) -> Result<String, DecodeError> {
        Ok(match self.read_opt_buffer()? {
            None => String::new(),
            Some(bytes) => utf8_lossy(bytes),
        })
    }

    /// A vector of records; null reads as empty. The count is bounded by the bytes left
    /// (every element takes at least one byte), so a hostile count cannot over-allocate.
    pub fn read_vec<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let offset = self.offset;
        let Some(n) = self.read_len()? else {
            return Ok(Vec::new());
        };
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset,
                wanted: n - self.remaining(),
            });
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    pub fn read_records<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        self.read_vec(T::decode)
    }

    pub fn read_strings(&mut self) -> Result<Vec<String>, DecodeError> {
        self.read_vec(Reader::read_string)
    }
}

/// Writes jute primitives into a growable buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_buffer(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn write_len(&mut self, n: usize) {
        let n = i32::try_from(n).expect("jute length fits in i32");
        self.write_i32(n);
    }

    pub fn write_buffer(&mut self, b: &[u8]) {
        self.write_len(b.len());
        self.buf.extend_from_slice(b);
    }

    pub fn write_opt_buffer(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.write_i32(-1),
            Some(b) => self.write_buffer(b),
        }
    }

    pub fn write_str(&mut self, s: &str) {
        self.write_buffer(s.as_bytes());
    }

    pub fn write_opt_str(&mut self, s: Option<&str>) {
        self.write_opt_buffer(s.map(str::as_bytes));
    }

    pub fn write_vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.write_len(items.len());
        for it in items {
            item(self, it);
        }
    }

    pub fn write_records<T: Record>(&mut self, items: &[T]) {
        self.write_vec(items, |w, it| it.encode(w));
    }

    pub fn write_strings<S: AsRef<str>>(&mut self, items: &[S]) {
        self.write_vec(items, |w, s| w.write_str(s.as_ref()));
    }
}
/// `String::from_utf8_lossy` with the common case first: valid UTF-8 is checked by the
/// standard library's fast validator and copied once; only invalid bytes take the lossy path
/// (whose per-byte scan cost ~1% of a getData's CPU when every path went through it).
fn utf8_lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Reader, Writer};

    /// Valid UTF-8 reads as itself; invalid bytes become U+FFFD as Java's
    /// `new String(bytes, UTF_8)` makes them, whichever path the decoder takes.
    #[test]
    fn strings_read_as_java_reads_them() {
        for (bytes, want) in [
            (&b"/a/b"[..], "/a/b"),
            ("/é/✓".as_bytes(), "/é/✓"),
            (&b"/a\xff"[..], "/a\u{fffd}"),
            (&b"\xc3"[..], "\u{fffd}"),
            (&b""[..], ""),
        ] {
            let mut w = Writer::new();
            w.write_buffer(bytes);
            let buf = w.into_inner();
            let mut r = Reader::new(&buf);
            assert_eq!(r.read_string().expect("a string"), want);
            let mut r = Reader::new(&buf);
            assert_eq!(r.read_string_or_empty().expect("a string"), want);
        }
    }
}
