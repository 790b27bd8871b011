//! ISAKMP wire format (RFC 2408 §3) as IKEv1 uses it: checked views and small reprs over the
//! caller's bytes, and a writer that back-patches next-payload and length fields.
//!
//! Nothing here allocates or panics on hostile input: every length is checked against the bytes
//! that carry it, payload chains and attribute lists are walked by iterators that stop for good
//! after the first error, and the number of payloads per message is capped.

mod header;
mod payload;
mod registry;
mod sa;
mod writer;

pub use header::{
    Cookie, FLAG_AUTH_ONLY, FLAG_COMMIT, FLAG_ENCRYPTION, HEADER_LEN, Header, MessageId,
};
pub use payload::{
    Delete, GENERIC_HEADER_LEN, Identification, MAX_PAYLOADS, NatOa, Notification, Payload,
    Payloads,
};
pub use registry::*;
pub use sa::{
    Attribute, AttributeValue, Attributes, Proposal, Proposals, SecurityAssociation, Transform,
    Transforms,
};
pub use writer::{AttributeWriter, Chain, MessageWriter};

/// Why bytes were not accepted as an ISAKMP message or payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end before a field that must be present.
    #[error("truncated")]
    Truncated,
    /// A length field disagrees with the bytes that carry it.
    #[error("bad length {0}")]
    BadLength(usize),
    /// The major version is not 1 (IKEv2 and others are not ours).
    #[error("unsupported version {0:#04x}")]
    Version(u8),
    /// More payloads than [`MAX_PAYLOADS`] in one message.
    #[error("too many payloads")]
    TooManyPayloads,
    /// A payload type appeared where it cannot (e.g. a Transform outside a Proposal).
    #[error("unexpected payload {0:?}")]
    UnexpectedPayload(PayloadType),
    /// The number of transforms in a proposal disagrees with the transforms present.
    #[error("transform count mismatch")]
    TransformCount,
}

impl From<codec::Truncated> for Error {
    fn from(_: codec::Truncated) -> Self {
        Self::Truncated
    }
}

/// Results of this module.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests;
