//! Known answers from real exchanges: strongSwan (client) against strongSwan and Libreswan
//! servers, captured by the interop harness with every key logged (`ike/testdata/`).

use super::keys::*;
use crate::crypto::{Cipher, CipherAlgorithm, HashAlgorithm, PrfAlgorithm};
use crate::wire::{Cookie, HEADER_LEN, Header, PayloadType, Payloads};
use std::collections::HashMap;

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim().trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}: {s:?}")))
        .collect()
}

fn testdata(name: &str) -> String {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys(sample: &str) -> HashMap<String, String> {
    testdata(&format!("{sample}-keys.txt"))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn messages(file: &str) -> Vec<(char, Vec<u8>)> {
    testdata(file)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (dir, hex) = l.split_once("> ")?;
            Some((dir.chars().next()?, unhex(hex)))
        })
        .collect()
}

/// Total length of the payload chain at the start of `body` (the rest is padding).
fn chain_len(first: PayloadType, body: &[u8]) -> usize {
    let mut len = 0;
    for p in Payloads::new(first, body) {
        len += p.unwrap().body.len() + 4;
    }
    len
}

struct Sample {
    k: HashMap<String, String>,
    prf: PrfAlgorithm,
    hash: HashAlgorithm,
}

impl Sample {
    fn load(name: &str) -> Self {
        let k = keys(name);
        let (prf, hash) = match k["ike_hash_prf"].as_str() {
            "HMAC-SHA1" => (PrfAlgorithm::HmacSha1, HashAlgorithm::Sha1),
            "HMAC-SHA2-256" => (PrfAlgorithm::HmacSha256, HashAlgorithm::Sha256),
            other => panic!("unexpected prf {other}"),
        };
        Self { k, prf, hash }
    }

    fn v(&self, key: &str) -> Vec<u8> {
        unhex(self.k.get(key).unwrap_or_else(|| panic!("{key} missing")))
    }

    fn cookie(&self, key: &str) -> Cookie {
        Cookie(self.v(key).try_into().unwrap())
    }

    fn phase1(&self) -> Phase1Keys {
        let (ni, nr, gxy) = (self.v("ni_b"), self.v("nr_b"), self.v("dh_shared_secret"));
        Phase1Keys::derive(&Phase1Inputs {
            prf: self.prf,
            auth: Phase1Auth::PreSharedKey(b"interop-test-psk"),
            ni: &ni,
            nr: &nr,
            gxy: &gxy,
            cky_i: self.cookie("cky_i"),
            cky_r: self.cookie("cky_r"),
            cipher_key_len: 32,
        })
    }
}

