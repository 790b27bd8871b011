//! Authentication: PAP (RFC 1334), CHAP with MD5 (RFC 1994) and MS-CHAP-V2 (RFC 2759), both
//! roles.
//!
//! The server session never decides who may log in. It emits an [`AuthRequest`] carrying what the
//! method needs (the PAP password, or the CHAP challenge and response) and later takes a
//! [`Verdict`]. [`AuthRequest::verify`] checks a request against a locally stored
//! [`Credential`]; a RADIUS client would forward the same fields instead.

pub mod chap;
pub mod mschapv2;
pub mod pap;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use mschapv2::{AuthenticatorResponse, MppeKeys, NtHash};

/// An authentication method as negotiated in the LCP Authentication-Protocol option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Password Authentication Protocol, `c023` (RFC 1334).
    Pap,
    /// CHAP with MD5, `c223 05` (RFC 1994).
    ChapMd5,
    /// Microsoft CHAP version 2, `c223 81` (RFC 2759).
    MsChapV2,
}

impl Method {
    /// Every method, strongest first.
    pub const ALL: [Self; 3] = [Self::MsChapV2, Self::ChapMd5, Self::Pap];

    /// The data of the LCP Authentication-Protocol option (RFC 1661 §6.2, RFC 1994 §3,
    /// RFC 2759 §2).
    #[must_use]
    pub const fn option_data(self) -> &'static [u8] {
        match self {
            Self::Pap => &[0xc0, 0x23],
            Self::ChapMd5 => &[0xc2, 0x23, 0x05],
            Self::MsChapV2 => &[0xc2, 0x23, 0x81],
        }
    }

    /// Recognises the data of an Authentication-Protocol option.
    #[must_use]
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        match data {
            [0xc0, 0x23, ..] => Some(Self::Pap),
            [0xc2, 0x23, 0x05] => Some(Self::ChapMd5),
            [0xc2, 0x23, 0x81] => Some(Self::MsChapV2),
            _ => None,
        }
    }

    /// The name operators write in configuration files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pap => "pap",
            Self::ChapMd5 => "chap",
            Self::MsChapV2 => "mschapv2",
        }
    }
}

/// A password in clear text, zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps password bytes (UTF-8 for anything MS-CHAP-V2 must hash).
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The bytes, for hashing. Do not log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The NT hash (RFC 2759 §8.3), if the password is valid UTF-8.
    #[must_use]
    pub fn nt_hash(&self) -> Option<NtHash> {
        core::str::from_utf8(&self.0).ok().map(NtHash::of_password)
    }

    /// Constant-time equality (for equal lengths; lengths are not secret-dependent in PAP).
    #[must_use]
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.ct_eq(other).into()
    }
}

impl core::fmt::Debug for Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What a user store holds for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The clear-text password: every method works.
    Password(Password),
    /// Only the NT hash: PAP and MS-CHAP-V2 work, CHAP-MD5 cannot be checked.
    NtHash(NtHash),
}

impl Credential {
    fn nt_hash(&self) -> Option<NtHash> {
        match self {
            Self::Password(p) => p.nt_hash(),
            Self::NtHash(h) => Some(h.clone()),
        }
    }
}

/// What the peer presented, as the method needs it for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// PAP: the password itself.
    Pap {
        /// The password the peer sent.
        password: Password,
    },
    /// CHAP-MD5: the response is MD5(identifier, secret, challenge) (RFC 1994 §4.1).
    ChapMd5 {
        /// The CHAP identifier of the challenge.
        identifier: u8,
        /// The challenge we sent.
        challenge: [u8; chap::MD5_CHALLENGE_LEN],
        /// The peer's response.
        response: [u8; 16],
    },
    /// MS-CHAP-V2 (RFC 2759 §4).
    MsChapV2 {
        /// The CHAP identifier of the challenge (a RADIUS server needs it for
        /// MS-CHAP2-Response and answers with it in MS-CHAP2-Success, RFC 2548 §2.3).
        identifier: u8,
        /// The 16-byte challenge we sent.
        authenticator_challenge: [u8; 16],
        /// The peer's 16-byte challenge.
        peer_challenge: [u8; 16],
        /// The peer's NT-Response.
        nt_response: [u8; 24],
    },
}

impl Proof {
    /// The method this proof belongs to.
    #[must_use]
    pub const fn method(&self) -> Method {
        match self {
            Self::Pap { .. } => Method::Pap,
            Self::ChapMd5 { .. } => Method::ChapMd5,
            Self::MsChapV2 { .. } => Method::MsChapV2,
        }
    }
}

/// The server session's question to its user store: may this peer log in?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The name the peer presented (PAP Peer-ID or CHAP Name), exactly as sent.
    pub user: String,
    /// The method's proof.
    pub proof: Proof,
}

/// The answer to an [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The peer may log in.
    Accept(Grant),
    /// Wrong user or password: the peer gets the method's failure message, then LCP terminates.
    Reject,
}

/// What an acceptance carries back to the session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// For MS-CHAP-V2: the authenticator response the Success message must carry (from
    /// [`AuthRequest::verify`] or from a RADIUS MS-CHAP2-Success attribute).
    pub authenticator_response: Option<AuthenticatorResponse>,
    /// For MS-CHAP-V2: the MPPE keys of the server side, for peers or RADIUS that need them.
    pub mppe: Option<MppeKeys>,
}

