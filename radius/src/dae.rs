//! Dynamic Authorization (RFC 5176): Disconnect-Request and CoA-Request received from a
//! configured RADIUS client, verified and read ([`DaeRequest::parse`]), and answered with
//! ACK or NAK ([`write_ack`], [`write_nak`]).
//!
//! The LNS finds the session from the identification attributes (RFC 5176 §3: User-Name,
//! Acct-Session-Id, Framed-IP-Address, Calling-Station-Id, NAS-Port), checks the NAS
//! identification attributes against its own, acts, and answers. Answers echo every
//! Proxy-State in order (RFC 5176 §3.1, RFC 2865 §5.33) and carry Message-Authenticator.
//! Retransmitted requests (same source, Identifier and Authenticator) should get the cached
//! answer again (RFC 5080 §2.2.2); that cache belongs to the driver.

use crate::crypto::Secret;
use crate::verify::{MessageAuthenticatorPolicy, VerifyError, verify_request};
use crate::wire::{
    self, Attr, AttributeType, Attributes, Authenticator, Code, ErrorCause, Identifier, Packet,
    PacketWriter, ServiceType, WriteError,
};
use std::net::Ipv4Addr;

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaeKind {
    /// Disconnect-Request: end the session.
    Disconnect,
    /// CoA-Request: change the session's authorization.
    Coa,
}

/// Why a datagram is not a request to act on. The sender gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DaeError {
    /// Not a well-formed RADIUS packet.
    #[error("malformed: {0}")]
    Malformed(wire::Error),
    /// Not a Disconnect-Request or CoA-Request.
    #[error("unexpected code {0}")]
    UnexpectedCode(Code),
    /// The Request Authenticator or Message-Authenticator does not verify (RFC 5176 §3.1:
    /// silently discarded).
    #[error("not authentic: {0}")]
    Unverified(VerifyError),
}

/// A verified Disconnect-Request or CoA-Request, borrowed from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeRequest<'a> {
    /// Disconnect or CoA.
    pub kind: DaeKind,
    /// For the answer.
    pub identifier: Identifier,
    /// For the answer's Response Authenticator.
    pub authenticator: Authenticator,
    /// NAS-IP-Address, to compare with ours (RFC 5176 §3).
    pub nas_ip_address: Option<Ipv4Addr>,
    /// NAS-Identifier, to compare with ours.
    pub nas_identifier: Option<&'a [u8]>,
    /// User-Name.
    pub user_name: Option<&'a [u8]>,
    /// Acct-Session-Id.
    pub acct_session_id: Option<&'a [u8]>,
    /// Framed-IP-Address.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<&'a [u8]>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// Service-Type; Authorize-Only asks for a new Access-Request (RFC 5176 §3.2).
    pub service_type: Option<ServiceType>,
    /// CoA: a new Session-Timeout.
    pub session_timeout: Option<u32>,
    /// CoA: a new Idle-Timeout.
    pub idle_timeout: Option<u32>,
    /// CoA: a new Filter-Id.
    pub filter_id: Option<&'a [u8]>,
    /// CoA: a new Acct-Interim-Interval.
    pub acct_interim_interval: Option<u32>,
    /// The first attribute we cannot act on and the Error-Cause a NAK should give: 407
    /// Invalid Attribute Value for a malformed one, 401 Unsupported Attribute for one this
    /// NAS does not implement (RFC 5176 §3.5).
    pub problem: Option<(AttributeType, ErrorCause)>,
    /// The whole attribute chain, for Proxy-State.
    attributes: &'a [u8],
}

