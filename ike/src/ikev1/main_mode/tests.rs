use super::*;
use crate::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::sync::Arc;

fn config(psk: &str, suites: Vec<Phase1Suite>) -> Phase1Config {
    Phase1Config {
        policy: Phase1Policy {
            suites,
            ..Phase1Policy::default()
        },
        auth: Authentication::PreSharedKey(Secret::new(psk.as_bytes())),
    }
}

fn paths(nat: bool) -> (Path, Path) {
    let client: SocketAddr = "10.0.0.2:500".parse().unwrap();
    let server: SocketAddr = "2.2.2.2:500".parse().unwrap();
    // Behind a NAT the server sees the client's translated address.
    let seen: SocketAddr = if nat {
        "198.51.100.7:40123".parse().unwrap()
    } else {
        client
    };
    (
        Path {
            local: client,
            remote: server,
        },
        Path {
            local: server,
            remote: seen,
        },
    )
}

/// Runs messages 1–6; returns both SAs or the first refusal.
fn handshake(
    initiator: &Phase1Config,
    responder: &Phase1Config,
    nat: bool,
    seed: u64,
) -> Result<(Phase1Sa, Phase1Sa), Refusal> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (ipath, rpath) = paths(nat);
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (i1, n) = initiate(initiator, ipath, &mut rng, &mut a)?;
    let (r1, m) = respond(responder, rpath, &a[..n], &mut rng, &mut b)?;
    let (mut i2, n) = i1.on_choice(&b[..m], &mut rng, &mut a)?;
    let (r2, m) = r1.on_key_exchange(&a[..n], &mut rng, &mut b)?;
    let (i3, n) = i2.on_key_exchange(&b[..m], &mut a)?;
    let (rsa, m) = r2.on_auth(&a[..n], &mut b, std::time::UNIX_EPOCH)?;
    let isa = i3.on_auth(&b[..m], std::time::UNIX_EPOCH)?;
    Ok((isa, rsa))
}

#[test]
fn every_group_and_cipher_agrees() {
    let mut seed = 0;
    for group in DhGroup::ALL {
        for (cipher, hash) in [
            (CipherAlgorithm::AesCbc256, HashAlgorithm::Sha256),
            (CipherAlgorithm::AesCbc128, HashAlgorithm::Sha1),
            (CipherAlgorithm::TripleDesCbc, HashAlgorithm::Md5),
            (CipherAlgorithm::AesCbc192, HashAlgorithm::Sha512),
        ] {
            seed += 1;
            let suite = Phase1Suite {
                cipher,
                hash,
                group,
            };
            let c = config("interop-test-psk", vec![suite]);
            let (isa, rsa) = handshake(
                &c,
                &config("interop-test-psk", Phase1Policy::default().suites),
                false,
                seed,
            )
            .unwrap_or_else(|e| panic!("{suite:?}: {e}"));
            assert_eq!(isa.suite, suite);
            assert_eq!(rsa.suite, suite);
            assert_eq!(isa.keys.skeyid_d(), rsa.keys.skeyid_d());
            assert_eq!(
                isa.last_block, rsa.last_block,
                "both sides chain the same IV"
            );
            assert_eq!(rsa.peer_id.id_type, IdType::IPV4_ADDR);
            assert_eq!(rsa.peer_id.data, vec![10, 0, 0, 2]);
            assert!(rsa.initial_contact);
            assert!(!rsa.nat.encapsulate());
            assert!(rsa.peer_dpd && isa.peer_dpd);
        }
    }
}

#[test]
fn responder_takes_the_initiators_first_acceptable_offer() {
    let offered = vec![
        Phase1Suite {
            cipher: CipherAlgorithm::AesCbc256,
            hash: HashAlgorithm::Sha1,
            group: DhGroup::Modp1024,
        },
        Phase1Suite {
            cipher: CipherAlgorithm::AesCbc128,
            hash: HashAlgorithm::Sha256,
            group: DhGroup::Modp2048,
        },
    ];
    let only_second = vec![offered[1]];
    let (isa, _) = handshake(
        &config("k", offered.clone()),
        &config("k", only_second),
        false,
        7,
    )
    .unwrap();
    assert_eq!(isa.suite, offered[1]);
}

