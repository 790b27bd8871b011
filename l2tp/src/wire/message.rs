//! Typed control messages (RFC 2661 §6) parsed in one pass over their AVPs (§4.1, §4.4).
//!
//! [`ControlMessage::parse`] reads the Message Type AVP, which must come first (§4.4.1), and
//! hands the remaining AVPs to the parser of that message. Every parser applies the same rules,
//! written once in `screen`, `unrecognised` and `set`:
//!
//! | AVP | outcome |
//! |---|---|
//! | vendor-specific, reserved bit set, or not defined for this message, M set | [`MessageError::UnknownMandatory`] — the caller tears down the tunnel or the session, by [`MessageType::scope`] (§4.1) |
//! | the same, M clear | ignored (§4.1) |
//! | Random Vector | ignored here; it only matters to hidden AVPs, revealed beforehand (§4.3) |
//! | a second Message Type or a second copy of any other attribute | [`MessageError::Duplicate`] |
//! | a defined attribute whose value has the wrong length or form | [`MessageError::BadValue`] |
//! | a defined attribute still hidden (H set) | [`MessageError::Hidden`]: reveal it first with [`super::hidden::reveal_body`] |
//! | a mandatory attribute of §6 absent | [`MessageError::Missing`] |
//!
//! A Zero-Length Body acknowledgement has no AVPs at all; it is recognised at the header
//! level ([`super::Packet::is_zlb`]) and never reaches this parser.
//!
//! Each message is declared by one table below (its §6 list of AVPs, in the order we emit
//! them, with the M bit we send), from which its struct, parser and emitter are generated.

use super::avp::{self, AttributeType, Avp, Avps, Flags, MessageType, Scope};
use crate::{SessionId, TunnelId};
use codec::{NoSpace, Writer};

/// Why a control message body was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The AVP chain itself is malformed (truncated, or an AVP Length below six).
    #[error("malformed AVP: {0}")]
    Wire(#[from] super::Error),
    /// The first AVP is not an IETF Message Type AVP (RFC 2661 §4.4.1).
    #[error("the first AVP is not Message Type")]
    MessageTypeNotFirst,
    /// The message type is not one RFC 2661 defines. With `mandatory` (the M bit of the
    /// Message Type AVP) the tunnel must be cleared; without it the message may be ignored
    /// (RFC 2661 §4.4.1).
    #[error("unknown message type {message_type}")]
    UnknownMessageType {
        /// The type received.
        message_type: MessageType,
        /// The M bit of the Message Type AVP.
        mandatory: bool,
    },
    /// An AVP we do not recognise in this message carries the M bit: the tunnel (for a
    /// [`Scope::Tunnel`] message) or the session (for a [`Scope::Session`] one) must be torn
    /// down (RFC 2661 §4.1).
    #[error("unrecognised mandatory AVP {attribute} (vendor {vendor})")]
    UnknownMandatory {
        /// The AVP's vendor ID.
        vendor: u16,
        /// The AVP's attribute type.
        attribute: AttributeType,
    },
    /// A single-valued attribute appears twice.
    #[error("duplicate {0} AVP")]
    Duplicate(AttributeType),
    /// An attribute that RFC 2661 §6 requires in this message is absent.
    #[error("missing {0} AVP")]
    Missing(AttributeType),
    /// The value of an attribute has the wrong length or form.
    #[error("bad value in {0} AVP")]
    BadValue(AttributeType),
    /// An attribute arrived hidden and was not revealed before parsing.
    #[error("{0} AVP is still hidden")]
    Hidden(AttributeType),
}

codec::wire_enum! {
    /// Result codes of the StopCCN Result Code AVP (RFC 2661 §4.4.2).
    pub struct StopCcnResult(u16) {
        /// General request to clear the control connection.
        GENERAL_REQUEST = 1,
        /// General error; the Error Code says which.
        GENERAL_ERROR = 2,
        /// A control channel already exists.
        CHANNEL_EXISTS = 3,
        /// The requester is not authorized to establish a control channel.
        NOT_AUTHORIZED = 4,
        /// The requester's protocol version is not supported.
        UNSUPPORTED_PROTOCOL_VERSION = 5,
        /// The requester is being shut down.
        SHUTTING_DOWN = 6,
        /// Finite state machine error.
        FSM_ERROR = 7,
    }
}