impl<'a> DaeRequest<'a> {
    /// Verifies (RFC 5176 §3.1 via RFC 2866 §3 and RFC 3579 §3.2) and reads a request.
    ///
    /// # Errors
    /// [`DaeError`]: drop the datagram without answering.
    pub fn parse(
        datagram: &'a [u8],
        secret: &Secret,
        policy: MessageAuthenticatorPolicy,
    ) -> Result<Self, DaeError> {
        let packet = Packet::new_checked(datagram).map_err(DaeError::Malformed)?;
        let kind = match packet.code() {
            Code::DISCONNECT_REQUEST => DaeKind::Disconnect,
            Code::COA_REQUEST => DaeKind::Coa,
            other => return Err(DaeError::UnexpectedCode(other)),
        };
        verify_request(&packet, secret, policy).map_err(DaeError::Unverified)?;
        let length = usize::from(packet.length());
        let attributes = datagram.get(wire::HEADER_LEN..length).unwrap_or_default();
        let mut out = Self {
            kind,
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            nas_ip_address: None,
            nas_identifier: None,
            user_name: None,
            acct_session_id: None,
            framed_ip_address: None,
            calling_station_id: None,
            nas_port: None,
            service_type: None,
            session_timeout: None,
            idle_timeout: None,
            filter_id: None,
            acct_interim_interval: None,
            problem: None,
            attributes,
        };
        for a in Attributes::new(attributes) {
            let Ok(a) = a else { break };
            let Ok(typed) = Attr::parse(a) else {
                out.problem
                    .get_or_insert((a.kind, ErrorCause::INVALID_ATTRIBUTE_VALUE));
                continue;
            };
            match typed {
                Attr::NasIpAddress(ip) => out.nas_ip_address = Some(ip),
                Attr::NasIdentifier(n) => out.nas_identifier = Some(n),
                Attr::UserName(n) => out.user_name = Some(n),
                Attr::AcctSessionId(s) => out.acct_session_id = Some(s),
                Attr::FramedIpAddress(ip) => out.framed_ip_address = Some(ip),
                Attr::CallingStationId(c) => out.calling_station_id = Some(c),
                Attr::NasPort(p) => out.nas_port = Some(p),
                Attr::ServiceType(t) => out.service_type = Some(t),
                Attr::SessionTimeout(s) if kind == DaeKind::Coa => out.session_timeout = Some(s),
                Attr::IdleTimeout(s) if kind == DaeKind::Coa => out.idle_timeout = Some(s),
                Attr::FilterId(f) if kind == DaeKind::Coa => out.filter_id = Some(f),
                Attr::AcctInterimInterval(s) if kind == DaeKind::Coa => {
                    out.acct_interim_interval = Some(s);
                }
                Attr::MessageAuthenticator(_)
                | Attr::ProxyState(_)
                | Attr::State(_)
                | Attr::EventTimestamp(_)
                | Attr::CalledStationId(_)
                | Attr::NasPortType(_)
                | Attr::Class(_)
                | Attr::ReplyMessage(_) => {}
                other => {
                    out.problem
                        .get_or_insert((other.kind(), ErrorCause::UNSUPPORTED_ATTRIBUTE));
                }
            }
        }
        Ok(out)
    }

    /// Whether the request names any session at all (RFC 5176 §3: at least one session
    /// identification attribute).
    #[must_use]
    pub const fn identifies_a_session(&self) -> bool {
        self.user_name.is_some()
            || self.acct_session_id.is_some()
            || self.framed_ip_address.is_some()
            || self.calling_station_id.is_some()
            || self.nas_port.is_some()
    }

    /// The Proxy-State values, in order.
    pub fn proxy_states(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        Attributes::new(self.attributes)
            .map_while(Result::ok)
            .filter(|a| a.kind == AttributeType::PROXY_STATE)
            .map(|a| a.value)
    }

    fn answer<'b>(
        &self,
        buf: &'b mut [u8],
        code: Code,
        secret: &Secret,
        cause: Option<ErrorCause>,
    ) -> Result<&'b mut [u8], WriteError> {
        let mut w = PacketWriter::new(buf, code, self.identifier, &Authenticator::ZERO)?;
        w.message_authenticator()?;
        if let Some(cause) = cause {
            w.attr(&Attr::ErrorCause(cause))?;
        }
        for state in self.proxy_states() {
            w.attr(&Attr::ProxyState(state))?;
        }
        w.finish_response(secret, &self.authenticator)
    }
}

/// Writes Disconnect-ACK or CoA-ACK for `request` (RFC 5176 §2.3).
///
/// # Errors
/// [`WriteError::NoSpace`] for a buffer too small.
pub fn write_ack<'b>(
    buf: &'b mut [u8],
    request: &DaeRequest<'_>,
    secret: &Secret,
) -> Result<&'b mut [u8], WriteError> {
    let code = match request.kind {
        DaeKind::Disconnect => Code::DISCONNECT_ACK,
        DaeKind::Coa => Code::COA_ACK,
    };
    request.answer(buf, code, secret, None)
}

