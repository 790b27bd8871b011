use super::*;
use crate::ikev1::test_pki::Key;
use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};

/// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

#[test]
fn raw_signing_of_a_digest_info_equals_rings_pkcs1_signature() {
    // PKCS#1 v1.5 is deterministic: our raw type-1 operation over DigestInfo || hash must give
    // exactly ring's SHA-256 signature, which pins padding, CRT and encoding to ring.
    for key in [Key::Ca, Key::Server, Key::Client, Key::Rogue] {
        let der = key.der();
        let ours = RsaPrivateKey::from_pkcs8(&der).unwrap();
        let ring_key = RsaKeyPair::from_pkcs8(&der).unwrap();
        for msg in [&b""[..], b"HASH_I", &[0xa5; 1000]] {
            let digest = ring::digest::digest(&ring::digest::SHA256, msg);
            let t = [&SHA256_DIGEST_INFO[..], digest.as_ref()].concat();
            let raw = ours.sign_raw(&t).unwrap();
            let mut expected = vec![0; ring_key.public().modulus_len()];
            ring_key
                .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut expected)
                .unwrap();
            assert_eq!(raw, expected, "{key:?}");
            assert!(ours.public_key().verify_raw(&t, &expected));
            let spki_key = ring_key.public().as_ref();
            assert!(
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki_key)
                    .verify(msg, &raw)
                    .is_ok()
            );
        }
    }
}

#[test]
fn a_bare_hash_signature_verifies_and_nothing_else_does() {
    let key = RsaPrivateKey::from_pkcs8(&Key::Server.der()).unwrap();
    let public = key.public_key();
    for len in [16, 20, 32, 48, 64] {
        let hash = vec![0x3c; len];
        let sig = key.sign_raw(&hash).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(public.verify_raw(&hash, &sig));
        // Another hash, a flipped bit anywhere, a wrong length, a value ≥ n: all refused.
        let mut other = hash.clone();
        other[0] ^= 1;
        assert!(!public.verify_raw(&other, &sig));
        for i in [0, 100, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 0x80;
            assert!(!public.verify_raw(&hash, &bad));
        }
        assert!(!public.verify_raw(&hash, &sig[1..]));
        assert!(!public.verify_raw(&hash, &[&[0][..], &sig].concat()));
        assert!(!public.verify_raw(&hash, &[0xff; 256]));
    }
    // A hash signed by another key does not verify.
    let other = RsaPrivateKey::from_pkcs8(&Key::Client.der()).unwrap();
    let sig = other.sign_raw(&[7; 32]).unwrap();
    assert!(!public.verify_raw(&[7; 32], &sig));
}

#[test]
fn the_signature_block_is_type_1_over_the_bare_hash() {
    // Recover the block with the public exponent: 00 01 FF…FF 00 || hash, no DigestInfo.
    let key = RsaPrivateKey::from_pkcs8(&Key::Client.der()).unwrap();
    let hash = [0x11; 20];
    let sig = key.sign_raw(&hash).unwrap();
    let block = key.public_key().public_op(&sig).unwrap();
    assert_eq!(&block[..2], &[0, 1]);
    assert!(block[2..256 - 21].iter().all(|&b| b == 0xff));
    assert_eq!(block[256 - 21], 0);
    assert_eq!(&block[256 - 20..], &hash);
}

#[test]
fn malformed_keys_are_refused_without_panicking() {
    let der = Key::Ca.der();
    for len in 0..der.len() {
        assert!(RsaPrivateKey::from_pkcs8(&der[..len]).is_err(), "{len}");
    }
    let mut flipped = der.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(RsaPrivateKey::from_pkcs8(&flipped).is_err());
    assert_eq!(
        RsaPublicKey::new(&[0xff; 128], &[1, 0, 1]),
        Err(RsaError::Unsupported),
        "1024-bit moduli are refused"
    );
    assert_eq!(
        RsaPublicKey::new(&[0xff; 256], &[1]),
        Err(RsaError::Unsupported)
    );
}

#[test]
fn debug_output_redacts_the_private_key() {
    let key = RsaPrivateKey::from_pkcs8(&Key::Ca.der()).unwrap();
    assert_eq!(format!("{key:?}"), "RsaPrivateKey(2048 bits, <redacted>)");
}
