//! Cryptographic primitives for IKEv1 and ESP: ciphers, hashes and PRFs, Diffie-Hellman groups.