fn check(sample: &str) {
    let s = Sample::load(sample);
    let keys = s.phase1();
    assert_eq!(
        keys.skeyid().expose(),
        &s.v("skeyid")[..],
        "{sample}: SKEYID"
    );
    assert_eq!(
        keys.skeyid_d().expose(),
        &s.v("skeyid_d")[..],
        "{sample}: SKEYID_d"
    );
    assert_eq!(
        keys.skeyid_a().expose(),
        &s.v("skeyid_a")[..],
        "{sample}: SKEYID_a"
    );
    assert_eq!(
        keys.skeyid_e().expose(),
        &s.v("skeyid_e")[..],
        "{sample}: SKEYID_e"
    );
    assert_eq!(
        keys.encryption_key().expose(),
        &s.v("ka")[..],
        "{sample}: Ka (Appendix B)"
    );

    let (gxi, gxr) = (s.v("g_xi"), s.v("g_xr"));
    assert_eq!(
        phase1_iv(s.hash, &gxi, &gxr, 16),
        s.v("phase1_iv"),
        "{sample}: phase-1 IV"
    );
    let sai_b = s.v("sai_b");
    let common = Phase1HashInputs {
        initiator: true,
        gxi: &gxi,
        gxr: &gxr,
        cky_i: s.cookie("cky_i"),
        cky_r: s.cookie("cky_r"),
        sai_b: &sai_b,
        id_b: &[],
    };
    let idii = s.v("idii_b");
    let hash_i = keys.phase1_hash(&Phase1HashInputs {
        id_b: &idii,
        ..common
    });
    assert_eq!(hash_i.expose(), &s.v("hash_i")[..], "{sample}: HASH_I");
    let idir = s.v("idir_b");
    let hash_r = keys.phase1_hash(&Phase1HashInputs {
        initiator: false,
        id_b: &idir,
        ..common
    });
    assert_eq!(hash_r.expose(), &s.v("hash_r")[..], "{sample}: HASH_R");

    // Main Mode 5 decrypts with Ka and the phase-1 IV to the captured plaintext; Main Mode 6
    // with the last ciphertext block of message 5.
    let wire = messages(&format!("{sample}-isakmp.hex"));
    let plain = messages(&format!("{sample}-isakmp-decrypted.hex"));
    let cipher = Cipher::new(CipherAlgorithm::AesCbc256, keys.encryption_key().expose()).unwrap();
    let encrypted: Vec<&Vec<u8>> = wire
        .iter()
        .map(|(_, m)| m)
        .filter(|m| Header::new_checked(&m[..]).unwrap().is_encrypted())
        .collect();
    let mut iv = phase1_iv(s.hash, &gxi, &gxr, 16);
    for (i, message) in encrypted.iter().take(2).enumerate() {
        let mut body = message[HEADER_LEN..].to_vec();
        let next_iv = body[body.len() - 16..].to_vec();
        cipher.decrypt_cbc(&iv, &mut body).unwrap();
        assert_eq!(body, plain[i].1, "{sample}: Main Mode message {}", i + 5);
        iv = next_iv;
    }
    // Quick Mode: its own IV from the last phase-1 block and the message ID.
    let mid = u32::from_str_radix(s.k["qm_mid"].trim_start_matches("0x"), 16).unwrap();
    let qm_iv = exchange_iv(s.hash, &iv, mid, 16);
    assert_eq!(qm_iv, s.v("qm_iv"), "{sample}: Quick Mode IV");
    let mut qm1 = encrypted[2][HEADER_LEN..].to_vec();
    cipher.decrypt_cbc(&qm_iv, &mut qm1).unwrap();
    assert_eq!(qm1, plain[2].1, "{sample}: Quick Mode 1 plaintext");

    // HASH(1) = prf(SKEYID_a, M-ID | everything after the HASH payload), HASH(2) adds Ni_b,
    // HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b) (RFC 2409 §5.5).
    let mid_b = mid.to_be_bytes();
    let hash_payload_len = 4 + s.prf.output_len();
    let end = chain_len(PayloadType::HASH, &qm1);
    let hash1 = keys.hash_a(&[&mid_b, &qm1[hash_payload_len..end]]);
    assert_eq!(
        hash1.expose(),
        &s.v("qm_hash1")[..],
        "{sample}: Quick Mode HASH(1)"
    );
    let qm2 = &plain[3].1;
    let end = chain_len(PayloadType::HASH, qm2);
    let (ni, nr) = (s.v("qm_ni_b"), s.v("qm_nr_b"));
    let hash2 = keys.hash_a(&[&mid_b, &ni, &qm2[hash_payload_len..end]]);
    assert_eq!(
        hash2.expose(),
        &s.v("qm_hash2")[..],
        "{sample}: Quick Mode HASH(2)"
    );
    let hash3 = keys.hash_a(&[&[0], &mid_b, &ni, &nr]);
    assert_eq!(
        hash3.expose(),
        &s.v("qm_hash3")[..],
        "{sample}: Quick Mode HASH(3)"
    );

    // KEYMAT per direction: encryption key then integrity key, keyed by that SA's SPI.
    for dir in ["out", "in"] {
        let spi = u32::from_str_radix(s.k[&format!("esp_{dir}_spi")].trim_start_matches("0x"), 16)
            .unwrap();
        let want = s.v(&format!("esp_{dir}_keymat"));
        let keymat = keys.keymat(None, 3, spi.to_be_bytes(), &ni, &nr, want.len());
        assert_eq!(keymat.expose(), &want[..], "{sample}: KEYMAT {dir}");
    }
}

