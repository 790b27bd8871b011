//! L2TPv2 (RFC 2661) as a sans-IO state machine: LNS and LAC roles, the reliable control channel,
//! tunnels and sessions. Filled by the L2TP issue.
#![forbid(unsafe_code)]
