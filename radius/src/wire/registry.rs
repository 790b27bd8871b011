//! RADIUS registries (IANA "RADIUS Types"): packet codes, attribute types and the values of
//! the enumerated attributes we send or read.

codec::wire_enum! {
    /// Packet type codes (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3, RFC 5997 §2).
    pub struct Code(u8) {
        /// Access-Request (RFC 2865 §4.1).
        ACCESS_REQUEST = 1,
        /// Access-Accept (RFC 2865 §4.2).
        ACCESS_ACCEPT = 2,
        /// Access-Reject (RFC 2865 §4.3).
        ACCESS_REJECT = 3,
        /// Accounting-Request (RFC 2866 §4.1).
        ACCOUNTING_REQUEST = 4,
        /// Accounting-Response (RFC 2866 §4.2).
        ACCOUNTING_RESPONSE = 5,
        /// Access-Challenge (RFC 2865 §4.4).
        ACCESS_CHALLENGE = 11,
        /// Status-Server (RFC 5997).
        STATUS_SERVER = 12,
        /// Status-Client (reserved, RFC 2865 §3).
        STATUS_CLIENT = 13,
        /// Disconnect-Request (RFC 5176 §2.3).
        DISCONNECT_REQUEST = 40,
        /// Disconnect-ACK (RFC 5176 §2.3).
        DISCONNECT_ACK = 41,
        /// Disconnect-NAK (RFC 5176 §2.3).
        DISCONNECT_NAK = 42,
        /// CoA-Request (RFC 5176 §2.3).
        COA_REQUEST = 43,
        /// CoA-ACK (RFC 5176 §2.3).
        COA_ACK = 44,
        /// CoA-NAK (RFC 5176 §2.3).
        COA_NAK = 45,
    }
}

impl Code {
    /// Whether the Authenticator of a packet with this code is computed over 16 zero octets
    /// and the secret, not chosen at random: Accounting-Request (RFC 2866 §3) and the
    /// Dynamic Authorization requests (RFC 5176 §2.3).
    #[must_use]
    pub const fn has_computed_request_authenticator(self) -> bool {
        matches!(self.0, 4 | 40 | 43)
    }

    /// Whether this code answers a request: its Authenticator is a Response Authenticator
    /// over the request's Authenticator (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3).
    #[must_use]
    pub const fn is_response(self) -> bool {
        matches!(self.0, 2 | 3 | 5 | 11 | 41 | 42 | 44 | 45)
    }
}

