//! Attribute-value pairs (RFC 2661 §4.1) and the message type and attribute type registries
//! (RFC 2661 §3.2, §4.4).
//!
//! ```text
//!  0               1               2               3
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! |         Attribute Type        |        Attribute Value …      |
//! ```
//!
//! Length counts the six header bytes, so it is 6..=1023. M asks the receiver to fail the
//! tunnel or session if it does not recognise the attribute; H says the value is hidden
//! ([`super::hidden`]). The four reserved bits must be zero; an AVP with one set is treated as
//! unrecognised (RFC 2661 §4.1).

use super::Error;

codec::wire_enum! {
    /// Control message types, the value of the Message Type AVP (RFC 2661 §3.2).
    pub struct MessageType(u16) {
        /// Start-Control-Connection-Request.
        SCCRQ = 1,
        /// Start-Control-Connection-Reply.
        SCCRP = 2,
        /// Start-Control-Connection-Connected.
        SCCCN = 3,
        /// Stop-Control-Connection-Notification.
        STOP_CCN = 4,
        /// Hello (keepalive).
        HELLO = 6,
        /// Outgoing-Call-Request.
        OCRQ = 7,
        /// Outgoing-Call-Reply.
        OCRP = 8,
        /// Outgoing-Call-Connected.
        OCCN = 9,
        /// Incoming-Call-Request.
        ICRQ = 10,
        /// Incoming-Call-Reply.
        ICRP = 11,
        /// Incoming-Call-Connected.
        ICCN = 12,
        /// Call-Disconnect-Notify.
        CDN = 14,
        /// WAN-Error-Notify.
        WEN = 15,
        /// Set-Link-Info.
        SLI = 16,
    }
}

/// What a control message is about, and so what a fatal error in it tears down
/// (RFC 2661 §4.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Control connection management: SCCRQ, SCCRP, SCCCN, StopCCN, HELLO.
    Tunnel,
    /// Call management and status: OCRQ … SLI.
    Session,
}

impl MessageType {
    /// Whether the message manages the tunnel or one session; `None` for unknown types.
    #[must_use]
    pub const fn scope(self) -> Option<Scope> {
        match self {
            Self::SCCRQ | Self::SCCRP | Self::SCCCN | Self::STOP_CCN | Self::HELLO => {
                Some(Scope::Tunnel)
            }
            Self::OCRQ
            | Self::OCRP
            | Self::OCCN
            | Self::ICRQ
            | Self::ICRP
            | Self::ICCN
            | Self::CDN
            | Self::WEN
            | Self::SLI => Some(Scope::Session),
            _ => None,
        }
    }
}

