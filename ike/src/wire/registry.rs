//! ISAKMP and IKEv1 number registries (RFC 2408 §3, RFC 2407 §4, RFC 2409 Appendix A,
//! RFC 3947, RFC 3706, RFC 4106, RFC 4868, RFC 5903).

codec::wire_enum! {
    /// Exchange types (RFC 2408 §3.1, RFC 2409 §5).
    pub struct ExchangeType(u8) {
        /// Base exchange.
        BASE = 1,
        /// Identity Protection, i.e. IKEv1 Main Mode.
        MAIN_MODE = 2,
        /// Authentication Only.
        AUTH_ONLY = 3,
        /// Aggressive Mode (refused: it exposes a PSK hash to offline cracking).
        AGGRESSIVE = 4,
        /// Informational exchange.
        INFORMATIONAL = 5,
        /// Mode-Config / transaction exchange (draft-ietf-ipsec-isakmp-mode-cfg).
        TRANSACTION = 6,
        /// Quick Mode (RFC 2409 §5.5).
        QUICK_MODE = 32,
        /// New Group Mode (RFC 2409 §5.6).
        NEW_GROUP = 33,
    }
}

codec::wire_enum! {
    /// Payload types (RFC 2408 §3.1, RFC 3947 §3, draft numbers of NAT-T, Microsoft/Cisco
    /// fragmentation).
    pub struct PayloadType(u8) {
        /// End of the chain.
        NONE = 0,
        /// Security Association.
        SA = 1,
        /// Proposal (only inside SA).
        PROPOSAL = 2,
        /// Transform (only inside Proposal).
        TRANSFORM = 3,
        /// Key Exchange.
        KE = 4,
        /// Identification.
        ID = 5,
        /// Certificate.
        CERT = 6,
        /// Certificate Request.
        CR = 7,
        /// Hash.
        HASH = 8,
        /// Signature.
        SIG = 9,
        /// Nonce.
        NONCE = 10,
        /// Notification.
        NOTIFY = 11,
        /// Delete.
        DELETE = 12,
        /// Vendor ID.
        VID = 13,
        /// Mode-Config attributes.
        ATTRIBUTES = 14,
        /// NAT-Discovery (RFC 3947).
        NAT_D = 20,
        /// NAT Original Address (RFC 3947).
        NAT_OA = 21,
        /// NAT-Discovery, draft-ietf-ipsec-nat-t-ike-02/03 number.
        NAT_D_DRAFT = 130,
        /// NAT Original Address, draft number.
        NAT_OA_DRAFT = 131,
        /// IKE fragment (Cisco/Microsoft style).
        FRAGMENT = 132,
    }
}

