//! What the LNS asks RADIUS: access requests for each PPP authentication method and
//! accounting records, and how each is written on the wire for one server.

use crate::crypto::{Password, Secret};
use crate::wire::{
    AcctAuthentic, AcctStatusType, AcctTerminateCause, Attr, Authenticator, Code, FramedProtocol,
    Identifier, MAX_LEN, MsAttr, MsChap2Response, NasPortType, PacketWriter, ServiceType,
    WriteError,
};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// How the NAS names itself in every request (RFC 2865 §5.4, §5.32): at least one of the two
/// is sent (RFC 2865 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NasIdentity {
    /// NAS-IP-Address: our address as the RADIUS server sees it.
    pub ip_address: Option<Ipv4Addr>,
    /// NAS-Identifier: our name.
    pub identifier: Option<Vec<u8>>,
}

/// The proof a PPP peer presented, as RADIUS carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// PAP (RFC 1334): the password, sent hidden in User-Password (RFC 2865 §5.2).
    Pap(Password),
    /// CHAP with MD5 (RFC 1994): CHAP-Password and CHAP-Challenge (RFC 2865 §5.3, §5.40).
    ChapMd5 {
        /// The CHAP Identifier of the challenge.
        ident: u8,
        /// The challenge we sent the peer (1 to 253 octets).
        challenge: Vec<u8>,
        /// The peer's response.
        response: [u8; 16],
    },
    /// MS-CHAP-V2 (RFC 2759): MS-CHAP-Challenge and MS-CHAP2-Response (RFC 2548 §2.1.2,
    /// §2.3.2).
    MsChapV2 {
        /// The CHAP Identifier of the challenge.
        ident: u8,
        /// The 16-octet challenge we sent.
        authenticator_challenge: [u8; 16],
        /// The peer's 16-octet challenge.
        peer_challenge: [u8; 16],
        /// The peer's NT-Response.
        nt_response: [u8; 24],
    },
}

/// An Access-Request (RFC 2865 §4.1) for one PPP user. NAS-Port-Type Virtual, Service-Type
/// Framed and Framed-Protocol PPP are always sent, and so are the NAS identity attributes of
/// the client's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// User-Name: the name the peer presented.
    pub user_name: Vec<u8>,
    /// The method and its proof.
    pub credentials: Credentials,
    /// NAS-Port: a number for the session (the L2TP session, for example).
    pub nas_port: Option<u32>,
    /// Calling-Station-Id: the client's public address.
    pub calling_station_id: Option<Vec<u8>>,
    /// Called-Station-Id: our address.
    pub called_station_id: Option<Vec<u8>>,
    /// Acct-Session-Id, so that the server can tie authentication to accounting.
    pub acct_session_id: Option<AcctSessionId>,
}

/// Traffic counters of a session, in the LNS's view: input is what the user sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Octets received from the user.
    pub input_octets: u64,
    /// Octets sent to the user.
    pub output_octets: u64,
    /// Packets received from the user.
    pub input_packets: u64,
    /// Packets sent to the user.
    pub output_packets: u64,
}

/// An Accounting-Request (RFC 2866 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRequest {
    /// Start, Interim-Update, Stop, Accounting-On or Accounting-Off.
    pub status_type: AcctStatusType,
    /// Acct-Session-Id (RFC 2866 §5.5), required in every Accounting-Request.
    pub session_id: AcctSessionId,
    /// User-Name.
    pub user_name: Option<Vec<u8>>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// Framed-IP-Address: the user's address.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<Vec<u8>>,
    /// Called-Station-Id.
    pub called_station_id: Option<Vec<u8>>,
    /// Class attributes of the Access-Accept, echoed unchanged (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Acct-Authentic: RADIUS or local.
    pub authentic: Option<AcctAuthentic>,
    /// Acct-Session-Time (whole seconds are sent).
    pub session_time: Option<Duration>,
    /// Octets and packets, with Gigawords for octet counts past 2^32 (RFC 2869 §5.1, §5.2).
    pub counters: Option<Counters>,
    /// Acct-Terminate-Cause, for Stop.
    pub terminate_cause: Option<AcctTerminateCause>,
    /// Event-Timestamp: seconds since 1970-01-01 UTC, from the driver's wall clock.
    pub event_timestamp: Option<u32>,
}

