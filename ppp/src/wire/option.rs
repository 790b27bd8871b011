//! Configuration options (RFC 1661 §6): type, length (including both header bytes), data.
//!
//! ```text
//! |  Type  | Length |  Data ...
//! ```

use super::Error;

/// One option borrowed from a Configure-Request, -Ack, -Nak or -Reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The option type (meaning depends on the protocol).
    pub kind: u8,
    /// The data field, `Length - 2` bytes.
    pub data: &'a [u8],
    /// The whole option as received, quoted verbatim in Configure-Reject (RFC 1661 §5.4).
    pub raw: &'a [u8],
}

/// The options of a configure packet. Yields at most one error, then ends (STYLE.md §4).
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Options<'a> {
    /// Walks the data field of a configure packet.
    #[must_use]
    pub const fn new(data: &'a [u8]) -> Self {
        Self {
            rest: data,
            failed: false,
        }
    }

    /// Checks the whole list once; after `Ok`, iteration yields no error.
    ///
    /// # Errors
    /// The first malformed option's error.
    pub fn validate(data: &'a [u8]) -> Result<Self, Error> {
        Self::new(data).try_for_each(|o| o.map(drop))?;
        Ok(Self::new(data))
    }

    fn read_one(&mut self) -> Result<RawOption<'a>, Error> {
        let &[kind, len, ..] = self.rest else {
            return Err(Error::Truncated);
        };
        let len = usize::from(len);
        // RFC 1661 §6: Length covers Type and Length, so it is at least 2.
        if len < 2 {
            return Err(Error::BadLength(len));
        }
        let (raw, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(Error::BadLength(len))?;
        self.rest = rest;
        Ok(RawOption {
            kind,
            data: &raw[2..],
            raw,
        })
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<RawOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Writes one option with the given type and data.
///
/// # Errors
/// [`codec::NoSpace`] when it does not fit or `data` is longer than 253 bytes.
pub fn write_option(
    w: &mut codec::Writer<'_>,
    kind: u8,
    data: &[u8],
) -> Result<(), codec::NoSpace> {
    let len = u8::try_from(data.len() + 2).map_err(|_| codec::NoSpace)?;
    w.put_u8(kind)?;
    w.put_u8(len)?;
    w.put_slice(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_options_and_stops_after_an_error() {
        let data = [1, 4, 0x05, 0xdc, 7, 2, 5, 1];
        let items: Vec<_> = Options::new(&data).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0],
            Ok(RawOption {
                kind: 1,
                data: &[0x05, 0xdc],
                raw: &data[..4]
            })
        );
        assert_eq!(
            items[1],
            Ok(RawOption {
                kind: 7,
                data: &[],
                raw: &data[4..6]
            })
        );
        assert_eq!(items[2], Err(Error::BadLength(1)));
        assert!(Options::validate(&data).is_err());
        assert_eq!(Options::validate(&data[..6]).unwrap().count(), 2);
        assert_eq!(
            Options::new(&[3, 9, 0]).collect::<Vec<_>>(),
            vec![Err(Error::BadLength(9))]
        );
        assert_eq!(
            Options::new(&[3]).collect::<Vec<_>>(),
            vec![Err(Error::Truncated)]
        );
    }

    #[test]
    fn writes_options() {
        let mut buf = [0u8; 8];
        let mut w = codec::Writer::new(&mut buf);
        write_option(&mut w, 5, &[1, 2, 3, 4]).unwrap();
        assert_eq!(w.written(), &[5, 6, 1, 2, 3, 4]);
        assert_eq!(write_option(&mut w, 5, &[1, 2]), Err(codec::NoSpace));
    }
}
