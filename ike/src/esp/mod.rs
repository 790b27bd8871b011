//! ESP (RFC 4303) in transport mode, sealed and opened in place, with anti-replay and an SA database.