codec::wire_enum! {
    /// Notify message types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706).
    pub struct NotifyType(u16) {
        /// INVALID-PAYLOAD-TYPE.
        INVALID_PAYLOAD_TYPE = 1,
        /// DOI-NOT-SUPPORTED.
        DOI_NOT_SUPPORTED = 2,
        /// SITUATION-NOT-SUPPORTED.
        SITUATION_NOT_SUPPORTED = 3,
        /// INVALID-COOKIE.
        INVALID_COOKIE = 4,
        /// INVALID-MAJOR-VERSION.
        INVALID_MAJOR_VERSION = 5,
        /// INVALID-MINOR-VERSION.
        INVALID_MINOR_VERSION = 6,
        /// INVALID-EXCHANGE-TYPE.
        INVALID_EXCHANGE_TYPE = 7,
        /// INVALID-FLAGS.
        INVALID_FLAGS = 8,
        /// INVALID-MESSAGE-ID.
        INVALID_MESSAGE_ID = 9,
        /// INVALID-PROTOCOL-ID.
        INVALID_PROTOCOL_ID = 10,
        /// INVALID-SPI.
        INVALID_SPI = 11,
        /// INVALID-TRANSFORM-ID.
        INVALID_TRANSFORM_ID = 12,
        /// ATTRIBUTES-NOT-SUPPORTED.
        ATTRIBUTES_NOT_SUPPORTED = 13,
        /// NO-PROPOSAL-CHOSEN.
        NO_PROPOSAL_CHOSEN = 14,
        /// BAD-PROPOSAL-SYNTAX.
        BAD_PROPOSAL_SYNTAX = 15,
        /// PAYLOAD-MALFORMED.
        PAYLOAD_MALFORMED = 16,
        /// INVALID-KEY-INFORMATION.
        INVALID_KEY_INFORMATION = 17,
        /// INVALID-ID-INFORMATION.
        INVALID_ID_INFORMATION = 18,
        /// INVALID-CERT-ENCODING.
        INVALID_CERT_ENCODING = 19,
        /// INVALID-CERTIFICATE.
        INVALID_CERTIFICATE = 20,
        /// CERT-TYPE-UNSUPPORTED.
        CERT_TYPE_UNSUPPORTED = 21,
        /// INVALID-CERT-AUTHORITY.
        INVALID_CERT_AUTHORITY = 22,
        /// INVALID-HASH-INFORMATION.
        INVALID_HASH_INFORMATION = 23,
        /// AUTHENTICATION-FAILED.
        AUTHENTICATION_FAILED = 24,
        /// INVALID-SIGNATURE.
        INVALID_SIGNATURE = 25,
        /// ADDRESS-NOTIFICATION.
        ADDRESS_NOTIFICATION = 26,
        /// NOTIFY-SA-LIFETIME.
        NOTIFY_SA_LIFETIME = 27,
        /// CERTIFICATE-UNAVAILABLE.
        CERTIFICATE_UNAVAILABLE = 28,
        /// UNSUPPORTED-EXCHANGE-TYPE.
        UNSUPPORTED_EXCHANGE_TYPE = 29,
        /// UNEQUAL-PAYLOAD-LENGTHS.
        UNEQUAL_PAYLOAD_LENGTHS = 30,
        /// CONNECTED (status).
        CONNECTED = 16384,
        /// RESPONDER-LIFETIME (RFC 2407 §4.6.3.1).
        RESPONDER_LIFETIME = 24576,
        /// REPLAY-STATUS (RFC 2407 §4.6.3.2).
        REPLAY_STATUS = 24577,
        /// INITIAL-CONTACT (RFC 2407 §4.6.3.3).
        INITIAL_CONTACT = 24578,
        /// R-U-THERE (RFC 3706 §5.1).
        R_U_THERE = 36136,
        /// R-U-THERE-ACK (RFC 3706 §5.1).
        R_U_THERE_ACK = 36137,
    }
}

codec::wire_enum! {
    /// Protocol identifiers (RFC 2407 §4.4.1).
    pub struct ProtocolId(u8) {
        /// ISAKMP itself.
        ISAKMP = 1,
        /// AH.
        AH = 2,
        /// ESP.
        ESP = 3,
        /// IPComp.
        IPCOMP = 4,
    }
}

codec::wire_enum! {
    /// Identification types (RFC 2407 §4.6.2.1).
    pub struct IdType(u8) {
        /// One IPv4 address.
        IPV4_ADDR = 1,
        /// A fully qualified domain name.
        FQDN = 2,
        /// user@domain.
        USER_FQDN = 3,
        /// IPv4 address and mask.
        IPV4_ADDR_SUBNET = 4,
        /// One IPv6 address.
        IPV6_ADDR = 5,
        /// IPv6 address and mask.
        IPV6_ADDR_SUBNET = 6,
        /// IPv4 address range.
        IPV4_ADDR_RANGE = 7,
        /// IPv6 address range.
        IPV6_ADDR_RANGE = 8,
        /// DER-encoded ASN.1 X.500 distinguished name.
        DER_ASN1_DN = 9,
        /// DER-encoded ASN.1 general name.
        DER_ASN1_GN = 10,
        /// Opaque key identifier.
        KEY_ID = 11,
    }
}