impl AuthRequest {
    /// Checks the request against a locally stored credential, in constant time.
    #[must_use]
    pub fn verify(&self, credential: &Credential) -> Verdict {
        let ok = match (&self.proof, credential) {
            (Proof::Pap { password }, Credential::Password(stored)) => {
                // Compare digests so the comparison time does not depend on either length.
                let a: Zeroizing<[u8; 16]> = Zeroizing::new(Md5::digest(password.expose()).into());
                let b: Zeroizing<[u8; 16]> = Zeroizing::new(Md5::digest(stored.expose()).into());
                bool::from(a.ct_eq(&*b)) && password.ct_eq(stored.expose())
            }
            (Proof::Pap { password }, Credential::NtHash(stored)) => password
                .nt_hash()
                .is_some_and(|h| bool::from(h.0.ct_eq(&stored.0))),
            (
                Proof::ChapMd5 {
                    identifier,
                    challenge,
                    response,
                },
                Credential::Password(stored),
            ) => {
                let expected = chap::md5_response(*identifier, stored, challenge);
                bool::from(expected.ct_eq(response))
            }
            (Proof::ChapMd5 { .. }, Credential::NtHash(_)) => false,
            (
                Proof::MsChapV2 {
                    authenticator_challenge,
                    peer_challenge,
                    nt_response,
                    ..
                },
                stored,
            ) => {
                let Some(hash) = stored.nt_hash() else {
                    return Verdict::Reject;
                };
                if !mschapv2::verify_nt_response(
                    authenticator_challenge,
                    peer_challenge,
                    self.user.as_bytes(),
                    &hash,
                    nt_response,
                ) {
                    return Verdict::Reject;
                }
                return Verdict::Accept(Grant {
                    authenticator_response: Some(mschapv2::authenticator_response(
                        &hash,
                        nt_response,
                        peer_challenge,
                        authenticator_challenge,
                        self.user.as_bytes(),
                    )),
                    mppe: Some(MppeKeys::derive(mschapv2::Side::Server, &hash, nt_response)),
                });
            }
        };
        if ok {
            Verdict::Accept(Grant::default())
        } else {
            Verdict::Reject
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pap(user: &str, password: &str) -> AuthRequest {
        AuthRequest {
            user: user.into(),
            proof: Proof::Pap {
                password: Password::new(password),
            },
        }
    }

    #[test]
    fn pap_against_password_and_nt_hash() {
        let stored = Credential::Password(Password::new("admin@123"));
        assert!(matches!(
            pap("hb@hb", "admin@123").verify(&stored),
            Verdict::Accept(_)
        ));
        assert_eq!(pap("hb@hb", "admin@12").verify(&stored), Verdict::Reject);
        assert_eq!(pap("hb@hb", "admin@1234").verify(&stored), Verdict::Reject);
        let hashed = Credential::NtHash(NtHash::of_password("admin@123"));
        assert!(matches!(
            pap("hb@hb", "admin@123").verify(&hashed),
            Verdict::Accept(_)
        ));
        assert_eq!(pap("hb@hb", "Admin@123").verify(&hashed), Verdict::Reject);
    }

    #[test]
    fn chap_md5_needs_the_clear_password() {
        let challenge = [7u8; chap::MD5_CHALLENGE_LEN];
        let secret = Password::new("admin@123");
        let response = chap::md5_response(3, &secret, &challenge);
        let request = AuthRequest {
            user: "hb@hb".into(),
            proof: Proof::ChapMd5 {
                identifier: 3,
                challenge,
                response,
            },
        };
        assert!(matches!(
            request.verify(&Credential::Password(secret)),
            Verdict::Accept(_)
        ));
        assert_eq!(
            request.verify(&Credential::NtHash(NtHash::of_password("admin@123"))),
            Verdict::Reject
        );
        assert_eq!(
            request.verify(&Credential::Password(Password::new("nope"))),
            Verdict::Reject
        );
    }

    #[test]
    fn mschapv2_accept_carries_the_authenticator_response_and_keys() {
        let (ac, pc) = ([1u8; 16], [2u8; 16]);
        let hash = NtHash::of_password("vpnpass123");
        let nt_response = mschapv2::generate_nt_response(&ac, &pc, b"vpnuser", &hash);
        let request = AuthRequest {
            user: "vpnuser".into(),
            proof: Proof::MsChapV2 {
                identifier: 1,
                authenticator_challenge: ac,
                peer_challenge: pc,
                nt_response,
            },
        };
        let Verdict::Accept(grant) = request.verify(&Credential::NtHash(hash.clone())) else {
            panic!("rejected")
        };
        let expected = mschapv2::authenticator_response(&hash, &nt_response, &pc, &ac, b"vpnuser");
        assert_eq!(grant.authenticator_response, Some(expected));
        assert!(grant.mppe.is_some());
        assert_eq!(
            request.verify(&Credential::Password(Password::new("vpnpass12"))),
            Verdict::Reject
        );
    }

    #[test]
    fn method_option_data_round_trips() {
        for m in Method::ALL {
            assert_eq!(Method::from_option_data(m.option_data()), Some(m));
        }
        assert_eq!(Method::from_option_data(&[0xc2, 0x23, 0x80]), None);
        assert_eq!(Method::from_option_data(&[0xc2, 0x27]), None);
        assert!(!format!("{:?}", Password::new("admin@123")).contains("admin"));
    }
}
