//! ISAKMP / IKEv1 (RFC 2408, RFC 2409) and ESP (RFC 4303) as sans-IO state machines.
//!
//! Main Mode and Quick Mode (responder and initiator), NAT traversal (RFC 3947, RFC 3948), DPD
//! (RFC 3706), and ESP transport mode sealed and opened in place.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod endpoint;
pub mod esp;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod ikev1;
pub mod wire;