codec::wire_enum! {
    /// Phase 1 (ISAKMP SA) attribute classes (RFC 2409 Appendix A).
    pub struct Phase1Attribute(u16) {
        /// Encryption Algorithm (B).
        ENCRYPTION = 1,
        /// Hash Algorithm (B).
        HASH = 2,
        /// Authentication Method (B).
        AUTH_METHOD = 3,
        /// Group Description (B).
        GROUP = 4,
        /// Group Type (B).
        GROUP_TYPE = 5,
        /// Group Prime/Irreducible Polynomial (V).
        GROUP_PRIME = 6,
        /// Group Generator One (V).
        GROUP_GENERATOR_ONE = 7,
        /// Group Generator Two (V).
        GROUP_GENERATOR_TWO = 8,
        /// Group Curve A (V).
        GROUP_CURVE_A = 9,
        /// Group Curve B (V).
        GROUP_CURVE_B = 10,
        /// Life Type (B).
        LIFE_TYPE = 11,
        /// Life Duration (V).
        LIFE_DURATION = 12,
        /// PRF (B).
        PRF = 13,
        /// Key Length (B).
        KEY_LENGTH = 14,
        /// Field Size (B).
        FIELD_SIZE = 15,
        /// Group Order (V).
        GROUP_ORDER = 16,
    }
}

codec::wire_enum! {
    /// Phase 2 (IPsec SA) attribute classes (RFC 2407 §4.5).
    pub struct Phase2Attribute(u16) {
        /// SA Life Type.
        LIFE_TYPE = 1,
        /// SA Life Duration.
        LIFE_DURATION = 2,
        /// Group Description (PFS).
        GROUP = 3,
        /// Encapsulation Mode.
        ENCAPSULATION_MODE = 4,
        /// Authentication Algorithm.
        AUTH_ALGORITHM = 5,
        /// Key Length.
        KEY_LENGTH = 6,
        /// Key Rounds.
        KEY_ROUNDS = 7,
        /// Compress Dictionary Size.
        COMPRESS_DICTIONARY_SIZE = 8,
        /// Compress Private Algorithm.
        COMPRESS_PRIVATE_ALGORITHM = 9,
    }
}

codec::wire_enum! {
    /// Phase 1 encryption algorithms (RFC 2409 Appendix A, RFC 3602 for AES).
    pub struct EncryptionAlgorithm(u16) {
        /// DES-CBC (refused).
        DES_CBC = 1,
        /// IDEA-CBC.
        IDEA_CBC = 2,
        /// Blowfish-CBC.
        BLOWFISH_CBC = 3,
        /// RC5-R16-B64-CBC.
        RC5_CBC = 4,
        /// 3DES-CBC.
        TRIPLE_DES_CBC = 5,
        /// CAST-CBC.
        CAST_CBC = 6,
        /// AES-CBC (key length in the Key Length attribute).
        AES_CBC = 7,
    }
}

codec::wire_enum! {
    /// Phase 1 hash algorithms (RFC 2409 Appendix A, RFC 4868 §3 numbers for SHA-2).
    pub struct HashAlgorithm(u16) {
        /// MD5.
        MD5 = 1,
        /// SHA-1.
        SHA1 = 2,
        /// Tiger.
        TIGER = 3,
        /// SHA2-256.
        SHA2_256 = 4,
        /// SHA2-384.
        SHA2_384 = 5,
        /// SHA2-512.
        SHA2_512 = 6,
    }
}

codec::wire_enum! {
    /// Phase 1 authentication methods (RFC 2409 Appendix A, XAUTH draft values).
    pub struct AuthMethod(u16) {
        /// Pre-shared key.
        PSK = 1,
        /// DSS signatures.
        DSS_SIGNATURES = 2,
        /// RSA signatures.
        RSA_SIGNATURES = 3,
        /// Encryption with RSA.
        RSA_ENCRYPTION = 4,
        /// Revised encryption with RSA.
        RSA_REVISED_ENCRYPTION = 5,
        /// XAUTH with pre-shared key, initiator.
        XAUTH_INIT_PSK = 65001,
        /// XAUTH with RSA signatures, initiator.
        XAUTH_INIT_RSA = 65005,
    }
}