impl AccountingRequest {
    /// A record of `status_type` for session `session_id` with nothing else set.
    #[must_use]
    pub const fn new(status_type: AcctStatusType, session_id: AcctSessionId) -> Self {
        Self {
            status_type,
            session_id,
            user_name: None,
            nas_port: None,
            framed_ip_address: None,
            calling_station_id: None,
            called_station_id: None,
            class: Vec::new(),
            authentic: None,
            session_time: None,
            counters: None,
            terminate_cause: None,
            event_timestamp: None,
        }
    }

    fn is_session_record(&self) -> bool {
        !matches!(
            self.status_type,
            AcctStatusType::ACCOUNTING_ON | AcctStatusType::ACCOUNTING_OFF
        )
    }
}

/// An Acct-Session-Id: 16 hexadecimal digits of the boot tag the driver chose, a dash, and 8
/// of a per-boot counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcctSessionId([u8; 25]);

impl AcctSessionId {
    /// The identifier `bytes` spell, if they have an identifier's length (what a
    /// Disconnect-Request's Acct-Session-Id is looked up by).
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The identifier as sent.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AcctSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcctSessionId({self})")
    }
}

impl fmt::Display for AcctSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.0).unwrap_or("?"))
    }
}

/// Issues Acct-Session-Ids that stay unique across restarts (RFC 2866 §5.5 wants them unique
/// per NAS "over a reboot" horizon).
///
/// The driver passes a boot tag that differs between runs: the wall-clock time of the start
/// in nanoseconds, or seconds with random bits below. Within a run the counter makes the IDs
/// distinct for 2^32 sessions.
#[derive(Debug, Clone)]
pub struct AcctSessionIds {
    boot: u64,
    next: u32,
}

impl AcctSessionIds {
    /// Starts a run tagged `boot`.
    #[must_use]
    pub const fn new(boot: u64) -> Self {
        Self { boot, next: 1 }
    }

    /// The next identifier.
    pub fn next_id(&mut self) -> AcctSessionId {
        let text = format!("{:016X}-{:08X}", self.boot, self.next);
        let mut out = [b'0'; 25];
        for (slot, digit) in out.iter_mut().zip(text.bytes()) {
            *slot = digit;
        }
        self.next = self.next.wrapping_add(1);
        AcctSessionId(out)
    }
}

/// What the client was asked to send, kept to rebuild the packet for another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    Access(Box<AccessRequest>),
    Accounting(Box<AccountingRequest>),
}

fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn low_high(v: u64) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = v.to_be_bytes();
    (
        u32::from_be_bytes([e, f, g, h]),
        u32::from_be_bytes([a, b, c, d]),
    )
}

impl Query {
    pub(crate) const fn code(&self) -> Code {
        match self {
            Self::Access(_) => Code::ACCESS_REQUEST,
            Self::Accounting(_) => Code::ACCOUNTING_REQUEST,
        }
    }