#[test]
fn strongswan_windows10_profile_key_schedule() {
    check("strongswan-server-windows10");
}

#[test]
fn libreswan_linux_nm_key_schedule() {
    check("libreswan-server-linux-nm");
}

#[test]
fn libreswan_natt_key_schedule() {
    check("libreswan-server-natt");
}

#[test]
fn every_captured_message_and_plaintext_parses() {
    for sample in [
        "strongswan-server-windows10",
        "libreswan-server-linux-nm",
        "libreswan-server-natt",
    ] {
        let wire = messages(&format!("{sample}-isakmp.hex"));
        let plain = messages(&format!("{sample}-isakmp-decrypted.hex"));
        let mut encrypted = 0;
        for (_, m) in &wire {
            let h = Header::new_checked(&m[..]).unwrap();
            for len in 0..m.len() {
                assert!(
                    Header::new_checked(&m[..len]).is_err(),
                    "{sample}: accepted a {len}-byte prefix"
                );
            }
            if h.is_encrypted() {
                encrypted += 1;
                continue;
            }
            let payloads: Vec<_> = Payloads::validate(h.next_payload(), h.body())
                .unwrap()
                .collect();
            assert!(!payloads.is_empty());
            for p in payloads.into_iter().flatten() {
                if p.kind == PayloadType::SA {
                    crate::wire::SecurityAssociation::parse(p.body).unwrap();
                }
            }
        }
        assert_eq!(encrypted, plain.len(), "{sample}");
        // Plaintexts begin with HASH (Quick Mode) or ID (Main Mode 5/6).
        for (_, p) in &plain {
            let first = if p[0] == 0 || p[0] == 1 {
                PayloadType::HASH
            } else {
                PayloadType::ID
            };
            let _ = first;
            assert!(
                Payloads::validate(PayloadType::HASH, p).is_ok()
                    || Payloads::validate(PayloadType::ID, p).is_ok()
            );
        }
    }
}