codec::wire_enum! {
    /// Result codes of the CDN Result Code AVP (RFC 2661 §4.4.2).
    pub struct CdnResult(u16) {
        /// Call disconnected due to loss of carrier.
        LOST_CARRIER = 1,
        /// General error; the Error Code says which.
        GENERAL_ERROR = 2,
        /// Call disconnected for administrative reasons.
        ADMINISTRATIVE = 3,
        /// Temporary lack of appropriate facilities.
        TEMPORARY_LACK_OF_FACILITIES = 4,
        /// Permanent lack of appropriate facilities.
        PERMANENT_LACK_OF_FACILITIES = 5,
        /// Invalid destination.
        INVALID_DESTINATION = 6,
        /// No carrier detected.
        NO_CARRIER = 7,
        /// Busy signal.
        BUSY = 8,
        /// No dial tone.
        NO_DIAL_TONE = 9,
        /// Call not established within the time allotted by the LAC.
        TIMEOUT = 10,
        /// No appropriate framing detected.
        NO_FRAMING = 11,
    }
}

codec::wire_enum! {
    /// General error codes of the Result Code AVP (RFC 2661 §4.4.2).
    pub struct ErrorCode(u16) {
        /// No general error.
        NO_GENERAL_ERROR = 0,
        /// No control connection exists yet for this LAC-LNS pair.
        NO_CONTROL_CONNECTION = 1,
        /// Length is wrong.
        BAD_LENGTH = 2,
        /// A field value was out of range or a reserved field was non-zero.
        BAD_VALUE = 3,
        /// Insufficient resources to handle this operation now.
        INSUFFICIENT_RESOURCES = 4,
        /// The Session ID is invalid in this context.
        INVALID_SESSION_ID = 5,
        /// A generic vendor-specific error occurred in the LAC.
        VENDOR_SPECIFIC = 6,
        /// Try another LNS.
        TRY_ANOTHER = 7,
        /// Shut down because of an unknown AVP with the M bit set.
        UNKNOWN_MANDATORY_AVP = 8,
    }
}

codec::wire_enum! {
    /// Proxy Authen Type values (RFC 2661 §4.4.5).
    pub struct ProxyAuthenType(u16) {
        /// Textual username/password exchange.
        TEXTUAL = 1,
        /// PPP CHAP.
        PPP_CHAP = 2,
        /// PPP PAP.
        PPP_PAP = 3,
        /// No authentication.
        NO_AUTHENTICATION = 4,
        /// Microsoft CHAP version 1.
        MS_CHAP_V1 = 5,
    }
}

/// The Protocol Version AVP (RFC 2661 §4.4.3): version 1, revision 0 for RFC 2661.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolVersion {
    /// Ver (1).
    pub version: u8,
    /// Rev (0).
    pub revision: u8,
}

impl ProtocolVersion {
    /// Version 1, revision 0: the only one RFC 2661 defines.
    pub const V1_0: Self = Self {
        version: 1,
        revision: 0,
    };
}

/// Framing Capabilities (RFC 2661 §4.4.3): a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingCapabilities(pub u32);

impl FramingCapabilities {
    /// S: synchronous framing.
    pub const SYNCHRONOUS: u32 = 0x1;
    /// A: asynchronous framing.
    pub const ASYNCHRONOUS: u32 = 0x2;
}

/// Bearer Capabilities (RFC 2661 §4.4.3): a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BearerCapabilities(pub u32);

impl BearerCapabilities {
    /// D: digital access.
    pub const DIGITAL: u32 = 0x1;
    /// A: analog access.
    pub const ANALOG: u32 = 0x2;
}

/// Framing Type of a call (RFC 2661 §4.4.4): the same bits as [`FramingCapabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingType(pub u32);

/// Bearer Type of a call (RFC 2661 §4.4.4): the same bits as [`BearerCapabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BearerType(pub u32);

/// The Result Code AVP of StopCCN and CDN (RFC 2661 §4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultCode<'a> {
    /// The result code: a [`StopCcnResult`] in StopCCN, a [`CdnResult`] in CDN.
    pub result: u16,
    /// The optional error code and error message.
    pub error: Option<ResultError<'a>>,
}