codec::wire_enum! {
    /// IETF attribute types (vendor 0) defined by RFC 2661 §4.4. 20 is reserved.
    pub struct AttributeType(u16) {
        /// Message Type (§4.4.1).
        MESSAGE_TYPE = 0,
        /// Result Code (§4.4.2).
        RESULT_CODE = 1,
        /// Protocol Version (§4.4.3).
        PROTOCOL_VERSION = 2,
        /// Framing Capabilities (§4.4.3).
        FRAMING_CAPABILITIES = 3,
        /// Bearer Capabilities (§4.4.3).
        BEARER_CAPABILITIES = 4,
        /// Tie Breaker (§4.4.3).
        TIE_BREAKER = 5,
        /// Firmware Revision (§4.4.3).
        FIRMWARE_REVISION = 6,
        /// Host Name (§4.4.3).
        HOST_NAME = 7,
        /// Vendor Name (§4.4.3).
        VENDOR_NAME = 8,
        /// Assigned Tunnel ID (§4.4.3).
        ASSIGNED_TUNNEL_ID = 9,
        /// Receive Window Size (§4.4.3).
        RECEIVE_WINDOW_SIZE = 10,
        /// Challenge (§4.4.3).
        CHALLENGE = 11,
        /// Q.931 Cause Code (§4.4.2).
        Q931_CAUSE_CODE = 12,
        /// Challenge Response (§4.4.3).
        CHALLENGE_RESPONSE = 13,
        /// Assigned Session ID (§4.4.4).
        ASSIGNED_SESSION_ID = 14,
        /// Call Serial Number (§4.4.4).
        CALL_SERIAL_NUMBER = 15,
        /// Minimum BPS (§4.4.4).
        MINIMUM_BPS = 16,
        /// Maximum BPS (§4.4.4).
        MAXIMUM_BPS = 17,
        /// Bearer Type (§4.4.4).
        BEARER_TYPE = 18,
        /// Framing Type (§4.4.4).
        FRAMING_TYPE = 19,
        /// Called Number (§4.4.4).
        CALLED_NUMBER = 21,
        /// Calling Number (§4.4.4).
        CALLING_NUMBER = 22,
        /// Sub-Address (§4.4.4).
        SUB_ADDRESS = 23,
        /// (Tx) Connect Speed (§4.4.4).
        TX_CONNECT_SPEED = 24,
        /// Physical Channel ID (§4.4.4).
        PHYSICAL_CHANNEL_ID = 25,
        /// Initial Received LCP CONFREQ (§4.4.5).
        INITIAL_RECEIVED_LCP_CONFREQ = 26,
        /// Last Sent LCP CONFREQ (§4.4.5).
        LAST_SENT_LCP_CONFREQ = 27,
        /// Last Received LCP CONFREQ (§4.4.5).
        LAST_RECEIVED_LCP_CONFREQ = 28,
        /// Proxy Authen Type (§4.4.5).
        PROXY_AUTHEN_TYPE = 29,
        /// Proxy Authen Name (§4.4.5).
        PROXY_AUTHEN_NAME = 30,
        /// Proxy Authen Challenge (§4.4.5).
        PROXY_AUTHEN_CHALLENGE = 31,
        /// Proxy Authen ID (§4.4.5).
        PROXY_AUTHEN_ID = 32,
        /// Proxy Authen Response (§4.4.5).
        PROXY_AUTHEN_RESPONSE = 33,
        /// Call Errors (§4.4.6).
        CALL_ERRORS = 34,
        /// ACCM (§4.4.6).
        ACCM = 35,
        /// Random Vector (§4.4.3).
        RANDOM_VECTOR = 36,
        /// Private Group ID (§4.4.4).
        PRIVATE_GROUP_ID = 37,
        /// Rx Connect Speed (§4.4.4).
        RX_CONNECT_SPEED = 38,
        /// Sequencing Required (§4.4.4).
        SEQUENCING_REQUIRED = 39,
    }
}

/// The Vendor ID of the attributes RFC 2661 defines.
pub const VENDOR_IETF: u16 = 0;

/// Length of the Flags/Length, Vendor ID and Attribute Type fields.
pub const AVP_HEADER_LEN: usize = 6;

/// The largest AVP: Length is a 10-bit field.
pub const MAX_AVP_LEN: usize = 0x03ff;

/// The largest attribute value that fits one AVP.
pub const MAX_VALUE_LEN: usize = MAX_AVP_LEN - AVP_HEADER_LEN;

const MANDATORY_BIT: u16 = 0x8000;
const HIDDEN_BIT: u16 = 0x4000;
const RESERVED_BITS: u16 = 0x3c00;
const LENGTH_BITS: u16 = 0x03ff;

/// The M and H bits of an AVP being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    /// Neither bit: the receiver may ignore the AVP if it does not know it.
    pub const NONE: Self = Self(0);
    /// M: a receiver that does not know the AVP must fail the tunnel or session.
    pub const MANDATORY: Self = Self(MANDATORY_BIT);
    /// H: the value is hidden (written by [`super::hidden::put_hidden`] only).
    pub const HIDDEN: Self = Self(HIDDEN_BIT);

    /// Both sets of bits.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether M is set.
    #[must_use]
    pub const fn is_mandatory(self) -> bool {
        self.0 & MANDATORY_BIT != 0
    }

    /// The flags as they are written in the top bits of the first header word.
    #[must_use]
    pub const fn bits(self) -> u16 {
        self.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// One attribute-value pair (RFC 2661 §4.1), borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avp<'a> {
    /// M bit.
    pub mandatory: bool,
    /// H bit: `value` is hidden and must be revealed before use.
    pub hidden: bool,
    /// The four reserved bits (must be zero; non-zero makes the AVP unrecognised).
    pub reserved: u8,
    /// 0 for the attributes of RFC 2661, otherwise an SMI enterprise code.
    pub vendor: u16,
    /// The attribute type, meaningful within `vendor`.
    pub attribute: AttributeType,
    /// The attribute value, exactly `Length - 6` bytes.
    pub value: &'a [u8],
}

impl Avp<'_> {
    /// Whether this is an RFC 2661 attribute with clean reserved bits: the only AVPs that can
    /// be recognised (RFC 2661 §4.1).
    #[must_use]
    pub fn is_ietf(&self) -> bool {
        self.vendor == VENDOR_IETF && self.reserved == 0
    }
}