/// Our Quick Mode responder accepts strongSwan's real message 1 (decrypted with the IV chain it
/// computes itself), verifies HASH(1), and picks the transform the real server picked.
#[test]
fn our_quick_mode_responder_accepts_the_captured_client_message() {
    use crate::crypto::{DhGroup, IntegrityAlgorithm};
    use crate::ikev1::main_mode::Phase1Sa;
    use crate::ikev1::phase2::{Encapsulation, Phase2Policy};
    use crate::ikev1::proposal::Phase1Suite;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;
    for (sample, group, nat) in [
        ("strongswan-server-windows10", DhGroup::Modp1024, false),
        ("libreswan-server-linux-nm", DhGroup::Modp2048, false),
    ] {
        let _ = nat;
        let s = Sample::load(sample);
        let keys = s.phase1();
        let wire = messages(&format!("{sample}-isakmp.hex"));
        let encrypted: Vec<&Vec<u8>> = wire
            .iter()
            .map(|(_, m)| m)
            .filter(|m| Header::new_checked(&m[..]).unwrap().is_encrypted())
            .collect();
        let mm6 = encrypted[1];
        let last_block = mm6[mm6.len() - 16..].to_vec();
        let suite = Phase1Suite {
            cipher: CipherAlgorithm::AesCbc256,
            hash: s.hash,
            group,
        };
        let sa = Phase1Sa::from_known_keys(
            s.cookie("cky_i"),
            s.cookie("cky_r"),
            suite,
            keys,
            last_block,
        );
        let mut out = [0u8; 2048];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (_, len) = crate::ikev1::quick_mode::respond(
            &sa,
            &Phase2Policy::default(),
            encrypted[2],
            0x1234_5678,
            &mut rng,
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{sample}: {e}"));
        assert!(len > 28);
        // The real server chose AES-CBC-256 with HMAC-SHA1-96, transport mode.
        let policy = Phase2Policy::default();
        let h = Header::new_checked(&encrypted[2][..]).unwrap();
        let opened =
            crate::ikev1::protected::open(&sa, encrypted[2], &sa.exchange_iv(h.message_id()))
                .unwrap();
        let payloads = opened
            .verified(&sa, &[&h.message_id().0.to_be_bytes()])
            .unwrap();
        let sa_body = payloads
            .iter()
            .find(|p| p.kind == PayloadType::SA)
            .unwrap()
            .body;
        let offer = crate::wire::SecurityAssociation::parse(sa_body).unwrap();
        let choice = crate::ikev1::phase2::choose(&policy, &offer, None).unwrap();
        assert_eq!(choice.transform.cipher(), CipherAlgorithm::AesCbc256);
        assert_eq!(
            choice.transform.integrity(),
            Some(IntegrityAlgorithm::HmacSha1_96)
        );
        assert_eq!(choice.encapsulation, Encapsulation::Transport);
    }
}

/// The whole chain against real traffic: our key schedule derives KEYMAT from the logged DH
/// secret and the captured nonces, and our ESP opens the captured packets to the exact UDP/L2TP
/// bytes tshark shows.
#[test]
fn captured_esp_packets_open_with_keys_we_derive() {
    use crate::crypto::IntegrityAlgorithm;
    use crate::esp::{IpProtocol, Sa, SaKeys, Spi, Transform};
    for sample in [
        "strongswan-server-windows10",
        "libreswan-server-linux-nm",
        "libreswan-server-natt",
    ] {
        let s = Sample::load(sample);
        let keys = s.phase1();
        let (ni, nr) = (s.v("qm_ni_b"), s.v("qm_nr_b"));
        let transform = Transform::new(
            CipherAlgorithm::AesCbc256,
            Some(IntegrityAlgorithm::HmacSha1_96),
        )
        .unwrap();
        let spi = |dir: &str| {
            u32::from_str_radix(s.k[&format!("esp_{dir}_spi")].trim_start_matches("0x"), 16)
                .unwrap()
        };
        // i> packets travel on the client's outbound SA, r> on its inbound SA.
        let mut sas = Vec::new();
        for dir in ["out", "in"] {
            let keymat = keys.keymat(None, 3, spi(dir).to_be_bytes(), &ni, &nr, 52);
            let (encryption, integrity) = keymat.expose().split_at(32);
            sas.push(
                Sa::inbound(
                    Spi(spi(dir)),
                    transform,
                    SaKeys {
                        encryption,
                        integrity,
                    },
                )
                .unwrap(),
            );
        }
        let packets = messages(&format!("{sample}-esp.hex"));
        let plain = messages(&format!("{sample}-esp-plain.hex"));
        assert_eq!(packets.len(), 6);
        for ((dir, packet), (_, expected)) in packets.iter().zip(&plain) {
            let sa = &mut sas[usize::from(*dir == 'r')];
            let mut bytes = packet.clone();
            let opened = sa
                .open(&mut bytes)
                .unwrap_or_else(|e| panic!("{sample}: {e:?}"));
            assert_eq!(opened.next_header, IpProtocol(17), "{sample}: UDP inside");
            assert_eq!(
                &bytes[opened.payload.clone()],
                &expected[..],
                "{sample}: inner UDP + L2TP"
            );
            // The inner UDP ports are L2TP's 1701 on both ends.
            assert_eq!(&bytes[opened.payload][..4], &[0x06, 0xa5, 0x06, 0xa5]);
        }
    }
}
