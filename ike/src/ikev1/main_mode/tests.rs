use super::*;
use crate::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

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