/// The optional tail of a Result Code AVP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultError<'a> {
    /// The general error code.
    pub code: ErrorCode,
    /// A human-readable message (possibly empty); never interpreted.
    pub message: &'a [u8],
}

/// The Q.931 Cause Code AVP of CDN (RFC 2661 §4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q931Cause<'a> {
    /// The Q.931 cause code.
    pub cause: u16,
    /// The Q.931 message code.
    pub message: u8,
    /// An optional advisory message.
    pub advisory: &'a [u8],
}

/// The Proxy Authen ID AVP (RFC 2661 §4.4.5): the PPP identifier of the proxied exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyAuthenId(pub u8);

/// The Call Errors AVP of WEN (RFC 2661 §4.4.6): counters since the call started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallErrors {
    /// CRC errors.
    pub crc_errors: u32,
    /// Framing errors.
    pub framing_errors: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeout_errors: u32,
    /// Alignment errors.
    pub alignment_errors: u32,
}

/// The ACCM AVP of SLI (RFC 2661 §4.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accm {
    /// The send ACCM.
    pub send: u32,
    /// The receive ACCM.
    pub receive: u32,
}

/// How one attribute value is read from and written to its AVP value field.
trait Value<'a>: Sized {
    /// `None` when the length or form is wrong.
    fn decode(value: &'a [u8]) -> Option<Self>;
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace>;
}

impl Value<'_> for () {
    fn decode(value: &[u8]) -> Option<Self> {
        value.is_empty().then_some(())
    }
    fn encode(&self, _: &mut Writer<'_>) -> Result<(), NoSpace> {
        Ok(())
    }
}

impl Value<'_> for u16 {
    fn decode(value: &[u8]) -> Option<Self> {
        <[u8; 2]>::try_from(value).ok().map(Self::from_be_bytes)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u16(*self)
    }
}

impl Value<'_> for u32 {
    fn decode(value: &[u8]) -> Option<Self> {
        <[u8; 4]>::try_from(value).ok().map(Self::from_be_bytes)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u32(*self)
    }
}

impl<const N: usize> Value<'_> for [u8; N] {
    fn decode(value: &[u8]) -> Option<Self> {
        Self::try_from(value).ok()
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_slice(self)
    }
}

impl<'a> Value<'a> for &'a [u8] {
    fn decode(value: &'a [u8]) -> Option<Self> {
        Some(value)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_slice(self)
    }
}

/// Implements [`Value`] for a newtype over `u16` or `u32`.
macro_rules! newtype_value {
    ($($ty:ty: $repr:ty),* $(,)?) => {$(
        impl Value<'_> for $ty {
            fn decode(value: &[u8]) -> Option<Self> {
                <$repr as Value>::decode(value).map(Self)
            }
            fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
                Value::encode(&self.0, w)
            }
        }
    )*};
}

newtype_value! {
    TunnelId: u16,
    SessionId: u16,
    ProxyAuthenType: u16,
    FramingCapabilities: u32,
    BearerCapabilities: u32,
    FramingType: u32,
    BearerType: u32,
}

impl Value<'_> for ProtocolVersion {
    fn decode(value: &[u8]) -> Option<Self> {
        let &[version, revision] = value else {
            return None;
        };
        Some(Self { version, revision })
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_slice(&[self.version, self.revision])
    }
}

impl Value<'_> for ProxyAuthenId {
    fn decode(value: &[u8]) -> Option<Self> {
        // The first octet is reserved and ignored on receipt.
        let &[_, id] = value else {
            return None;
        };
        Some(Self(id))
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_slice(&[0, self.0])
    }
}

impl<'a> Value<'a> for ResultCode<'a> {
    fn decode(value: &'a [u8]) -> Option<Self> {
        let mut r = codec::Reader::new(value);
        let result = r.u16().ok()?;
        let error = if r.is_empty() {
            None
        } else {
            Some(ResultError {
                code: ErrorCode(r.u16().ok()?),
                message: r.rest(),
            })
        };
        Some(Self { result, error })
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u16(self.result)?;
        if let Some(error) = self.error {
            w.put_u16(error.code.0)?;
            w.put_slice(error.message)?;
        }
        Ok(())
    }
}

