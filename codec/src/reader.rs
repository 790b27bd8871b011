//! A bounded cursor over borrowed bytes.

/// A field ran past the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl core::fmt::Display for Truncated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("truncated")
    }
}

impl core::error::Error for Truncated {}

/// Reads big-endian fields from a borrowed slice; every read is bounds-checked.
///
/// Reads that fail leave the cursor where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `bytes`.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            consumed: 0,
        }
    }

    /// Bytes not yet read.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte has been read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes read so far.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.consumed
    }

    /// Looks at the next byte without consuming it.
    #[must_use]
    pub fn peek_u8(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        self.array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian 24-bit value.
    pub fn u24(&mut self) -> Result<u32, Truncated> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        self.array().map(u32::from_be_bytes)
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        self.array().map(u64::from_be_bytes)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Borrows the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Truncated)?;
        self.rest = tail;
        self.consumed += n;
        Ok(head)
    }

    /// Splits off a reader over the next `n` bytes and skips them here.
    pub fn sub(&mut self, n: usize) -> Result<Self, Truncated> {
        self.take(n).map(Reader::new)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        self.take(n).map(|_| ())
    }

    /// Borrows every remaining byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.rest;
        self.consumed += rest.len();
        self.rest = &[];
        rest
    }

    /// Succeeds only if every byte has been read.
    pub fn expect_end(&self) -> Result<(), TrailingBytes> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(TrailingBytes(self.rest.len()))
        }
    }
}

/// Bytes were left over where a field was expected to end the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailingBytes(pub usize);

impl core::fmt::Display for TrailingBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} trailing bytes", self.0)
    }
}

impl core::error::Error for TrailingBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_and_tracks_position() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0, 3, 0xaa, 0xbb, 0xcc, 9]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.u24(), Ok(0x00aa_bbcc));
        assert_eq!(r.position(), 10);
        assert_eq!(r.peek_u8(), Some(9));
        assert_eq!(r.rest(), &[9]);
        assert!(r.is_empty());
        assert_eq!(r.expect_end(), Ok(()));
    }

    #[test]
    fn a_short_read_fails_and_leaves_the_cursor_in_place() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(Truncated));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.take(4), Err(Truncated));
        assert_eq!(r.take(3), Ok(&[1, 2, 3][..]));
        assert_eq!(r.u8(), Err(Truncated));
    }

    #[test]
    fn sub_readers_are_bounded_by_their_length() {
        let mut r = Reader::new(&[0, 1, 2, 3, 4]);
        let mut s = r.sub(2).unwrap();
        assert_eq!(s.u16(), Ok(1));
        assert_eq!(s.u8(), Err(Truncated));
        assert_eq!(r.u8(), Ok(2));
        assert_eq!(r.expect_end(), Err(TrailingBytes(2)));
        assert!(r.sub(3).is_err());
    }
}
