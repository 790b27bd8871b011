//! ISAKMP wire format (RFC 2408 §3): checked views and reprs of the header and payloads.