impl<'a> Value<'a> for Q931Cause<'a> {
    fn decode(value: &'a [u8]) -> Option<Self> {
        let mut r = codec::Reader::new(value);
        Some(Self {
            cause: r.u16().ok()?,
            message: r.u8().ok()?,
            advisory: r.rest(),
        })
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u16(self.cause)?;
        w.put_u8(self.message)?;
        w.put_slice(self.advisory)
    }
}

impl Value<'_> for CallErrors {
    fn decode(value: &[u8]) -> Option<Self> {
        let mut r = codec::Reader::new(value);
        r.skip(2).ok()?; // reserved
        let errors = Self {
            crc_errors: r.u32().ok()?,
            framing_errors: r.u32().ok()?,
            hardware_overruns: r.u32().ok()?,
            buffer_overruns: r.u32().ok()?,
            timeout_errors: r.u32().ok()?,
            alignment_errors: r.u32().ok()?,
        };
        r.expect_end().ok()?;
        Some(errors)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u16(0)?;
        for v in [
            self.crc_errors,
            self.framing_errors,
            self.hardware_overruns,
            self.buffer_overruns,
            self.timeout_errors,
            self.alignment_errors,
        ] {
            w.put_u32(v)?;
        }
        Ok(())
    }
}

impl Value<'_> for Accm {
    fn decode(value: &[u8]) -> Option<Self> {
        let mut r = codec::Reader::new(value);
        r.skip(2).ok()?; // reserved
        let accm = Self {
            send: r.u32().ok()?,
            receive: r.u32().ok()?,
        };
        r.expect_end().ok()?;
        Some(accm)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
        w.put_u16(0)?;
        w.put_u32(self.send)?;
        w.put_u32(self.receive)
    }
}

/// The rules every message applies to an AVP after its Message Type AVP, before looking at
/// the attribute. `Ok(None)` means "skip this AVP".
fn screen<'a>(avp: Avp<'a>) -> Result<Option<Avp<'a>>, MessageError> {
    // RFC 2661 §4.1: a vendor-specific AVP we do not know, or one with a reserved bit set, is
    // unrecognised.
    if !avp.is_ietf() {
        return unrecognised(&avp).map(|()| None);
    }
    match avp.attribute {
        // RFC 2661 §4.4.1: exactly one Message Type, the first AVP.
        AttributeType::MESSAGE_TYPE => Err(MessageError::Duplicate(AttributeType::MESSAGE_TYPE)),
        // RFC 2661 §4.3: Random Vectors may appear anywhere, any number of times; they only
        // key the hidden AVPs that follow, which are revealed before parsing.
        AttributeType::RANDOM_VECTOR => Ok(None),
        _ => Ok(Some(avp)),
    }
}

/// RFC 2661 §4.1: an unrecognised AVP with M set fails the message (and the tunnel or session
/// it belongs to); without M it is ignored.
fn unrecognised(avp: &Avp<'_>) -> Result<(), MessageError> {
    if avp.mandatory {
        Err(MessageError::UnknownMandatory {
            vendor: avp.vendor,
            attribute: avp.attribute,
        })
    } else {
        Ok(())
    }
}

/// Stores the value of a single-valued attribute defined for this message.
fn set<'a, V: Value<'a>>(slot: &mut Option<V>, avp: &Avp<'a>) -> Result<(), MessageError> {
    if avp.hidden {
        return Err(MessageError::Hidden(avp.attribute));
    }
    if slot.is_some() {
        return Err(MessageError::Duplicate(avp.attribute));
    }
    // RFC 2661 §4.4.3: Host Name and Challenge carry at least one octet.
    let needs_content = matches!(
        avp.attribute,
        AttributeType::HOST_NAME | AttributeType::CHALLENGE
    );
    if needs_content && avp.value.is_empty() {
        return Err(MessageError::BadValue(avp.attribute));
    }
    *slot = Some(V::decode(avp.value).ok_or(MessageError::BadValue(avp.attribute))?);
    Ok(())
}

fn put_value<'a, V: Value<'a>>(
    w: &mut Writer<'_>,
    attribute: AttributeType,
    flags: Flags,
    value: &V,
) -> Result<(), NoSpace> {
    avp::put_with(w, attribute, flags, |w| value.encode(w))
}

