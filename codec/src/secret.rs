//! [`Secret`]: shared-secret bytes (an L2TP tunnel secret, a RADIUS shared secret) that never
//! print, compare in constant time and are zeroized on drop.

use alloc::vec::Vec;
use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A shared secret. Zeroized on drop; `Debug` prints `Secret(<redacted>)`, never the bytes
/// or their length; equality runs in time independent of where the bytes differ
/// (`subtle::ConstantTimeEq`; only the lengths are compared in the open).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret bytes.
    #[must_use]
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// The secret bytes, for the constructions that key on them. Do not log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_never_prints_the_bytes_or_their_length() {
        let secret = Secret::new(*b"hunter2-tunnel");
        let printed = format!("{secret:?} {secret:#?}");
        assert_eq!(printed, "Secret(<redacted>) Secret(<redacted>)");
        assert!(!printed.contains("hunter2") && !printed.contains("14"));
    }

    #[test]
    fn equality_is_by_content_and_length() {
        let a = Secret::new(*b"testing123");
        assert_eq!(a, Secret::new(b"testing123".to_vec()));
        assert_eq!(a.clone(), a);
        assert_ne!(a, Secret::new(*b"testing124"));
        assert_ne!(a, Secret::new(*b"Testing123"));
        assert_ne!(a, Secret::new(*b"testing12"));
        assert_ne!(a, Secret::new(*b"testing1234"));
        assert_ne!(Secret::new(Vec::new()), Secret::new(*b"x"));
        assert_eq!(Secret::new(Vec::new()), Secret::new(Vec::new()));
        assert_eq!(a.expose(), b"testing123");
    }
}