#[test]
fn wrong_psk_fails_authentication_on_the_responder() {
    let suites = Phase1Policy::default().suites;
    let err = handshake(
        &config("right", suites.clone()),
        &config("wrong", suites),
        false,
        3,
    )
    .unwrap_err();
    assert_eq!(err, Refusal::AuthenticationFailed);
    assert_eq!(err.notify(), Some(NotifyType::AUTHENTICATION_FAILED));
}

#[test]
fn no_common_proposal_is_refused() {
    let i = config(
        "k",
        vec![Phase1Suite {
            cipher: CipherAlgorithm::TripleDesCbc,
            hash: HashAlgorithm::Md5,
            group: DhGroup::Modp1024,
        }],
    );
    let r = config(
        "k",
        vec![Phase1Suite {
            cipher: CipherAlgorithm::AesCbc256,
            hash: HashAlgorithm::Sha256,
            group: DhGroup::Modp2048,
        }],
    );
    assert_eq!(
        handshake(&i, &r, false, 4).unwrap_err(),
        Refusal::NoProposalChosen
    );
}

#[test]
fn nat_is_detected_on_both_sides() {
    let suites = Phase1Policy::default().suites;
    let (isa, rsa) =
        handshake(&config("k", suites.clone()), &config("k", suites), true, 5).unwrap();
    assert_eq!(rsa.nat.version, Some(NatTVersion::Rfc3947));
    assert!(rsa.nat.peer_behind_nat && !rsa.nat.local_behind_nat);
    assert!(isa.nat.local_behind_nat && !isa.nat.peer_behind_nat);
    assert!(isa.nat.encapsulate() && rsa.nat.encapsulate());
}

#[test]
fn tampered_or_foreign_messages_leave_the_responder_state_intact() {
    let c = config("k", Phase1Policy::default().suites);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (ipath, rpath) = paths(false);
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (i1, n) = initiate(&c, ipath, &mut rng, &mut a).unwrap();
    let (r1, m) = respond(&c, rpath, &a[..n], &mut rng, &mut b).unwrap();
    let (mut i2, n) = i1.on_choice(&b[..m], &mut rng, &mut a).unwrap();
    let msg3 = a[..n].to_vec();
    // Every truncation of message 3 is refused without touching the state.
    for len in 0..msg3.len() {
        assert!(
            r1.on_key_exchange(&msg3[..len], &mut rng, &mut b).is_err(),
            "accepted {len} bytes"
        );
    }
    let (r2, m) = r1.on_key_exchange(&msg3, &mut rng, &mut b).unwrap();
    let (i3, n) = i2.on_key_exchange(&b[..m], &mut a).unwrap();
    let mut msg5 = a[..n].to_vec();
    // IKEv1 has no MAC over the ciphertext: a change in the first block garbles the ID
    // payload, which HASH_I covers.
    msg5[HEADER_LEN] ^= 1;
    assert!(r2.on_auth(&msg5, &mut b, std::time::UNIX_EPOCH).is_err());
    msg5[HEADER_LEN] ^= 1;
    let (rsa, m) = r2.on_auth(&msg5, &mut b, std::time::UNIX_EPOCH).unwrap();
    assert!(i3.on_auth(&b[..m], std::time::UNIX_EPOCH).is_ok());
    assert_eq!(
        rsa.suite,
        Phase1Policy::default().suites[0],
        "the first offer wins"
    );
}

// ---- Certificates (RSA signatures, RFC 2409 §5.1) ----

use crate::ikev1::cert::{Certificates, PeerPolicy};
use crate::ikev1::test_pki::{Key, Leaf, Pki, ca, subject, wall_clock};

