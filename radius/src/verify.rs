//! Verification of received packets: the Response Authenticator (RFC 2865 §3, RFC 2866 §4.2,
//! RFC 5176 §2.3), the computed Request Authenticator of Accounting and Dynamic Authorization
//! requests (RFC 2866 §3, RFC 5176 §2.3) and Message-Authenticator (RFC 3579 §3.2). All
//! comparisons are constant-time.

use crate::crypto::{self, Secret};
use crate::wire::{self, AttributeType, Authenticator, HEADER_LEN, Packet};

/// Whether an answer must carry Message-Authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageAuthenticatorPolicy {
    /// Drop answers without one. The default: it is what stops forged Access-Accepts built by
    /// MD5 collisions on the Response Authenticator (the "BlastRADIUS" attack, CVE-2024-3596).
    #[default]
    Required,
    /// Check it when present; accept answers without it (older servers).
    IfPresent,
}

/// Why a received packet is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The Response (or computed Request) Authenticator does not match.
    #[error("authenticator mismatch")]
    Authenticator,
    /// Message-Authenticator does not match.
    #[error("Message-Authenticator mismatch")]
    MessageAuthenticator,
    /// Message-Authenticator is required and absent.
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// More than one Message-Authenticator, or one that is not 16 octets (RFC 3579 §3.2).
    #[error("malformed Message-Authenticator")]
    MalformedMessageAuthenticator,
    /// The packet's attribute chain is malformed.
    #[error("malformed packet: {0}")]
    Malformed(wire::Error),
}

/// Offset of the Message-Authenticator value in the packet, if there is exactly one.
fn find_message_authenticator(packet: &Packet<&[u8]>) -> Result<Option<usize>, VerifyError> {
    let mut found = None;
    for attribute in packet.attributes() {
        let attribute = attribute.map_err(VerifyError::Malformed)?;
        if attribute.kind != AttributeType::MESSAGE_AUTHENTICATOR {
            continue;
        }
        if found.is_some() || attribute.value.len() != 16 {
            return Err(VerifyError::MalformedMessageAuthenticator);
        }
        found = Some(HEADER_LEN + attribute.offset + 2);
    }
    Ok(found)
}

fn check_message_authenticator(
    packet: &Packet<&[u8]>,
    authenticator: &Authenticator,
    secret: &Secret,
    policy: MessageAuthenticatorPolicy,
) -> Result<(), VerifyError> {
    match find_message_authenticator(packet)? {
        Some(at) => {
            let bytes = packet.as_bytes();
            let expected = crypto::message_authenticator(bytes, authenticator, at, secret);
            let mut got = [0u8; 16];
            got.copy_from_slice(&bytes[at..at + 16]);
            if crypto::ct_eq(&expected, &got) {
                Ok(())
            } else {
                Err(VerifyError::MessageAuthenticator)
            }
        }
        None if policy == MessageAuthenticatorPolicy::Required => {
            Err(VerifyError::MissingMessageAuthenticator)
        }
        None => Ok(()),
    }
}

/// Verifies an answer to a request whose Authenticator was `request_authenticator`: the
/// Response Authenticator first, then Message-Authenticator as `policy` says.
///
/// # Errors
/// The first check that failed.
pub fn verify_response(
    answer: &Packet<&[u8]>,
    request_authenticator: &Authenticator,
    secret: &Secret,
    policy: MessageAuthenticatorPolicy,
) -> Result<(), VerifyError> {
    let expected = crypto::packet_authenticator(answer.as_bytes(), request_authenticator, secret);
    if !crypto::ct_eq(&expected, &answer.authenticator().0) {
        return Err(VerifyError::Authenticator);
    }
    check_message_authenticator(answer, request_authenticator, secret, policy)
}

/// Verifies a received request. For codes with a computed Request Authenticator
/// (Accounting-Request, Disconnect-Request, CoA-Request) that Authenticator is checked, then
/// Message-Authenticator over a zero Authenticator; for Access-Request and Status-Server only
/// Message-Authenticator over the packet's own Authenticator can be checked.
///
/// # Errors
/// The first check that failed.
pub fn verify_request(
    request: &Packet<&[u8]>,
    secret: &Secret,
    policy: MessageAuthenticatorPolicy,
) -> Result<(), VerifyError> {
    if request.code().has_computed_request_authenticator() {
        let expected =
            crypto::packet_authenticator(request.as_bytes(), &Authenticator::ZERO, secret);
        if !crypto::ct_eq(&expected, &request.authenticator().0) {
            return Err(VerifyError::Authenticator);
        }
        check_message_authenticator(request, &Authenticator::ZERO, secret, policy)
    } else {
        check_message_authenticator(request, &request.authenticator(), secret, policy)
    }
}