/// The type of a message field: `req` fields are plain, `opt` fields `Option`s, `flag` fields
/// (empty-valued AVPs such as Sequencing Required) `bool`s.
macro_rules! field_type {
    (req $ty:ty) => { $ty };
    (opt $ty:ty) => { Option<$ty> };
    (flag $ty:ty) => { bool };
}

/// Turns the parsed slot of a field into the field, or reports a missing mandatory AVP.
macro_rules! finish_field {
    (req $slot:ident, $attr:ident) => {
        // RFC 2661 §6: the AVPs listed as present in each message are required.
        $slot.ok_or(MessageError::Missing(AttributeType::$attr))?
    };
    (opt $slot:ident, $attr:ident) => {
        $slot
    };
    (flag $slot:ident, $attr:ident) => {
        $slot.is_some()
    };
}

/// Writes one field as an AVP if present.
macro_rules! emit_field {
    (req $w:ident, $value:expr, $attr:ident, $flags:ident) => {
        put_value($w, AttributeType::$attr, Flags::$flags, &$value)?
    };
    (opt $w:ident, $value:expr, $attr:ident, $flags:ident) => {
        if let Some(value) = &$value {
            put_value($w, AttributeType::$attr, Flags::$flags, value)?
        }
    };
    (flag $w:ident, $value:expr, $attr:ident, $flags:ident) => {
        if $value {
            put_value($w, AttributeType::$attr, Flags::$flags, &())?
        }
    };
}