fn cert_config(certs: Arc<Certificates>, suites: Vec<Phase1Suite>) -> Phase1Config {
    Phase1Config {
        policy: Phase1Policy {
            suites,
            ..Phase1Policy::default()
        },
        auth: Authentication::Certificates(certs),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Initiator,
    Responder,
}

/// Runs messages 1–6 at the test wall clock; `edit5` / `edit6` may rewrite the decrypted
/// message 5 / 6 before it is re-encrypted and delivered. Returns both SAs or the first
/// refusal with the side that refused.
fn cert_handshake(
    initiator: &Phase1Config,
    responder: &Phase1Config,
    seed: u64,
    edit5: impl FnOnce(&mut [u8], &[(PayloadType, std::ops::Range<usize>)]),
    edit6: impl FnOnce(&mut [u8], &[(PayloadType, std::ops::Range<usize>)]),
) -> Result<(Phase1Sa, Phase1Sa), (Side, Refusal)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (ipath, rpath) = paths(false);
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let i = |e| (Side::Initiator, e);
    let r = |e| (Side::Responder, e);
    let (i1, n) = initiate(initiator, ipath, &mut rng, &mut a).map_err(i)?;
    let (r1, m) = respond(responder, rpath, &a[..n], &mut rng, &mut b).map_err(r)?;
    let (mut i2, n) = i1.on_choice(&b[..m], &mut rng, &mut a).map_err(i)?;
    let (r2, m) = r1.on_key_exchange(&a[..n], &mut rng, &mut b).map_err(r)?;
    let (i3, n) = i2.on_key_exchange(&b[..m], &mut a).map_err(i)?;
    let msg5 = rewrite(&a[..n], &r2.suite, &r2.keys, &r2.iv, edit5);
    let (rsa, m) = r2.on_auth(&msg5, &mut b, wall_clock()).map_err(r)?;
    let msg6 = rewrite(&b[..m], &i3.suite, &i3.keys, &i3.iv, edit6);
    let isa = i3.on_auth(&msg6, wall_clock()).map_err(i)?;
    Ok((isa, rsa))
}

/// Decrypts an encrypted Main Mode message, lets `edit` change the plaintext (given the
/// payloads' positions), and encrypts it again with the same IV.
fn rewrite(
    message: &[u8],
    suite: &Phase1Suite,
    keys: &Phase1Keys,
    iv: &[u8],
    edit: impl FnOnce(&mut [u8], &[(PayloadType, std::ops::Range<usize>)]),
) -> Vec<u8> {
    let h = Header::new_checked(message).unwrap();
    let cipher = Cipher::new(suite.cipher, keys.encryption_key().expose()).unwrap();
    let (mut plain, _) = decrypt(&h, &cipher, suite.cipher.block_len(), iv).unwrap();
    let bodies: Vec<_> = collect(h.next_payload(), &plain)
        .unwrap()
        .iter()
        .map(|p| {
            let start = p.body.as_ptr().addr() - plain.as_ptr().addr();
            (p.kind, start..start + p.body.len())
        })
        .collect();
    edit(&mut plain, &bodies);
    cipher.encrypt_cbc(iv, &mut plain).unwrap();
    [&message[..HEADER_LEN], &plain].concat()
}

fn keep(_: &mut [u8], _: &[(PayloadType, std::ops::Range<usize>)]) {}

/// Where the body of the first payload of `kind` lies in the plaintext.
fn body(
    bodies: &[(PayloadType, std::ops::Range<usize>)],
    kind: PayloadType,
) -> std::ops::Range<usize> {
    bodies.iter().find(|b| b.0 == kind).unwrap().1.clone()
}

#[test]
fn certificates_authenticate_both_sides_for_several_suites() {
    let pki = Pki::new();
    let suites = [
        (
            CipherAlgorithm::AesCbc256,
            HashAlgorithm::Sha256,
            DhGroup::Modp2048,
        ),
        (
            CipherAlgorithm::AesCbc128,
            HashAlgorithm::Sha1,
            DhGroup::Ecp256,
        ),
        (
            CipherAlgorithm::TripleDesCbc,
            HashAlgorithm::Md5,
            DhGroup::Modp1024,
        ),
        (
            CipherAlgorithm::AesCbc192,
            HashAlgorithm::Sha512,
            DhGroup::Ecp384,
        ),
    ];
    for (seed, (cipher, hash, group)) in (20..).zip(suites) {
        let suite = Phase1Suite {
            cipher,
            hash,
            group,
        };
        let (isa, rsa) = cert_handshake(
            &cert_config(pki.client_credentials(), vec![suite]),
            &cert_config(pki.server_credentials(), Phase1Policy::default().suites),
            seed,
            keep,
            keep,
        )
        .unwrap_or_else(|e| panic!("{suite:?}: {e:?}"));
        assert_eq!((isa.suite, rsa.suite), (suite, suite));
        assert_eq!(isa.keys.skeyid_d(), rsa.keys.skeyid_d());
        assert_eq!(isa.last_block, rsa.last_block);
        assert_eq!(rsa.peer_id.id_type, IdType::DER_ASN1_DN);
        assert_eq!(rsa.peer_id.data, subject(&pki.client));
        assert_eq!(isa.peer_id.data, subject(&pki.server));
        assert!(rsa.initial_contact);
    }
}