codec::wire_enum! {
    /// Attribute types (RFC 2865 §5, RFC 2866 §5, RFC 2869 §5, RFC 3579 §3, RFC 5176 §3).
    pub struct AttributeType(u8) {
        /// User-Name (RFC 2865 §5.1).
        USER_NAME = 1,
        /// User-Password, hidden (RFC 2865 §5.2).
        USER_PASSWORD = 2,
        /// CHAP-Password: CHAP Ident and Response (RFC 2865 §5.3).
        CHAP_PASSWORD = 3,
        /// NAS-IP-Address (RFC 2865 §5.4).
        NAS_IP_ADDRESS = 4,
        /// NAS-Port (RFC 2865 §5.5).
        NAS_PORT = 5,
        /// Service-Type (RFC 2865 §5.6).
        SERVICE_TYPE = 6,
        /// Framed-Protocol (RFC 2865 §5.7).
        FRAMED_PROTOCOL = 7,
        /// Framed-IP-Address (RFC 2865 §5.8).
        FRAMED_IP_ADDRESS = 8,
        /// Framed-IP-Netmask (RFC 2865 §5.9).
        FRAMED_IP_NETMASK = 9,
        /// Framed-Routing (RFC 2865 §5.10).
        FRAMED_ROUTING = 10,
        /// Filter-Id (RFC 2865 §5.11).
        FILTER_ID = 11,
        /// Framed-MTU (RFC 2865 §5.12).
        FRAMED_MTU = 12,
        /// Framed-Compression (RFC 2865 §5.13).
        FRAMED_COMPRESSION = 13,
        /// Login-IP-Host (RFC 2865 §5.14).
        LOGIN_IP_HOST = 14,
        /// Login-Service (RFC 2865 §5.15).
        LOGIN_SERVICE = 15,
        /// Reply-Message (RFC 2865 §5.18).
        REPLY_MESSAGE = 18,
        /// Framed-Route (RFC 2865 §5.22).
        FRAMED_ROUTE = 22,
        /// State (RFC 2865 §5.24).
        STATE = 24,
        /// Class (RFC 2865 §5.25).
        CLASS = 25,
        /// Vendor-Specific (RFC 2865 §5.26).
        VENDOR_SPECIFIC = 26,
        /// Session-Timeout (RFC 2865 §5.27).
        SESSION_TIMEOUT = 27,
        /// Idle-Timeout (RFC 2865 §5.28).
        IDLE_TIMEOUT = 28,
        /// Termination-Action (RFC 2865 §5.29).
        TERMINATION_ACTION = 29,
        /// Called-Station-Id (RFC 2865 §5.30).
        CALLED_STATION_ID = 30,
        /// Calling-Station-Id (RFC 2865 §5.31).
        CALLING_STATION_ID = 31,
        /// NAS-Identifier (RFC 2865 §5.32).
        NAS_IDENTIFIER = 32,
        /// Proxy-State (RFC 2865 §5.33).
        PROXY_STATE = 33,
        /// Acct-Status-Type (RFC 2866 §5.1).
        ACCT_STATUS_TYPE = 40,
        /// Acct-Delay-Time (RFC 2866 §5.2).
        ACCT_DELAY_TIME = 41,
        /// Acct-Input-Octets (RFC 2866 §5.3).
        ACCT_INPUT_OCTETS = 42,
        /// Acct-Output-Octets (RFC 2866 §5.4).
        ACCT_OUTPUT_OCTETS = 43,
        /// Acct-Session-Id (RFC 2866 §5.5).
        ACCT_SESSION_ID = 44,
        /// Acct-Authentic (RFC 2866 §5.6).
        ACCT_AUTHENTIC = 45,
        /// Acct-Session-Time (RFC 2866 §5.7).
        ACCT_SESSION_TIME = 46,
        /// Acct-Input-Packets (RFC 2866 §5.8).
        ACCT_INPUT_PACKETS = 47,
        /// Acct-Output-Packets (RFC 2866 §5.9).
        ACCT_OUTPUT_PACKETS = 48,
        /// Acct-Terminate-Cause (RFC 2866 §5.10).
        ACCT_TERMINATE_CAUSE = 49,
        /// Acct-Multi-Session-Id (RFC 2866 §5.11).
        ACCT_MULTI_SESSION_ID = 50,
        /// Acct-Link-Count (RFC 2866 §5.12).
        ACCT_LINK_COUNT = 51,
        /// Acct-Input-Gigawords (RFC 2869 §5.1).
        ACCT_INPUT_GIGAWORDS = 52,
        /// Acct-Output-Gigawords (RFC 2869 §5.2).
        ACCT_OUTPUT_GIGAWORDS = 53,
        /// Event-Timestamp (RFC 2869 §5.3).
        EVENT_TIMESTAMP = 55,
        /// CHAP-Challenge (RFC 2865 §5.40).
        CHAP_CHALLENGE = 60,
        /// NAS-Port-Type (RFC 2865 §5.41).
        NAS_PORT_TYPE = 61,
        /// Port-Limit (RFC 2865 §5.42).
        PORT_LIMIT = 62,
        /// Connect-Info (RFC 2869 §5.11).
        CONNECT_INFO = 77,
        /// EAP-Message (RFC 3579 §3.1).
        EAP_MESSAGE = 79,
        /// Message-Authenticator (RFC 3579 §3.2).
        MESSAGE_AUTHENTICATOR = 80,
        /// Acct-Interim-Interval (RFC 2869 §5.16).
        ACCT_INTERIM_INTERVAL = 85,
        /// NAS-Port-Id (RFC 2869 §5.17).
        NAS_PORT_ID = 87,
        /// Framed-Pool (RFC 2869 §5.18).
        FRAMED_POOL = 88,
        /// NAS-IPv6-Address (RFC 3162 §2.1).
        NAS_IPV6_ADDRESS = 95,
        /// Error-Cause (RFC 5176 §3.5).
        ERROR_CAUSE = 101,
    }
}

