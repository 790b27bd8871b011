//! What a verified answer to an Access-Request tells the LNS: [`Accept`] or [`Reject`].

use crate::crypto::{MppeKey, Secret, decrypt_salted};
use crate::request::Credentials;
use crate::wire::{
    Attr, Attributes, Authenticator, Code, Error, FramedProtocol, MsAttr, Packet, ServiceType,
    VendorAttributes, VendorId,
};
use std::net::Ipv4Addr;
use std::time::Duration;

/// The MS-CHAP2-Success of an Access-Accept (RFC 2548 §2.3.3): what the PPP Success message
/// must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Success {
    /// The PPP Identifier; equal to the request's.
    pub ident: u8,
    /// `S=` and 40 hexadecimal digits (RFC 2759 §5).
    pub authenticator_response: [u8; 42],
}

/// The MS-CHAP-Error of an Access-Reject (RFC 2548 §2.1.5): what the PPP Failure message
/// should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsChapError {
    /// The PPP Identifier.
    pub ident: u8,
    /// The text, such as `E=691 R=0 C=… V=3 M=…` (RFC 2759 §6).
    pub message: Vec<u8>,
}

/// The MPPE keys of an Access-Accept, decrypted (RFC 2548 §2.4.2–§2.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// MS-MPPE-Send-Key: for what the LNS sends.
    pub send: MppeKey,
    /// MS-MPPE-Recv-Key: for what the LNS receives.
    pub recv: MppeKey,
    /// MS-MPPE-Encryption-Policy, if sent.
    pub policy: Option<u32>,
    /// MS-MPPE-Encryption-Types, if sent.
    pub types: Option<u32>,
}

/// What an Access-Accept grants. Every field the server did not send is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accept {
    /// Service-Type (Framed expected).
    pub service_type: Option<ServiceType>,
    /// Framed-Protocol (PPP expected).
    pub framed_protocol: Option<FramedProtocol>,
    /// Framed-IP-Address: the address to give the user. RFC 2865 §5.8 reserves 255.255.255.255
    /// ("let the user choose") and 255.255.255.254 ("the NAS chooses"); both are reported as
    /// sent.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Framed-Pool: the name of the pool to draw the address from (RFC 2869 §5.18).
    pub framed_pool: Option<Vec<u8>>,
    /// Session-Timeout.
    pub session_timeout: Option<Duration>,
    /// Idle-Timeout.
    pub idle_timeout: Option<Duration>,
    /// Acct-Interim-Interval (RFC 2869 §5.16).
    pub acct_interim_interval: Option<Duration>,
    /// Class attributes, in order, to echo in accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Filter-Id attributes, in order.
    pub filter_id: Vec<Vec<u8>>,
    /// Reply-Message attributes, concatenated in order (RFC 2865 §5.18).
    pub reply_message: Vec<u8>,
    /// MS-CHAP2-Success; always present when the request was MS-CHAP-V2.
    pub ms_chap2_success: Option<MsChap2Success>,
    /// MS-MPPE-Send-Key and MS-MPPE-Recv-Key, decrypted.
    pub mppe: Option<MppeKeys>,
    /// MS-Primary-DNS-Server and MS-Secondary-DNS-Server (RFC 2548 §2.7.6, §2.7.7).
    pub dns_servers: [Option<Ipv4Addr>; 2],
}

/// Why an authentic answer does not let the user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCause {
    /// Access-Reject.
    AccessReject,
    /// Access-Challenge: we run no challenge/response with the user, so RFC 2865 §4.4 has us
    /// treat it as an Access-Reject.
    AccessChallenge,
    /// An Access-Accept we cannot act on (RFC 2865 §5: an invalid attribute in an
    /// Access-Accept makes it an Access-Reject).
    InvalidAccept(InvalidAccept),
}

/// What was wrong with an Access-Accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccept {
    /// An attribute has the wrong size or layout.
    #[error("malformed attribute: {0}")]
    Attribute(Error),
    /// An MS-CHAP-V2 request was accepted without MS-CHAP2-Success, so the PPP peer cannot
    /// authenticate the server.
    #[error("MS-CHAP2-Success missing")]
    MissingMsChap2Success,
    /// MS-CHAP2-Success is not `S=` and 40 hexadecimal digits, or names another Identifier.
    #[error("malformed MS-CHAP2-Success")]
    BadMsChap2Success,
    /// A key does not decrypt, or only one of the two MPPE keys was sent.
    #[error("malformed MPPE keys")]
    BadMppeKeys,
}

/// What an Access-Reject (or an answer treated as one) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub cause: RejectCause,
    /// Reply-Message attributes, concatenated in order.
    pub reply_message: Vec<u8>,
    /// MS-CHAP-Error, for the PPP Failure message of MS-CHAP-V2.
    pub ms_chap_error: Option<MsChapError>,
}

/// The verdict carried by a verified answer to an Access-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The user may log in with these settings.
    Accept(Box<Accept>),
    /// The user may not.
    Reject(Reject),
}