/// The AVPs of a control message body. Yields at most one error, then ends.
#[derive(Debug, Clone)]
pub struct Avps<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Avps<'a> {
    /// Iterates over the AVPs of a control message body (the payload after the header).
    #[must_use]
    pub const fn new(body: &'a [u8]) -> Self {
        Self {
            rest: body,
            failed: false,
        }
    }

    fn read_one(&mut self) -> Result<Avp<'a>, Error> {
        let &[f0, f1, v0, v1, a0, a1, ..] = self.rest else {
            return Err(Error::Truncated);
        };
        let bits = u16::from_be_bytes([f0, f1]);
        let len = usize::from(bits & LENGTH_BITS);
        // RFC 2661 §4.1: Length covers the six header octets.
        if len < AVP_HEADER_LEN {
            return Err(Error::AvpLength(len));
        }
        let (avp, rest) = self.rest.split_at_checked(len).ok_or(Error::Truncated)?;
        let value = avp.get(AVP_HEADER_LEN..).ok_or(Error::Truncated)?;
        self.rest = rest;
        let [_, reserved] = ((bits & RESERVED_BITS) >> 10).to_be_bytes();
        Ok(Avp {
            mandatory: bits & MANDATORY_BIT != 0,
            hidden: bits & HIDDEN_BIT != 0,
            reserved,
            vendor: u16::from_be_bytes([v0, v1]),
            attribute: AttributeType::from(u16::from_be_bytes([a0, a1])),
            value,
        })
    }
}

