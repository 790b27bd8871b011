//! A bounded cursor over a caller-owned output buffer, with length back-patching.

/// The output buffer is too small for what was being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSpace;

impl core::fmt::Display for NoSpace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for NoSpace {}

/// The position of a length field reserved with [`Writer::reserve_u16`] or
/// [`Writer::reserve_u8`], to be filled in by [`Writer::patch_len_u16`] or
/// [`Writer::patch_len_u8`] once the counted bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenMark(usize);

impl LenMark {
    /// Offset of the reserved field in the writer's buffer.
    #[must_use]
    pub const fn offset(self) -> usize {
        self.0
    }
}

/// Writes big-endian fields into `&mut [u8]`; a write that does not fit fails and writes nothing.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`.
    pub const fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free space left in the buffer.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// The bytes written so far.
    #[must_use]
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The bytes written so far, mutably (to fix up a field in place).
    pub fn written_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Consumes the writer and returns the written part of the buffer.
    #[must_use]
    pub fn into_written(self) -> &'a mut [u8] {
        let len = self.len;
        &mut self.buf[..len]
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, v: u8) -> Result<(), NoSpace> {
        self.put_slice(&[v])
    }

    /// Writes a big-endian `u16`.
    pub fn put_u16(&mut self, v: u16) -> Result<(), NoSpace> {
        self.put_slice(&v.to_be_bytes())
    }

    /// Writes the low 24 bits of `v`, big-endian; fails if `v` does not fit in 24 bits.
    pub fn put_u24(&mut self, v: u32) -> Result<(), NoSpace> {
        let [top, a, b, c] = v.to_be_bytes();
        if top != 0 {
            return Err(NoSpace);
        }
        self.put_slice(&[a, b, c])
    }

    /// Writes a big-endian `u32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), NoSpace> {
        self.put_slice(&v.to_be_bytes())
    }

    /// Writes a big-endian `u64`.
    pub fn put_u64(&mut self, v: u64) -> Result<(), NoSpace> {
        self.put_slice(&v.to_be_bytes())
    }

    /// Writes `bytes`.
    pub fn put_slice(&mut self, bytes: &[u8]) -> Result<(), NoSpace> {
        let end = self.len.checked_add(bytes.len()).ok_or(NoSpace)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(NoSpace)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Writes `n` copies of `byte`.
    pub fn put_fill(&mut self, byte: u8, n: usize) -> Result<(), NoSpace> {
        let end = self.len.checked_add(n).ok_or(NoSpace)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(NoSpace)?;
        dst.fill(byte);
        self.len = end;
        Ok(())
    }

    /// Hands out the next `n` bytes for the caller to fill (a digest, a random value).
    pub fn put_with(&mut self, n: usize) -> Result<&mut [u8], NoSpace> {
        let start = self.len;
        self.put_fill(0, n)?;
        Ok(&mut self.buf[start..start + n])
    }

    /// Reserves a one-byte length field, written as zero until patched.
    pub fn reserve_u8(&mut self) -> Result<LenMark, NoSpace> {
        let at = self.len;
        self.put_u8(0)?;
        Ok(LenMark(at))
    }

    /// Reserves a two-byte length field, written as zero until patched.
    pub fn reserve_u16(&mut self) -> Result<LenMark, NoSpace> {
        let at = self.len;
        self.put_u16(0)?;
        Ok(LenMark(at))
    }

    /// Fills a reserved two-byte field with the number of bytes written since offset `from`.
    ///
    /// `from` is usually the start of the structure the length counts (often the offset of the
    /// structure's own header, sometimes the mark itself). Fails if the length exceeds `u16`.
    pub fn patch_len_u16(&mut self, mark: LenMark, from: usize) -> Result<u16, NoSpace> {
        let len = self.len.checked_sub(from).ok_or(NoSpace)?;
        let len = u16::try_from(len).map_err(|_| NoSpace)?;
        let dst = self.buf.get_mut(mark.0..mark.0 + 2).ok_or(NoSpace)?;
        dst.copy_from_slice(&len.to_be_bytes());
        Ok(len)
    }

    /// Fills a reserved one-byte field with the number of bytes written since offset `from`.
    pub fn patch_len_u8(&mut self, mark: LenMark, from: usize) -> Result<u8, NoSpace> {
        let len = self.len.checked_sub(from).ok_or(NoSpace)?;
        let len = u8::try_from(len).map_err(|_| NoSpace)?;
        let dst = self.buf.get_mut(mark.0).ok_or(NoSpace)?;
        *dst = len;
        Ok(len)
    }

    /// Forgets everything written after `len` (to undo a partly written structure).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fields_big_endian() {
        let mut buf = [0u8; 12];
        let mut w = Writer::new(&mut buf);
        w.put_u8(1).unwrap();
        w.put_u16(0x0203).unwrap();
        w.put_u24(0x04_0506).unwrap();
        w.put_u32(0x0708_090a).unwrap();
        assert_eq!(w.written(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(w.remaining(), 2);
    }

    #[test]
    fn a_write_that_does_not_fit_fails_and_writes_nothing() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.put_u16(0xffff).unwrap();
        assert_eq!(w.put_u16(1), Err(NoSpace));
        assert_eq!(w.len(), 2);
        assert_eq!(w.put_u24(0x0100_0000), Err(NoSpace));
        w.put_u8(9).unwrap();
        assert_eq!(w.put_u8(9), Err(NoSpace));
        assert_eq!(w.written(), &[0xff, 0xff, 9]);
    }

    #[test]
    fn length_fields_are_back_patched() {
        let mut buf = [0u8; 300];
        let mut w = Writer::new(&mut buf);
        w.put_u8(0xaa).unwrap();
        let outer = w.reserve_u16().unwrap();
        let inner = w.reserve_u8().unwrap();
        w.put_slice(b"xyz").unwrap();
        assert_eq!(w.patch_len_u8(inner, inner.offset()), Ok(4));
        assert_eq!(w.patch_len_u16(outer, 0), Ok(7));
        assert_eq!(w.written(), &[0xaa, 0, 7, 4, b'x', b'y', b'z']);

        w.put_fill(0, 260).unwrap();
        assert_eq!(
            w.patch_len_u8(inner, 0),
            Err(NoSpace),
            "267 does not fit a byte"
        );
    }

    #[test]
    fn truncate_undoes_a_partial_structure() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        w.put_u32(1).unwrap();
        let mark = w.len();
        w.put_u16(2).unwrap();
        w.truncate(mark);
        assert_eq!(w.written(), &[0, 0, 0, 1]);
        w.put_with(2).unwrap().copy_from_slice(&[5, 6]);
        assert_eq!(w.into_written(), &[0, 0, 0, 1, 5, 6]);
    }
}