codec::wire_enum! {
    /// Diffie-Hellman groups (RFC 2409 §6, RFC 3526, RFC 5903).
    pub struct DhGroup(u16) {
        /// 768-bit MODP (refused: too weak).
        MODP_768 = 1,
        /// 1024-bit MODP, the default of Windows and Android clients.
        MODP_1024 = 2,
        /// 1536-bit MODP.
        MODP_1536 = 5,
        /// 2048-bit MODP.
        MODP_2048 = 14,
        /// 3072-bit MODP.
        MODP_3072 = 15,
        /// 4096-bit MODP.
        MODP_4096 = 16,
        /// 256-bit random ECP (P-256).
        ECP_256 = 19,
        /// 384-bit random ECP (P-384).
        ECP_384 = 20,
        /// Curve25519 (RFC 8031).
        CURVE_25519 = 31,
    }
}

codec::wire_enum! {
    /// IPsec (ESP) transform identifiers (RFC 2407 §4.4.4, RFC 4106 §8 for GCM).
    pub struct EspTransform(u8) {
        /// DES (refused).
        DES = 2,
        /// 3DES.
        TRIPLE_DES = 3,
        /// NULL encryption.
        NULL = 11,
        /// AES-CBC.
        AES_CBC = 12,
        /// AES-GCM with an 8-byte ICV.
        AES_GCM_8 = 18,
        /// AES-GCM with a 12-byte ICV.
        AES_GCM_12 = 19,
        /// AES-GCM with a 16-byte ICV.
        AES_GCM_16 = 20,
    }
}

codec::wire_enum! {
    /// Phase 2 authentication algorithms (RFC 2407 §4.5, RFC 4868 §4).
    pub struct EspAuth(u16) {
        /// HMAC-MD5-96.
        HMAC_MD5 = 1,
        /// HMAC-SHA1-96.
        HMAC_SHA1 = 2,
        /// HMAC-SHA2-256-128 (or -96 on some Android builds).
        HMAC_SHA2_256 = 5,
        /// HMAC-SHA2-384-192.
        HMAC_SHA2_384 = 6,
        /// HMAC-SHA2-512-256.
        HMAC_SHA2_512 = 7,
    }
}

codec::wire_enum! {
    /// Encapsulation modes (RFC 2407 §4.5, RFC 3947 §5.1, draft-ietf-ipsec-nat-t-ike values).
    pub struct EncapsulationMode(u16) {
        /// Tunnel.
        TUNNEL = 1,
        /// Transport.
        TRANSPORT = 2,
        /// UDP-encapsulated tunnel (RFC 3947).
        UDP_TUNNEL = 3,
        /// UDP-encapsulated transport (RFC 3947).
        UDP_TRANSPORT = 4,
        /// UDP-encapsulated tunnel, draft value.
        UDP_TUNNEL_DRAFT = 61443,
        /// UDP-encapsulated transport, draft value.
        UDP_TRANSPORT_DRAFT = 61444,
    }
}

codec::wire_enum! {
    /// SA life types (RFC 2409 Appendix A, RFC 2407 §4.5).
    pub struct LifeType(u16) {
        /// Seconds.
        SECONDS = 1,
        /// Kilobytes.
        KILOBYTES = 2,
    }
}

/// The IPsec DOI (RFC 2407 §4.2).
pub const DOI_IPSEC: u32 = 1;
/// The only situation we support: identity only (RFC 2407 §4.2).
pub const SIT_IDENTITY_ONLY: u32 = 1;
/// The ISAKMP transform identifier KEY_IKE (RFC 2407 §4.4.2).
pub const KEY_IKE: u8 = 1;