codec::wire_enum! {
    /// SMI network management private enterprise codes used in Vendor-Specific (RFC 2865 §5.26).
    pub struct VendorId(u32) {
        /// Microsoft (RFC 2548 §2).
        MICROSOFT = 311,
    }
}

codec::wire_enum! {
    /// Service-Type values (RFC 2865 §5.6, RFC 5176 §3.2).
    pub struct ServiceType(u32) {
        /// Login.
        LOGIN = 1,
        /// Framed: the user gets a framed protocol such as PPP.
        FRAMED = 2,
        /// Callback Login.
        CALLBACK_LOGIN = 3,
        /// Callback Framed.
        CALLBACK_FRAMED = 4,
        /// Outbound.
        OUTBOUND = 5,
        /// Administrative.
        ADMINISTRATIVE = 6,
        /// NAS Prompt.
        NAS_PROMPT = 7,
        /// Authenticate Only.
        AUTHENTICATE_ONLY = 8,
        /// Callback NAS Prompt.
        CALLBACK_NAS_PROMPT = 9,
        /// Call Check.
        CALL_CHECK = 10,
        /// Callback Administrative.
        CALLBACK_ADMINISTRATIVE = 11,
        /// Authorize Only (RFC 5176 §3.2).
        AUTHORIZE_ONLY = 17,
    }
}

codec::wire_enum! {
    /// Framed-Protocol values (RFC 2865 §5.7).
    pub struct FramedProtocol(u32) {
        /// PPP.
        PPP = 1,
        /// SLIP.
        SLIP = 2,
    }
}

codec::wire_enum! {
    /// NAS-Port-Type values (RFC 2865 §5.41).
    pub struct NasPortType(u32) {
        /// Async.
        ASYNC = 0,
        /// Sync.
        SYNC = 1,
        /// ISDN Sync.
        ISDN_SYNC = 2,
        /// Virtual: the port is a tunnel, such as an L2TP session.
        VIRTUAL = 5,
        /// Ethernet.
        ETHERNET = 15,
    }
}

codec::wire_enum! {
    /// Acct-Status-Type values (RFC 2866 §5.1).
    pub struct AcctStatusType(u32) {
        /// Start.
        START = 1,
        /// Stop.
        STOP = 2,
        /// Interim-Update (RFC 2869 §2.1).
        INTERIM_UPDATE = 3,
        /// Accounting-On.
        ACCOUNTING_ON = 7,
        /// Accounting-Off.
        ACCOUNTING_OFF = 8,
    }
}

codec::wire_enum! {
    /// Acct-Authentic values (RFC 2866 §5.6).
    pub struct AcctAuthentic(u32) {
        /// Authenticated by RADIUS.
        RADIUS = 1,
        /// Authenticated locally.
        LOCAL = 2,
        /// Authenticated by a remote server other than RADIUS.
        REMOTE = 3,
    }
}

codec::wire_enum! {
    /// Acct-Terminate-Cause values (RFC 2866 §5.10).
    pub struct AcctTerminateCause(u32) {
        /// User Request: the user logged off (LCP Terminate, L2TP CDN from the client).
        USER_REQUEST = 1,
        /// Lost Carrier.
        LOST_CARRIER = 2,
        /// Lost Service: the tunnel or the IPsec SA went away.
        LOST_SERVICE = 3,
        /// Idle Timeout.
        IDLE_TIMEOUT = 4,
        /// Session Timeout.
        SESSION_TIMEOUT = 5,
        /// Admin Reset.
        ADMIN_RESET = 6,
        /// Admin Reboot: the NAS is shutting down.
        ADMIN_REBOOT = 7,
        /// Port Error.
        PORT_ERROR = 8,
        /// NAS Error.
        NAS_ERROR = 9,
        /// NAS Request.
        NAS_REQUEST = 10,
        /// NAS Reboot.
        NAS_REBOOT = 11,
        /// Port Unneeded.
        PORT_UNNEEDED = 12,
        /// Port Preempted.
        PORT_PREEMPTED = 13,
        /// Port Suspended.
        PORT_SUSPENDED = 14,
        /// Service Unavailable.
        SERVICE_UNAVAILABLE = 15,
        /// Callback.
        CALLBACK = 16,
        /// User Error.
        USER_ERROR = 17,
        /// Host Request.
        HOST_REQUEST = 18,
    }
}

