//! Identifiers and sequence numbers carried in the L2TP header (RFC 2661 §3.1, §5.8).

/// A tunnel identifier (RFC 2661 §3.1). Local significance only: the header carries the
/// receiver's identifier, the Assigned Tunnel ID AVP the sender's. Zero is reserved for messages
/// sent before the peer's identifier is known (an SCCRQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u16);

/// A session identifier within a tunnel (RFC 2661 §3.1). Zero addresses the tunnel itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u16);

/// A 16-bit sequence number (Ns or Nr), compared modulo 2^16 (RFC 2661 §5.8).
///
/// Deliberately not `PartialOrd`: sequence numbers wrap, so there is no total order. Use
/// [`Seq::precedes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seq(pub u16);

impl Seq {
    /// The following sequence number, wrapping from 65535 to 0.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }

    /// Whether `self` comes before `other`, looking at most half the number space ahead
    /// (RFC 2661 §5.8: the 32767 values after a number are "later", the 32768 before it and
    /// itself are not).
    #[must_use]
    pub const fn precedes(self, other: Self) -> bool {
        let distance = other.0.wrapping_sub(self.0);
        distance != 0 && distance < 0x8000
    }
}

#[cfg(test)]
mod tests {
    use super::Seq;
    use proptest::prelude::*;

    #[test]
    fn precedes_wraps_around_zero() {
        assert!(Seq(65535).precedes(Seq(0)));
        assert!(Seq(65000).precedes(Seq(10)));
        assert!(!Seq(10).precedes(Seq(65000)));
        assert!(!Seq(5).precedes(Seq(5)));
        assert!(Seq(0).precedes(Seq(0x7fff)));
        assert!(
            !Seq(0).precedes(Seq(0x8000)),
            "exactly half way is not ahead"
        );
        assert_eq!(Seq(65535).next(), Seq(0));
    }

    proptest! {
        #[test]
        fn a_number_precedes_its_successors_within_half_the_space(a: u16, d in 1u16..0x8000) {
            let a = Seq(a);
            let b = Seq(a.0.wrapping_add(d));
            prop_assert!(a.precedes(b));
            prop_assert!(!b.precedes(a));
            prop_assert!(a.precedes(a.next()));
        }
    }
}
