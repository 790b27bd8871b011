//! IKEv1 (RFC 2409): the key schedule, phase-1 and phase-2 hashes, and the CBC encryption of
//! ISAKMP messages with the IV chaining of RFC 2409 Appendix B.

pub mod cert;
pub mod informational;
pub mod keys;
pub mod main_mode;
pub mod nat;
pub mod phase2;
pub mod proposal;
pub mod protected;
pub mod quick_mode;
pub mod rsa;
pub mod vendor;

#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;