#[test]
fn the_auth_method_must_match_on_both_sides() {
    let pki = Pki::new();
    let suites = Phase1Policy::default().suites;
    let err = cert_handshake(
        &config("k", suites.clone()),
        &cert_config(pki.server_credentials(), suites.clone()),
        30,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::NoProposalChosen));
    let err = cert_handshake(
        &cert_config(pki.client_credentials(), suites.clone()),
        &config("k", suites),
        31,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::NoProposalChosen));
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_by_the_responder() {
    let pki = Pki::new();
    let (_, rogue_ca) = ca("l2sec test CA", Key::Rogue);
    let forged = Leaf::client().issue(&rogue_ca, Key::Rogue);
    let client = Certificates::new(
        vec![forged],
        &Key::Client.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    )
    .unwrap();
    let suites = Phase1Policy::default().suites;
    let err = cert_handshake(
        &cert_config(Arc::new(client), suites.clone()),
        &cert_config(pki.server_credentials(), suites),
        32,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::UntrustedCertificate));
    assert_eq!(err.1.notify(), Some(NotifyType::INVALID_CERTIFICATE));
}

#[test]
fn an_expired_server_certificate_is_refused_by_the_initiator() {
    let pki = Pki::new();
    let expired = Leaf {
        not_after: (2025, 3, 1),
        ..Leaf::server()
    }
    .issue(&pki.ca_params, Key::Ca);
    let server = Certificates::new(
        vec![expired],
        &Key::Server.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    )
    .unwrap();
    let suites = Phase1Policy::default().suites;
    let err = cert_handshake(
        &cert_config(pki.client_credentials(), suites.clone()),
        &cert_config(Arc::new(server), suites),
        33,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Initiator, Refusal::CertificateExpired));
}

#[test]
fn ids_the_policy_or_certificate_does_not_admit_are_refused() {
    let pki = Pki::new();
    let suites = Phase1Policy::default().suites;
    // The server admits only a client named "someone else".
    let picky = Certificates::new(
        vec![pki.server.clone()],
        &Key::Server.der(),
        vec![pki.ca.clone()],
        PeerPolicy::Only(PeerId {
            id_type: IdType::USER_FQDN,
            data: b"someone@example.com".to_vec(),
        }),
    )
    .unwrap();
    let err = cert_handshake(
        &cert_config(pki.client_credentials(), suites.clone()),
        &cert_config(Arc::new(picky), suites.clone()),
        34,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::IdMismatch));
    assert_eq!(err.1.notify(), Some(NotifyType::INVALID_ID_INFORMATION));
    // The client expects the server's DN; a certified impostor server is refused by ID.
    let other = Leaf {
        cn: "other.example.com",
        dns: vec!["other.example.com"],
        ..Leaf::server()
    }
    .issue(&pki.ca_params, Key::Ca);
    let impostor = Certificates::new(
        vec![other],
        &Key::Server.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    )
    .unwrap();
    let err = cert_handshake(
        &cert_config(pki.client_credentials(), suites.clone()),
        &cert_config(Arc::new(impostor), suites),
        35,
        keep,
        keep,
    )
    .unwrap_err();
    assert_eq!(err, (Side::Initiator, Refusal::IdMismatch));
}

#[test]
fn a_tampered_signature_fails_authentication_on_either_side() {
    let pki = Pki::new();
    let suites = Phase1Policy::default().suites;
    let flip_sig = |plain: &mut [u8], p: &[(PayloadType, std::ops::Range<usize>)]| {
        plain[body(p, PayloadType::SIG).start + 17] ^= 0x01;
    };
    let (i, r) = (
        cert_config(pki.client_credentials(), suites.clone()),
        cert_config(pki.server_credentials(), suites),
    );
    let err = cert_handshake(&i, &r, 36, flip_sig, keep).unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::AuthenticationFailed));
    assert_eq!(err.1.notify(), Some(NotifyType::AUTHENTICATION_FAILED));
    let err = cert_handshake(&i, &r, 37, keep, flip_sig).unwrap_err();
    assert_eq!(err, (Side::Initiator, Refusal::AuthenticationFailed));
    // A changed ID (still naming nothing the certificate names) is an ID mismatch, and a CERT
    // payload of another encoding is refused as such.
    let change_id = |plain: &mut [u8], p: &[(PayloadType, std::ops::Range<usize>)]| {
        plain[body(p, PayloadType::ID).end - 1] ^= 0x01;
    };
    let err = cert_handshake(&i, &r, 38, change_id, keep).unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::IdMismatch));
    let pgp = |plain: &mut [u8], p: &[(PayloadType, std::ops::Range<usize>)]| {
        plain[body(p, PayloadType::CERT).start] = 2; // PGP certificate (RFC 2408 §3.9)
    };
    let err = cert_handshake(&i, &r, 39, pgp, keep).unwrap_err();
    assert_eq!(err, (Side::Responder, Refusal::CertTypeUnsupported));
    assert_eq!(err.1.notify(), Some(NotifyType::CERT_TYPE_UNSUPPORTED));
}

