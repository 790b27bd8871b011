//! Dynamic Authorization (RFC 5176).