/// Writes Disconnect-NAK or CoA-NAK for `request` with an Error-Cause (RFC 5176 §2.3, §3.5).
///
/// # Errors
/// [`WriteError::NoSpace`] for a buffer too small.
pub fn write_nak<'b>(
    buf: &'b mut [u8],
    request: &DaeRequest<'_>,
    secret: &Secret,
    cause: ErrorCause,
) -> Result<&'b mut [u8], WriteError> {
    let code = match request.kind {
        DaeKind::Disconnect => Code::DISCONNECT_NAK,
        DaeKind::Coa => Code::COA_NAK,
    };
    request.answer(buf, code, secret, Some(cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_response;

    fn secret() -> Secret {
        Secret::new("dae-secret")
    }

    fn request(code: Code, body: impl FnOnce(&mut PacketWriter<'_>)) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut w =
            PacketWriter::new(&mut buf, code, Identifier(77), &Authenticator::ZERO).unwrap();
        w.message_authenticator().unwrap();
        body(&mut w);
        w.finish_request(&secret()).unwrap().to_vec()
    }

    #[test]
    fn a_disconnect_request_is_read_and_acked_with_its_proxy_states() {
        let bytes = request(Code::DISCONNECT_REQUEST, |w| {
            w.attr(&Attr::ProxyState(b"p1")).unwrap();
            w.attr(&Attr::AcctSessionId(b"0000000165000000-00000001"))
                .unwrap();
            w.attr(&Attr::UserName(b"hb")).unwrap();
            w.attr(&Attr::NasIpAddress(Ipv4Addr::new(192, 0, 2, 1)))
                .unwrap();
            w.attr(&Attr::ProxyState(b"p2")).unwrap();
        });
        let r = DaeRequest::parse(&bytes, &secret(), MessageAuthenticatorPolicy::Required).unwrap();
        assert_eq!(r.kind, DaeKind::Disconnect);
        assert_eq!(r.acct_session_id, Some(&b"0000000165000000-00000001"[..]));
        assert_eq!(r.user_name, Some(&b"hb"[..]));
        assert_eq!(r.nas_ip_address, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(r.identifies_a_session());
        assert_eq!(r.problem, None);

        let mut buf = [0u8; 4096];
        let ack = write_ack(&mut buf, &r, &secret()).unwrap().to_vec();
        let p = Packet::new_checked(&ack[..]).unwrap();
        assert_eq!(
            (p.code(), p.identifier()),
            (Code::DISCONNECT_ACK, Identifier(77))
        );
        assert_eq!(
            verify_response(
                &p,
                &r.authenticator,
                &secret(),
                MessageAuthenticatorPolicy::Required
            ),
            Ok(())
        );
        let states: Vec<_> = Attributes::new(&ack[20..])
            .map(|a| a.unwrap())
            .filter(|a| a.kind == AttributeType::PROXY_STATE)
            .map(|a| a.value.to_vec())
            .collect();
        assert_eq!(states, [b"p1".to_vec(), b"p2".to_vec()]);
    }

    #[test]
    fn a_coa_request_carries_new_limits_and_a_nak_carries_error_cause() {
        let bytes = request(Code::COA_REQUEST, |w| {
            w.attr(&Attr::FramedIpAddress(Ipv4Addr::new(10, 8, 0, 42)))
                .unwrap();
            w.attr(&Attr::SessionTimeout(60)).unwrap();
            w.attr(&Attr::FilterId(b"guest")).unwrap();
            w.attr(&Attr::FramedPool(b"other")).unwrap();
        });
        let r = DaeRequest::parse(&bytes, &secret(), MessageAuthenticatorPolicy::Required).unwrap();
        assert_eq!(r.kind, DaeKind::Coa);
        assert_eq!(
            (r.session_timeout, r.filter_id),
            (Some(60), Some(&b"guest"[..]))
        );
        assert_eq!(
            r.problem,
            Some((
                AttributeType::FRAMED_POOL,
                ErrorCause::UNSUPPORTED_ATTRIBUTE
            ))
        );
        let mut buf = [0u8; 4096];
        let nak = write_nak(&mut buf, &r, &secret(), ErrorCause::UNSUPPORTED_ATTRIBUTE)
            .unwrap()
            .to_vec();
        let p = Packet::new_checked(&nak[..]).unwrap();
        assert_eq!(p.code(), Code::COA_NAK);
        assert!(
            Attributes::new(&nak[20..])
                .map(|a| Attr::parse(a.unwrap()).unwrap())
                .any(|a| a == Attr::ErrorCause(ErrorCause::UNSUPPORTED_ATTRIBUTE))
        );
    }

    #[test]
    fn forged_or_foreign_requests_are_refused() {
        let bytes = request(Code::DISCONNECT_REQUEST, |w| {
            w.attr(&Attr::UserName(b"hb")).unwrap();
        });
        assert_eq!(
            DaeRequest::parse(
                &bytes,
                &Secret::new("other"),
                MessageAuthenticatorPolicy::Required
            )
            .err(),
            Some(DaeError::Unverified(VerifyError::Authenticator))
        );
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(
            DaeRequest::parse(&tampered, &secret(), MessageAuthenticatorPolicy::Required).is_err()
        );
        let access = request(Code::ACCOUNTING_REQUEST, |_| {});
        assert_eq!(
            DaeRequest::parse(&access, &secret(), MessageAuthenticatorPolicy::Required).err(),
            Some(DaeError::UnexpectedCode(Code::ACCOUNTING_REQUEST))
        );
        // A malformed known attribute is reported for a NAK with 407.
        let bad = request(Code::DISCONNECT_REQUEST, |w| {
            w.raw(AttributeType::FRAMED_IP_ADDRESS, &[1, 2, 3]).unwrap();
        });
        let r = DaeRequest::parse(&bad, &secret(), MessageAuthenticatorPolicy::Required).unwrap();
        assert_eq!(
            r.problem,
            Some((
                AttributeType::FRAMED_IP_ADDRESS,
                ErrorCause::INVALID_ATTRIBUTE_VALUE
            ))
        );
        assert!(!r.identifies_a_session());
    }
}