    /// Writes the request for one server. `authenticator` is the random Request Authenticator
    /// of an Access-Request (ignored for accounting); `delay` becomes Acct-Delay-Time.
    pub(crate) fn encode(
        &self,
        nas: &NasIdentity,
        identifier: Identifier,
        authenticator: &Authenticator,
        secret: &Secret,
        delay: Duration,
    ) -> Result<Vec<u8>, WriteError> {
        let mut buf = [0u8; MAX_LEN];
        let mut w = PacketWriter::new(&mut buf, self.code(), identifier, authenticator)?;
        // First, as the BlastRADIUS advisories recommend, on every request (RFC 3579 §3.2).
        w.message_authenticator()?;
        match self {
            Self::Access(r) => {
                w.attr(&Attr::UserName(&r.user_name))?;
                match &r.credentials {
                    Credentials::Pap(password) => w.user_password(password.expose(), secret)?,
                    Credentials::ChapMd5 {
                        ident,
                        challenge,
                        response,
                    } => {
                        if challenge.is_empty() {
                            return Err(WriteError::ValueTooLong(0));
                        }
                        w.attr(&Attr::ChapPassword {
                            ident: *ident,
                            response: *response,
                        })?;
                        w.attr(&Attr::ChapChallenge(challenge))?;
                    }
                    Credentials::MsChapV2 {
                        ident,
                        authenticator_challenge,
                        peer_challenge,
                        nt_response,
                    } => {
                        w.ms_attr(&MsAttr::ChapChallenge(authenticator_challenge))?;
                        w.ms_attr(&MsAttr::Chap2Response(MsChap2Response {
                            ident: *ident,
                            flags: 0,
                            peer_challenge: *peer_challenge,
                            reserved: [0; 8],
                            nt_response: *nt_response,
                        }))?;
                    }
                }
                write_nas(&mut w, nas)?;
                if let Some(port) = r.nas_port {
                    w.attr(&Attr::NasPort(port))?;
                }
                write_service(&mut w)?;
                write_stations(
                    &mut w,
                    r.calling_station_id.as_deref(),
                    r.called_station_id.as_deref(),
                )?;
                if let Some(id) = &r.acct_session_id {
                    w.attr(&Attr::AcctSessionId(id.as_bytes()))?;
                }
            }
            Self::Accounting(r) => {
                w.attr(&Attr::AcctStatusType(r.status_type))?;
                w.attr(&Attr::AcctSessionId(r.session_id.as_bytes()))?;
                if let Some(user) = &r.user_name {
                    w.attr(&Attr::UserName(user))?;
                }
                write_nas(&mut w, nas)?;
                if let Some(port) = r.nas_port {
                    w.attr(&Attr::NasPort(port))?;
                }
                if r.is_session_record() {
                    write_service(&mut w)?;
                }
                if let Some(address) = r.framed_ip_address {
                    w.attr(&Attr::FramedIpAddress(address))?;
                }
                write_stations(
                    &mut w,
                    r.calling_station_id.as_deref(),
                    r.called_station_id.as_deref(),
                )?;
                for class in &r.class {
                    w.attr(&Attr::Class(class))?;
                }
                if let Some(authentic) = r.authentic {
                    w.attr(&Attr::AcctAuthentic(authentic))?;
                }
                w.attr(&Attr::AcctDelayTime(seconds(delay)))?;
                if let Some(t) = r.event_timestamp {
                    w.attr(&Attr::EventTimestamp(t))?;
                }
                if let Some(t) = r.session_time {
                    w.attr(&Attr::AcctSessionTime(seconds(t)))?;
                }
                if let Some(c) = r.counters {
                    let (input, input_giga) = low_high(c.input_octets);
                    let (output, output_giga) = low_high(c.output_octets);
                    w.attr(&Attr::AcctInputOctets(input))?;
                    w.attr(&Attr::AcctOutputOctets(output))?;
                    w.attr(&Attr::AcctInputGigawords(input_giga))?;
                    w.attr(&Attr::AcctOutputGigawords(output_giga))?;
                    let packets = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                    w.attr(&Attr::AcctInputPackets(packets(c.input_packets)))?;
                    w.attr(&Attr::AcctOutputPackets(packets(c.output_packets)))?;
                }
                if let Some(cause) = r.terminate_cause {
                    w.attr(&Attr::AcctTerminateCause(cause))?;
                }
            }
        }
        Ok(w.finish_request(secret)?.to_vec())
    }
}

fn write_nas(w: &mut PacketWriter<'_>, nas: &NasIdentity) -> Result<(), WriteError> {
    if let Some(address) = nas.ip_address {
        w.attr(&Attr::NasIpAddress(address))?;
    }
    if let Some(name) = &nas.identifier {
        w.attr(&Attr::NasIdentifier(name))?;
    }
    Ok(())
}

fn write_service(w: &mut PacketWriter<'_>) -> Result<(), WriteError> {
    w.attr(&Attr::NasPortType(NasPortType::VIRTUAL))?;
    w.attr(&Attr::ServiceType(ServiceType::FRAMED))?;
    w.attr(&Attr::FramedProtocol(FramedProtocol::PPP))
}

fn write_stations(
    w: &mut PacketWriter<'_>,
    calling: Option<&[u8]>,
    called: Option<&[u8]>,
) -> Result<(), WriteError> {
    if let Some(id) = called {
        w.attr(&Attr::CalledStationId(id))?;
    }
    if let Some(id) = calling {
        w.attr(&Attr::CallingStationId(id))?;
    }
    Ok(())
}