fn seconds(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn is_authenticator_response(message: &[u8]) -> bool {
    message.len() == 42
        && message.starts_with(b"S=")
        && message[2..].iter().all(u8::is_ascii_hexdigit)
}

/// Reads the verdict of a verified answer to `credentials` sent with `request_authenticator`.
/// The caller has checked the answer's authenticity.
pub(crate) fn verdict(
    answer: &Packet<&[u8]>,
    credentials: &Credentials,
    request_authenticator: &Authenticator,
    secret: &Secret,
) -> Verdict {
    match answer.code() {
        Code::ACCESS_ACCEPT => match accept(answer, credentials, request_authenticator, secret) {
            Ok(a) => Verdict::Accept(Box::new(a)),
            Err(e) => Verdict::Reject(Reject {
                cause: RejectCause::InvalidAccept(e),
                reply_message: reply_message(answer),
                ms_chap_error: None,
            }),
        },
        code => Verdict::Reject(reject(answer, code)),
    }
}

fn reply_message(answer: &Packet<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for a in answer.attributes().flatten() {
        if let Ok(Attr::ReplyMessage(m)) = Attr::parse(a) {
            out.extend_from_slice(m);
        }
    }
    out
}

fn reject(answer: &Packet<&[u8]>, code: Code) -> Reject {
    let mut ms_chap_error = None;
    for a in answer.attributes().flatten() {
        if let Ok(Attr::VendorSpecific {
            vendor: VendorId::MICROSOFT,
            data,
        }) = Attr::parse(a)
        {
            for sub in VendorAttributes::new(data).flatten() {
                if let Ok(MsAttr::ChapError { ident, message }) = MsAttr::parse(sub) {
                    ms_chap_error.get_or_insert(MsChapError {
                        ident,
                        message: message.to_vec(),
                    });
                }
            }
        }
    }
    Reject {
        cause: if code == Code::ACCESS_CHALLENGE {
            RejectCause::AccessChallenge
        } else {
            RejectCause::AccessReject
        },
        reply_message: reply_message(answer),
        ms_chap_error,
    }
}

fn accept(
    answer: &Packet<&[u8]>,
    credentials: &Credentials,
    request_authenticator: &Authenticator,
    secret: &Secret,
) -> Result<Accept, InvalidAccept> {
    let mut out = Accept::default();
    let (mut send, mut recv) = (None, None);
    let (mut policy, mut types) = (None, None);
    let bad = InvalidAccept::Attribute;
    for a in Attributes::new(answer.attribute_bytes()) {
        match Attr::parse(a.map_err(bad)?).map_err(bad)? {
            Attr::ServiceType(t) => out.service_type = Some(t),
            Attr::FramedProtocol(p) => out.framed_protocol = Some(p),
            Attr::FramedIpAddress(ip) => out.framed_ip_address = Some(ip),
            Attr::FramedPool(p) => out.framed_pool = Some(p.to_vec()),
            Attr::SessionTimeout(s) => out.session_timeout = Some(seconds(s)),
            Attr::IdleTimeout(s) => out.idle_timeout = Some(seconds(s)),
            Attr::AcctInterimInterval(s) => out.acct_interim_interval = Some(seconds(s)),
            Attr::Class(c) => out.class.push(c.to_vec()),
            Attr::FilterId(f) => out.filter_id.push(f.to_vec()),
            Attr::ReplyMessage(m) => out.reply_message.extend_from_slice(m),
            Attr::VendorSpecific {
                vendor: VendorId::MICROSOFT,
                data,
            } => {
                for sub in VendorAttributes::new(data) {
                    match MsAttr::parse(sub.map_err(bad)?).map_err(bad)? {
                        MsAttr::Chap2Success { ident, message } => {
                            let mut response = [0u8; 42];
                            if !is_authenticator_response(message) {
                                return Err(InvalidAccept::BadMsChap2Success);
                            }
                            response.copy_from_slice(message);
                            out.ms_chap2_success = Some(MsChap2Success {
                                ident,
                                authenticator_response: response,
                            });
                        }
                        MsAttr::MppeSendKey(k) => {
                            send = Some(
                                decrypt_salted(&k, secret, request_authenticator)
                                    .map_err(|_| InvalidAccept::BadMppeKeys)?,
                            );
                        }
                        MsAttr::MppeRecvKey(k) => {
                            recv = Some(
                                decrypt_salted(&k, secret, request_authenticator)
                                    .map_err(|_| InvalidAccept::BadMppeKeys)?,
                            );
                        }
                        MsAttr::MppeEncryptionPolicy(p) => policy = Some(p),
                        MsAttr::MppeEncryptionTypes(t) => types = Some(t),
                        MsAttr::PrimaryDnsServer(ip) => out.dns_servers[0] = Some(ip),
                        MsAttr::SecondaryDnsServer(ip) => out.dns_servers[1] = Some(ip),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out.mppe = match (send, recv) {
        (Some(send), Some(recv)) => Some(MppeKeys {
            send,
            recv,
            policy,
            types,
        }),
        (None, None) => None,
        _ => return Err(InvalidAccept::BadMppeKeys),
    };
    if let Credentials::MsChapV2 { ident, .. } = credentials {
        match &out.ms_chap2_success {
            None => return Err(InvalidAccept::MissingMsChap2Success),
            Some(s) if s.ident != *ident => return Err(InvalidAccept::BadMsChap2Success),
            Some(_) => {}
        }
    }
    Ok(out)
}