codec::wire_enum! {
    /// Error-Cause values (RFC 5176 §3.5).
    pub struct ErrorCause(u32) {
        /// Residual Session Context Removed.
        RESIDUAL_SESSION_CONTEXT_REMOVED = 201,
        /// Invalid EAP Packet (Ignored).
        INVALID_EAP_PACKET = 202,
        /// Unsupported Attribute.
        UNSUPPORTED_ATTRIBUTE = 401,
        /// Missing Attribute.
        MISSING_ATTRIBUTE = 402,
        /// NAS Identification Mismatch.
        NAS_IDENTIFICATION_MISMATCH = 403,
        /// Invalid Request.
        INVALID_REQUEST = 404,
        /// Unsupported Service.
        UNSUPPORTED_SERVICE = 405,
        /// Unsupported Extension.
        UNSUPPORTED_EXTENSION = 406,
        /// Invalid Attribute Value.
        INVALID_ATTRIBUTE_VALUE = 407,
        /// Administratively Prohibited.
        ADMINISTRATIVELY_PROHIBITED = 501,
        /// Request Not Routable (Proxy).
        REQUEST_NOT_ROUTABLE = 502,
        /// Session Context Not Found.
        SESSION_CONTEXT_NOT_FOUND = 503,
        /// Session Context Not Removable.
        SESSION_CONTEXT_NOT_REMOVABLE = 504,
        /// Other Proxy Processing Error.
        OTHER_PROXY_PROCESSING_ERROR = 505,
        /// Resources Unavailable.
        RESOURCES_UNAVAILABLE = 506,
        /// Request Initiated.
        REQUEST_INITIATED = 507,
        /// Multiple Session Selection Unsupported.
        MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508,
    }
}

codec::wire_enum! {
    /// Microsoft vendor-specific attribute types (RFC 2548 §2).
    pub struct MsAttributeType(u8) {
        /// MS-CHAP-Response (RFC 2548 §2.1.3).
        MS_CHAP_RESPONSE = 1,
        /// MS-CHAP-Error (RFC 2548 §2.1.5).
        MS_CHAP_ERROR = 2,
        /// MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4).
        MS_MPPE_ENCRYPTION_POLICY = 7,
        /// MS-MPPE-Encryption-Types (RFC 2548 §2.4.5).
        MS_MPPE_ENCRYPTION_TYPES = 8,
        /// MS-CHAP-Domain (RFC 2548 §2.1.4).
        MS_CHAP_DOMAIN = 10,
        /// MS-CHAP-Challenge (RFC 2548 §2.1.2).
        MS_CHAP_CHALLENGE = 11,
        /// MS-CHAP-MPPE-Keys, MS-CHAP v1 only (RFC 2548 §2.4.1).
        MS_CHAP_MPPE_KEYS = 12,
        /// MS-MPPE-Send-Key (RFC 2548 §2.4.2).
        MS_MPPE_SEND_KEY = 16,
        /// MS-MPPE-Recv-Key (RFC 2548 §2.4.3).
        MS_MPPE_RECV_KEY = 17,
        /// MS-CHAP2-Response (RFC 2548 §2.3.2).
        MS_CHAP2_RESPONSE = 25,
        /// MS-CHAP2-Success (RFC 2548 §2.3.3).
        MS_CHAP2_SUCCESS = 26,
        /// MS-Primary-DNS-Server (RFC 2548 §2.7.6).
        MS_PRIMARY_DNS_SERVER = 28,
        /// MS-Secondary-DNS-Server (RFC 2548 §2.7.7).
        MS_SECONDARY_DNS_SERVER = 29,
        /// MS-Primary-NBNS-Server (RFC 2548 §2.7.8).
        MS_PRIMARY_NBNS_SERVER = 30,
        /// MS-Secondary-NBNS-Server (RFC 2548 §2.7.9).
        MS_SECONDARY_NBNS_SERVER = 31,
    }
}