/// Declares every message: its struct, parser and emitter, and the [`ControlMessage`] enum.
macro_rules! messages {
    ($(
        $(#[$doc:meta])*
        $name:ident $(<$lt:lifetime>)? = $mt:ident {
            $( $(#[$fdoc:meta])* $kind:ident $field:ident : $ty:ty = $attr:ident, $flags:ident; )*
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct $name $(<$lt>)? {
                $( $(#[$fdoc])* pub $field: field_type!($kind $ty), )*
            }

            impl<'a> $name $(<$lt>)? {
                /// The value of this message's Message Type AVP.
                pub const MESSAGE_TYPE: MessageType = MessageType::$mt;

                /// Parses the AVPs that follow the Message Type AVP.
                fn parse_rest(avps: Avps<'a>) -> Result<Self, MessageError> {
                    $( let mut $field: Option<$ty> = None; )*
                    for avp in avps {
                        let Some(avp) = screen(avp?)? else { continue };
                        match avp.attribute {
                            $( AttributeType::$attr => set(&mut $field, &avp)?, )*
                            _ => unrecognised(&avp)?,
                        }
                    }
                    Ok(Self { $( $field: finish_field!($kind $field, $attr), )* })
                }

                /// Writes the message body: the Message Type AVP, then one AVP per present field.
                ///
                /// # Errors
                /// [`NoSpace`] when the body does not fit in `w` or a value exceeds one AVP.
                pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
                    avp::put(w, AttributeType::MESSAGE_TYPE, Flags::MANDATORY, &MessageType::$mt.to_be_bytes())?;
                    $( emit_field!($kind w, self.$field, $attr, $flags); )*
                    Ok(())
                }
            }

            impl<'a> From<$name $(<$lt>)?> for ControlMessage<'a> {
                fn from(message: $name $(<$lt>)?) -> Self {
                    Self::$name(message)
                }
            }
        )*

        /// A control message body, typed by its Message Type AVP, borrowing from the datagram.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ControlMessage<'a> {
            $( $(#[$doc])* $name($name $(<$lt>)?), )*
        }

        impl<'a> ControlMessage<'a> {
            /// Parses a control message body (the AVPs after the header) in one pass.
            ///
            /// Hidden AVPs must have been revealed first ([`super::hidden::reveal_body`]).
            ///
            /// # Errors
            /// See [`MessageError`]; the table in the module docs says which AVP gives which.
            pub fn parse(mut avps: Avps<'a>) -> Result<Self, MessageError> {
                let first = avps
                    .next()
                    .ok_or(MessageError::Missing(AttributeType::MESSAGE_TYPE))??;
                // RFC 2661 §4.4.1: Message Type is the first AVP of every control message.
                if !first.is_ietf() || first.attribute != AttributeType::MESSAGE_TYPE {
                    return Err(MessageError::MessageTypeNotFirst);
                }
                // RFC 2661 §4.3: Message Type cannot be hidden (it precedes any Random Vector).
                if first.hidden {
                    return Err(MessageError::Hidden(AttributeType::MESSAGE_TYPE));
                }
                let message_type = u16::decode(first.value)
                    .map(MessageType)
                    .ok_or(MessageError::BadValue(AttributeType::MESSAGE_TYPE))?;
                match message_type {
                    $( MessageType::$mt => $name::parse_rest(avps).map(Self::$name), )*
                    message_type => Err(MessageError::UnknownMessageType {
                        message_type,
                        mandatory: first.mandatory,
                    }),
                }
            }

            /// The message type.
            #[must_use]
            pub const fn message_type(&self) -> MessageType {
                match self {
                    $( Self::$name(_) => MessageType::$mt, )*
                }
            }

            /// Writes the message body (the AVPs, Message Type first) into `w`.
            ///
            /// # Errors
            /// [`NoSpace`] when the body does not fit in `w`.
            pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), NoSpace> {
                match self {
                    $( Self::$name(message) => message.emit(w), )*
                }
            }
        }
    };
}

messages! {
    /// Start-Control-Connection-Request (RFC 2661 §6.1).
    Sccrq<'a> = SCCRQ {
        /// The sender's protocol version.
        req protocol_version: ProtocolVersion = PROTOCOL_VERSION, MANDATORY;
        /// The framing the sender supports.
        req framing_capabilities: FramingCapabilities = FRAMING_CAPABILITIES, MANDATORY;
        /// The bearers the sender supports.
        opt bearer_capabilities: BearerCapabilities = BEARER_CAPABILITIES, MANDATORY;
        /// Tie breaker for simultaneous SCCRQs between the same pair (§4.4.3).
        opt tie_breaker: [u8; 8] = TIE_BREAKER, NONE;
        /// The sender's firmware revision.
        opt firmware_revision: u16 = FIRMWARE_REVISION, NONE;
        /// The sender's name (at least one octet).
        req host_name: &'a [u8] = HOST_NAME, MANDATORY;
        /// The sender's vendor.
        opt vendor_name: &'a [u8] = VENDOR_NAME, NONE;
        /// The tunnel ID the sender assigned; the receiver puts it in the header of its messages.
        req assigned_tunnel_id: TunnelId = ASSIGNED_TUNNEL_ID, MANDATORY;
        /// The sender's receive window (4 when absent, §5.8).
        opt receive_window_size: u16 = RECEIVE_WINDOW_SIZE, MANDATORY;
        /// A tunnel authentication challenge (§5.1.1).
        opt challenge: &'a [u8] = CHALLENGE, MANDATORY;
    }

    /// Start-Control-Connection-Reply (RFC 2661 §6.2).
    Sccrp<'a> = SCCRP {
        /// The sender's protocol version.
        req protocol_version: ProtocolVersion = PROTOCOL_VERSION, MANDATORY;
        /// The framing the sender supports.
        req framing_capabilities: FramingCapabilities = FRAMING_CAPABILITIES, MANDATORY;
        /// The bearers the sender supports.
        opt bearer_capabilities: BearerCapabilities = BEARER_CAPABILITIES, MANDATORY;
        /// The sender's firmware revision.
        opt firmware_revision: u16 = FIRMWARE_REVISION, NONE;
        /// The sender's name (at least one octet).
        req host_name: &'a [u8] = HOST_NAME, MANDATORY;
        /// The sender's vendor.
        opt vendor_name: &'a [u8] = VENDOR_NAME, NONE;
        /// The tunnel ID the sender assigned.
        req assigned_tunnel_id: TunnelId = ASSIGNED_TUNNEL_ID, MANDATORY;
        /// The sender's receive window (4 when absent, §5.8).
        opt receive_window_size: u16 = RECEIVE_WINDOW_SIZE, MANDATORY;
        /// A tunnel authentication challenge (§5.1.1).
        opt challenge: &'a [u8] = CHALLENGE, MANDATORY;
        /// The answer to the SCCRQ's challenge (§4.4.3).
        opt challenge_response: [u8; 16] = CHALLENGE_RESPONSE, MANDATORY;
    }

    /// Start-Control-Connection-Connected (RFC 2661 §6.3).
    Scccn = SCCCN {
        /// The answer to the SCCRP's challenge (§4.4.3).
        opt challenge_response: [u8; 16] = CHALLENGE_RESPONSE, MANDATORY;
    }

    /// Stop-Control-Connection-Notification (RFC 2661 §6.4).
    StopCcn<'a> = STOP_CCN {
        /// The sender's tunnel ID.
        req assigned_tunnel_id: TunnelId = ASSIGNED_TUNNEL_ID, MANDATORY;
        /// Why the tunnel is closed ([`StopCcnResult`]).
        req result_code: ResultCode<'a> = RESULT_CODE, MANDATORY;
    }

    /// Hello, the keepalive (RFC 2661 §6.5).
    Hello = HELLO {}

    /// Outgoing-Call-Request (RFC 2661 §6.6).
    Ocrq<'a> = OCRQ {
        /// The session ID the sender assigned.
        req assigned_session_id: SessionId = ASSIGNED_SESSION_ID, MANDATORY;
        /// Identifies the call across LAC and LNS.
        req call_serial_number: u32 = CALL_SERIAL_NUMBER, MANDATORY;
        /// Lowest acceptable line speed, bits per second.
        req minimum_bps: u32 = MINIMUM_BPS, MANDATORY;
        /// Highest acceptable line speed, bits per second.
        req maximum_bps: u32 = MAXIMUM_BPS, MANDATORY;
        /// The bearer to use.
        req bearer_type: BearerType = BEARER_TYPE, MANDATORY;
        /// The framing to use.
        req framing_type: FramingType = FRAMING_TYPE, MANDATORY;
        /// The number to dial.
        req called_number: &'a [u8] = CALLED_NUMBER, MANDATORY;
        /// Additional dialing information.
        opt sub_address: &'a [u8] = SUB_ADDRESS, MANDATORY;
    }

    /// Outgoing-Call-Reply (RFC 2661 §6.7).
    Ocrp = OCRP {
        /// The session ID the sender assigned.
        req assigned_session_id: SessionId = ASSIGNED_SESSION_ID, MANDATORY;
        /// The LAC's physical channel.
        opt physical_channel_id: u32 = PHYSICAL_CHANNEL_ID, NONE;
    }

    /// Outgoing-Call-Connected (RFC 2661 §6.8).
    Occn = OCCN {
        /// Speed from LAC to peer, bits per second.
        req tx_connect_speed: u32 = TX_CONNECT_SPEED, MANDATORY;
        /// The framing in use.
        req framing_type: FramingType = FRAMING_TYPE, MANDATORY;
        /// Speed from peer to LAC, bits per second.
        opt rx_connect_speed: u32 = RX_CONNECT_SPEED, NONE;
        /// Data messages of this session must carry sequence numbers.
        flag sequencing_required: () = SEQUENCING_REQUIRED, MANDATORY;
    }

    /// Incoming-Call-Request (RFC 2661 §6.9).
    Icrq<'a> = ICRQ {
        /// The session ID the sender assigned.
        req assigned_session_id: SessionId = ASSIGNED_SESSION_ID, MANDATORY;
        /// Identifies the call across LAC and LNS.
        req call_serial_number: u32 = CALL_SERIAL_NUMBER, MANDATORY;
        /// The bearer of the call.
        opt bearer_type: BearerType = BEARER_TYPE, MANDATORY;
        /// The LAC's physical channel.
        opt physical_channel_id: u32 = PHYSICAL_CHANNEL_ID, NONE;
        /// The caller's number.
        opt calling_number: &'a [u8] = CALLING_NUMBER, MANDATORY;
        /// The number called.
        opt called_number: &'a [u8] = CALLED_NUMBER, MANDATORY;
        /// Additional dialing information.
        opt sub_address: &'a [u8] = SUB_ADDRESS, MANDATORY;
    }

    /// Incoming-Call-Reply (RFC 2661 §6.10).
    Icrp = ICRP {
        /// The session ID the sender assigned.
        req assigned_session_id: SessionId = ASSIGNED_SESSION_ID, MANDATORY;
    }

    /// Incoming-Call-Connected (RFC 2661 §6.11).
    Iccn<'a> = ICCN {
        /// Speed from LAC to peer, bits per second.
        req tx_connect_speed: u32 = TX_CONNECT_SPEED, MANDATORY;
        /// The framing in use.
        req framing_type: FramingType = FRAMING_TYPE, MANDATORY;
        /// Proxy LCP: the first CONFREQ the LAC received.
        opt initial_received_lcp_confreq: &'a [u8] = INITIAL_RECEIVED_LCP_CONFREQ, NONE;
        /// Proxy LCP: the last CONFREQ the LAC sent.
        opt last_sent_lcp_confreq: &'a [u8] = LAST_SENT_LCP_CONFREQ, NONE;
        /// Proxy LCP: the last CONFREQ the LAC received.
        opt last_received_lcp_confreq: &'a [u8] = LAST_RECEIVED_LCP_CONFREQ, NONE;
        /// Proxy authentication: the method the LAC used.
        opt proxy_authen_type: ProxyAuthenType = PROXY_AUTHEN_TYPE, NONE;
        /// Proxy authentication: the name the peer gave.
        opt proxy_authen_name: &'a [u8] = PROXY_AUTHEN_NAME, NONE;
        /// Proxy authentication: the challenge the LAC sent.
        opt proxy_authen_challenge: &'a [u8] = PROXY_AUTHEN_CHALLENGE, NONE;
        /// Proxy authentication: the PPP identifier used.
        opt proxy_authen_id: ProxyAuthenId = PROXY_AUTHEN_ID, NONE;
        /// Proxy authentication: the peer's response (usually hidden).
        opt proxy_authen_response: &'a [u8] = PROXY_AUTHEN_RESPONSE, NONE;
        /// A group the session belongs to.
        opt private_group_id: &'a [u8] = PRIVATE_GROUP_ID, NONE;
        /// Speed from peer to LAC, bits per second.
        opt rx_connect_speed: u32 = RX_CONNECT_SPEED, NONE;
        /// Data messages of this session must carry sequence numbers.
        flag sequencing_required: () = SEQUENCING_REQUIRED, MANDATORY;
    }

    /// Call-Disconnect-Notify (RFC 2661 §6.12).
    Cdn<'a> = CDN {
        /// Why the call ended ([`CdnResult`]).
        req result_code: ResultCode<'a> = RESULT_CODE, MANDATORY;
        /// The sender's session ID.
        req assigned_session_id: SessionId = ASSIGNED_SESSION_ID, MANDATORY;
        /// The Q.931 cause, for calls over ISDN.
        opt q931_cause_code: Q931Cause<'a> = Q931_CAUSE_CODE, MANDATORY;
    }

    /// WAN-Error-Notify (RFC 2661 §6.13).
    Wen = WEN {
        /// Error counters.
        req call_errors: CallErrors = CALL_ERRORS, MANDATORY;
    }

    /// Set-Link-Info (RFC 2661 §6.14).
    Sli = SLI {
        /// The ACCM the peer negotiated.
        req accm: Accm = ACCM, MANDATORY;
    }
}

impl ControlMessage<'_> {
    /// Whether the message concerns the tunnel or one session.
    #[must_use]
    pub const fn scope(&self) -> Scope {
        match self {
            Self::Sccrq(_)
            | Self::Sccrp(_)
            | Self::Scccn(_)
            | Self::StopCcn(_)
            | Self::Hello(_) => Scope::Tunnel,
            Self::Ocrq(_)
            | Self::Ocrp(_)
            | Self::Occn(_)
            | Self::Icrq(_)
            | Self::Icrp(_)
            | Self::Iccn(_)
            | Self::Cdn(_)
            | Self::Wen(_)
            | Self::Sli(_) => Scope::Session,
        }
    }

    /// The message type of a body without parsing the rest, when its first AVP is a
    /// well-formed Message Type AVP. Lets the caller pick the teardown scope of a message that
    /// failed to parse.
    #[must_use]
    pub fn peek_type(body: &[u8]) -> Option<MessageType> {
        let first = Avps::new(body).next()?.ok()?;
        if !first.is_ietf() || first.attribute != AttributeType::MESSAGE_TYPE {
            return None;
        }
        u16::decode(first.value).map(MessageType)
    }
}

#[cfg(test)]
mod tests;