impl<'a> Iterator for Avps<'a> {
    type Item = Result<Avp<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

impl core::iter::FusedIterator for Avps<'_> {}

/// Writes one IETF AVP with the given flags and value.
///
/// # Errors
/// [`codec::NoSpace`] when the AVP does not fit in `w` or the value exceeds
/// [`MAX_VALUE_LEN`]; nothing is written then.
pub fn put(
    w: &mut codec::Writer<'_>,
    attribute: AttributeType,
    flags: Flags,
    value: &[u8],
) -> Result<(), codec::NoSpace> {
    put_with(w, attribute, flags, |w| w.put_slice(value))
}

/// Writes one IETF AVP whose value is produced by `value` (for composite values), then
/// back-patches Length.
///
/// # Errors
/// [`codec::NoSpace`] when the AVP does not fit in `w` or its value exceeds
/// [`MAX_VALUE_LEN`]; nothing is written then.
pub fn put_with(
    w: &mut codec::Writer<'_>,
    attribute: AttributeType,
    flags: Flags,
    value: impl FnOnce(&mut codec::Writer<'_>) -> Result<(), codec::NoSpace>,
) -> Result<(), codec::NoSpace> {
    let start = w.len();
    let result = (|| {
        let mark = w.reserve_u16()?;
        w.put_u16(VENDOR_IETF)?;
        w.put_u16(attribute.0)?;
        value(w)?;
        let len = w.len() - start;
        if len > MAX_AVP_LEN {
            return Err(codec::NoSpace);
        }
        let word = flags.bits() | w.patch_len_u16(mark, start)?;
        w.written_mut()
            .get_mut(mark.offset()..mark.offset() + 2)
            .ok_or(codec::NoSpace)?
            .copy_from_slice(&word.to_be_bytes());
        Ok(())
    })();
    if result.is_err() {
        w.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    #[test]
    fn registries_match_rfc_2661_numbers() {
        assert_eq!(MessageType::STOP_CCN.0, 4);
        assert_eq!(MessageType::HELLO.0, 6);
        assert_eq!(MessageType::CDN.0, 14);
        assert_eq!(MessageType::SLI.0, 16);
        assert!(!MessageType(5).is_known() && !MessageType(13).is_known());
        assert_eq!(AttributeType::CALLED_NUMBER.0, 21);
        assert!(!AttributeType(20).is_known(), "20 is reserved");
        assert_eq!(AttributeType::SEQUENCING_REQUIRED.0, 39);
        assert_eq!(format!("{:?}", AttributeType(40)), "AttributeType(0x0028)");
        assert_eq!(MessageType::HELLO.scope(), Some(Scope::Tunnel));
        assert_eq!(MessageType::ICCN.scope(), Some(Scope::Session));
        assert_eq!(MessageType(99).scope(), None);
    }

    #[test]
    fn iterates_the_avps_of_a_captured_icrq() {
        let body =
            hex!("800800000000000a 80080000000ed224 800a0000000f00000001 800a0000001200000000");
        let avps: Vec<_> = Avps::new(&body).collect::<Result<_, _>>().unwrap();
        assert_eq!(avps.len(), 4);
        assert_eq!(avps[0].attribute, AttributeType::MESSAGE_TYPE);
        assert_eq!(avps[0].value, &[0, 10]);
        assert_eq!(avps[1].attribute, AttributeType::ASSIGNED_SESSION_ID);
        assert_eq!(avps[1].value, &hex!("d224"));
        assert!(avps.iter().all(|a| a.mandatory && !a.hidden && a.is_ietf()));
    }

    #[test]
    fn reads_flags_vendor_and_reserved_bits() {
        // H set, one reserved bit set, vendor 311, attribute 0x1234, value ab.
        let body = hex!("4407 0137 1234 ab");
        let avp = Avps::new(&body).next().unwrap().unwrap();
        assert!(!avp.mandatory && avp.hidden);
        assert_eq!(avp.reserved, 1);
        assert_eq!(avp.vendor, 311);
        assert_eq!(avp.attribute, AttributeType(0x1234));
        assert_eq!(avp.value, &[0xab]);
        assert!(!avp.is_ietf());
    }

    #[test]
    fn stops_for_good_after_the_first_error() {
        // A good AVP, one with Length 5, then a good one that must not be reached.
        let body = hex!("8008000000000001 8005000000 8008000000000001");
        let mut it = Avps::new(&body);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(Error::AvpLength(5))));
        assert_eq!(it.next(), None);
        // Length past the end of the body.
        let mut it = Avps::new(&hex!("8009000000000001"));
        assert_eq!(it.next(), Some(Err(Error::Truncated)));
        assert_eq!(it.next(), None);
        // Fewer than six bytes left.
        assert_eq!(
            Avps::new(&hex!("80080000")).next(),
            Some(Err(Error::Truncated))
        );
        assert_eq!(Avps::new(&[]).next(), None);
    }

    #[test]
    fn put_writes_flags_length_vendor_and_type() {
        let mut buf = [0u8; 32];
        let mut w = codec::Writer::new(&mut buf);
        put(
            &mut w,
            AttributeType::ASSIGNED_TUNNEL_ID,
            Flags::MANDATORY,
            &hex!("589c"),
        )
        .unwrap();
        put(&mut w, AttributeType::VENDOR_NAME, Flags::NONE, b"x").unwrap();
        assert_eq!(w.written(), &hex!("80080000 0009 589c 00070000 0008 78"));
        let mut big = [0u8; 2048];
        let mut w = codec::Writer::new(&mut big);
        assert_eq!(
            put(
                &mut w,
                AttributeType::HOST_NAME,
                Flags::MANDATORY,
                &[0; MAX_VALUE_LEN + 1]
            ),
            Err(codec::NoSpace)
        );
        assert!(w.is_empty(), "a failed put leaves nothing behind");
        put(
            &mut w,
            AttributeType::HOST_NAME,
            Flags::MANDATORY,
            &[0; MAX_VALUE_LEN],
        )
        .unwrap();
        assert_eq!(&w.written()[..2], &hex!("83ff"));
    }

    proptest! {
        #[test]
        fn put_then_iterate_round_trips(
            attribute: u16, mandatory: bool, hidden: bool,
            value in proptest::collection::vec(any::<u8>(), 0..MAX_VALUE_LEN),
        ) {
            let mut buf = [0u8; 1100];
            let mut w = codec::Writer::new(&mut buf);
            let mut flags = Flags::NONE;
            if mandatory { flags = flags | Flags::MANDATORY; }
            if hidden { flags = flags | Flags::HIDDEN; }
            put(&mut w, AttributeType(attribute), flags, &value).unwrap();
            let avps: Vec<_> = Avps::new(w.written()).collect();
            prop_assert_eq!(avps, vec![Ok(Avp {
                mandatory, hidden, reserved: 0, vendor: VENDOR_IETF,
                attribute: AttributeType(attribute), value: &value,
            })]);
        }

        #[test]
        fn no_body_makes_the_iterator_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut consumed = 0;
            for avp in Avps::new(&body) {
                let Ok(avp) = avp else { break };
                consumed += AVP_HEADER_LEN + avp.value.len();
            }
            prop_assert!(consumed <= body.len());
        }
    }
}
