//! Bounded byte cursors shared by the l2sec wire formats (ISAKMP, L2TP, PPP).
//!
//! Three parsers share one reader and one writer so that bounds checking is written, tested and
//! fuzzed once:
//!
//! - [`Reader`] walks a borrowed `&[u8]` and returns [`Truncated`] instead of panicking when a
//!   field runs past the end.
//! - [`Writer`] fills a caller-owned `&mut [u8]` and returns [`NoSpace`] instead of panicking when
//!   the buffer is too small; it can reserve a length field and back-patch it later.
//! - [`wire_enum!`] declares an open registry of wire values (message types, option types,
//!   payload types): a newtype with one constant per registered value and a `Debug` that prints
//!   the registered name, or the raw number for values we do not know.
//!
//! - [`Secret`] holds a shared secret (L2TP tunnel secret, RADIUS shared secret): zeroized on
//!   drop, compared in constant time, never printed.
//!
//! The crate is `no_std`; only [`Secret`] allocates (it owns its bytes, through `alloc`), and
//! its only dependencies are `subtle` and `zeroize`, for [`Secret`].
//!
//! ```
//! # use l2sec_codec as codec;
//! use codec::{Reader, Writer};
//!
//! let mut buf = [0u8; 8];
//! let mut w = Writer::new(&mut buf);
//! let len_at = w.reserve_u16().unwrap();
//! w.put_u8(7).unwrap();
//! w.put_slice(b"ab").unwrap();
//! w.patch_len_u16(len_at, 0).unwrap(); // length counts from the start
//! assert_eq!(w.written(), &[0, 5, 7, b'a', b'b']);
//!
//! let mut r = Reader::new(w.written());
//! assert_eq!(r.u16().unwrap(), 5);
//! assert_eq!(r.u8().unwrap(), 7);
//! assert_eq!(r.take(2).unwrap(), b"ab");
//! assert!(r.expect_end().is_ok());
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod reader;
mod registry;
mod secret;
mod writer;

pub use reader::{Reader, TrailingBytes, Truncated};
pub use secret::Secret;
pub use writer::{LenMark, NoSpace, Writer};

/// Defines, where it is invoked (a `#[cfg(test)]` module), two helpers over the invoking
/// crate's committed fuzz corpora (each crate's `CARGO_MANIFEST_DIR`):
/// - `fn corpus(target: &str) -> PathBuf`: the directory `fuzz/corpus/<target>`;
/// - `fn replay(target: &str, run: fn(&[u8])) -> usize`: feeds every file in it to `run` (a
///   fuzz target's body) and returns how many there were, failing on a missing or empty corpus.
///
/// A macro, so that the file reading is compiled into the caller's tests and this crate stays
/// free of I/O.
#[macro_export]
macro_rules! corpus_replay {
    () => {
        fn corpus(target: &str) -> ::std::path::PathBuf {
            ::std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/corpus")
                .join(target)
        }

        fn replay(target: &str, run: fn(&[u8])) -> usize {
            let dir = corpus(target);
            let mut count = 0;
            for entry in
                ::std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.unwrap().path();
                run(&::std::fs::read(&path).unwrap());
                count += 1;
            }
            assert!(count > 0, "empty corpus {}", dir.display());
            count
        }
    };
}