#[test]
fn certificate_requests_name_our_ca_in_messages_3_and_4() {
    let pki = Pki::new();
    let suites = Phase1Policy::default().suites;
    let (ic, rc) = (
        cert_config(pki.client_credentials(), suites.clone()),
        cert_config(pki.server_credentials(), suites),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    let (ipath, rpath) = paths(false);
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (i1, n) = initiate(&ic, ipath, &mut rng, &mut a).unwrap();
    let (r1, m) = respond(&rc, rpath, &a[..n], &mut rng, &mut b).unwrap();
    let (_i2, n) = i1.on_choice(&b[..m], &mut rng, &mut a).unwrap();
    let (_r2, m) = r1.on_key_exchange(&a[..n], &mut rng, &mut b).unwrap();
    let expected = [&[4u8][..], &subject(&pki.ca)].concat();
    for message in [&a[..n], &b[..m]] {
        let h = Header::new_checked(message).unwrap();
        let crs: Vec<_> = collect(h.next_payload(), h.body())
            .unwrap()
            .into_iter()
            .filter(|p| p.kind == PayloadType::CR)
            .map(|p| p.body.to_vec())
            .collect();
        assert_eq!(crs, vec![expected.clone()]);
    }
}

/// A responder whose keys depend on the caller's address.
fn table_config(entries: &[(&str, Option<&str>, &str)], default: Option<&str>) -> Phase1Config {
    let mut table = PskTable::new();
    table.set_default(default.map(|d| Secret::new(d.as_bytes())));
    for (peer, id, key) in entries {
        table
            .insert(PskEntry {
                peer: peer.parse().unwrap(),
                id: id.map(|i| i.parse().unwrap()),
                secret: Secret::new(key.as_bytes()),
            })
            .unwrap();
    }
    Phase1Config {
        policy: Phase1Policy::default(),
        auth: Authentication::PreSharedKeys(Arc::new(table)),
    }
}

/// Messages 1–5 from `client` (whose own address is its ID) to the responder; returns the
/// responder's verdict on message 5, with the states to go on.
fn to_message_5(
    initiator: &Phase1Config,
    responder: &Phase1Config,
    client: &str,
    seed: u64,
) -> Result<(AuthSent, AwaitAuth, Vec<u8>), Refusal> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let client: SocketAddr = client.parse().unwrap();
    let server: SocketAddr = "2.2.2.2:500".parse().unwrap();
    let ipath = Path {
        local: client,
        remote: server,
    };
    let rpath = Path {
        local: server,
        remote: client,
    };
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (i1, n) = initiate(initiator, ipath, &mut rng, &mut a)?;
    let (r1, m) = respond(responder, rpath, &a[..n], &mut rng, &mut b)?;
    let (mut i2, n) = i1.on_choice(&b[..m], &mut rng, &mut a)?;
    let (r2, m) = r1.on_key_exchange(&a[..n], &mut rng, &mut b)?;
    let (i3, n) = i2.on_key_exchange(&b[..m], &mut a)?;
    Ok((i3, r2, a[..n].to_vec()))
}

fn table_handshake(
    initiator: &Phase1Config,
    responder: &Phase1Config,
    client: &str,
    seed: u64,
) -> Result<(Phase1Sa, Phase1Sa), Refusal> {
    let (i3, r2, m5) = to_message_5(initiator, responder, client, seed)?;
    let mut b = [0u8; 4096];
    let (rsa, m) = r2.on_auth(&m5, &mut b, std::time::UNIX_EPOCH)?;
    let isa = i3.on_auth(&b[..m], std::time::UNIX_EPOCH)?;
    Ok((isa, rsa))
}

