//! Cryptographic primitives for IKEv1 and ESP: ciphers, integrity transforms, hashes and PRFs,
//! Diffie-Hellman groups.
//!
//! - [`cipher`]: AES-CBC (RFC 3602), 3DES-CBC (RFC 2451), AES-GCM-16 (RFC 4106), in place.
//! - [`integrity`]: HMAC-SHA1-96 (RFC 2404) and HMAC-SHA2 (RFC 4868) ICVs, constant-time checks.
//! - [`prf`]: HMAC PRFs and plain hashes for IKEv1 (RFC 2409 §5, Appendix B).
//! - [`dh`]: MODP groups 2, 5, 14, 15, 16 and ECP groups 19, 20 (RFC 2409, RFC 3526, RFC 5903).
//!
//! Secrets: types holding keys print `<redacted>` in `Debug`, and key bytes we own are wiped on
//! drop. Key schedules held inside `ring` and the RustCrypto crates are not wiped: `aes`, `des`
//! and `hmac` are built without their `zeroize` features, and `ring` never wipes.

pub mod cipher;
pub mod dh;
pub mod integrity;
pub mod prf;

pub use cipher::{Cipher, CipherAlgorithm, CipherError};
pub use dh::{DhError, DhGroup, DhKeyPair, DrawnKey, SharedSecret, check_public};
pub use integrity::{Integrity, IntegrityAlgorithm, IntegrityError};
pub use prf::{Hash, HashAlgorithm, OutputTooShort, Prf, PrfAlgorithm};