#[test]
fn the_responder_picks_the_key_of_the_callers_address() {
    let responder = table_config(
        &[
            ("10.0.0.2", None, "key-of-2"),
            ("10.0.0.0/24", None, "key-of-the-lan"),
            ("2001:db8::/64", None, "key-of-v6"),
        ],
        Some("default-key"),
    );
    let suites = Phase1Policy::default().suites;
    for (seed, client, key) in [
        (1, "10.0.0.2:500", "key-of-2"),
        (2, "10.0.0.3:500", "key-of-the-lan"),
        (3, "192.0.2.9:4500", "default-key"),
        (4, "[2001:db8::7]:500", "key-of-v6"),
    ] {
        let (isa, rsa) = table_handshake(&config(key, suites.clone()), &responder, client, seed)
            .unwrap_or_else(|e| panic!("{client} with {key}: {e}"));
        assert_eq!(isa.keys.skeyid_d(), rsa.keys.skeyid_d());
    }
    // Another peer's key (valid elsewhere in the table) is the wrong key from this address.
    assert_eq!(
        table_handshake(&config("key-of-2", suites), &responder, "10.0.0.3:500", 5).unwrap_err(),
        Refusal::AuthenticationFailed
    );
}

#[test]
fn an_address_without_a_key_gets_no_answer() {
    let responder = table_config(&[("10.0.0.0/24", None, "lan")], None);
    let err = table_handshake(
        &config("lan", Phase1Policy::default().suites),
        &responder,
        "192.0.2.1:500",
        6,
    )
    .unwrap_err();
    assert_eq!(err, Refusal::NoPreSharedKey);
    assert_eq!(err.notify(), None, "nothing is sent back");
    // Nor can an initiator start towards a responder it has no key for.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let path = Path {
        local: "10.0.0.2:500".parse().unwrap(),
        remote: "192.0.2.1:500".parse().unwrap(),
    };
    assert_eq!(
        initiate(&responder, path, &mut rng, &mut [0u8; 2048]).unwrap_err(),
        Refusal::NoPreSharedKey
    );
}

#[test]
fn an_id_the_entry_does_not_name_is_refused_and_the_initiator_is_told() {
    let responder = table_config(
        &[
            ("10.0.0.2", Some("10.0.0.2"), "k2"),
            ("10.0.0.3", Some("ip:10.9.9.9"), "k3"),
        ],
        None,
    );
    let suites = Phase1Policy::default().suites;
    table_handshake(&config("k2", suites.clone()), &responder, "10.0.0.2:500", 7)
        .expect("the ID the entry names");
    let (i3, r2, m5) = to_message_5(&config("k3", suites), &responder, "10.0.0.3:500", 8).unwrap();
    let mut b = [0u8; 4096];
    let refusal = r2.on_auth(&m5, &mut b, std::time::UNIX_EPOCH).unwrap_err();
    assert_eq!(refusal, Refusal::IdMismatch);
    assert_eq!(refusal.notify(), Some(NotifyType::INVALID_ID_INFORMATION));
    // The protected notify: the initiator decrypts it with the phase-1 keys and stops.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let n = r2
        .refusal_notify(&m5, refusal, &mut rng, &mut b)
        .expect("a notify");
    let h = Header::new_checked(&b[..n]).unwrap();
    assert_eq!(h.exchange_type(), ExchangeType::INFORMATIONAL);
    assert!(h.is_encrypted());
    assert_eq!(
        i3.on_auth(&b[..n], std::time::UNIX_EPOCH).unwrap_err(),
        Refusal::IdMismatch
    );
    // A forged notify (HASH(1) broken) is not believed.
    let mut forged = b[..n].to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_ne!(
        i3.on_auth(&forged, std::time::UNIX_EPOCH).unwrap_err(),
        Refusal::IdMismatch
    );
    assert!(
        r2.refusal_notify(&m5, Refusal::Unexpected, &mut rng, &mut b)
            .is_none()
    );
}

#[test]
fn the_initiator_checks_the_responders_id_against_its_entry() {
    let server_ok = table_config(&[("2.2.2.2", Some("2.2.2.2"), "k")], None);
    let server_other = table_config(&[("2.2.2.2", Some("vpn.example.com"), "k")], None);
    let responder = config("k", Phase1Policy::default().suites);
    table_handshake(&server_ok, &responder, "10.0.0.2:500", 10).expect("its address is its ID");
    assert_eq!(
        table_handshake(&server_other, &responder, "10.0.0.2:500", 11).unwrap_err(),
        Refusal::IdMismatch
    );
}
