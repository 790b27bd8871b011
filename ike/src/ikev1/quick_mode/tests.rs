use super::*;
use crate::crypto::{CipherAlgorithm, DhGroup, IntegrityAlgorithm};
use crate::esp::{Sa, Spi};
use crate::ikev1::keys::Secret as Psk;
use crate::ikev1::main_mode::{self, Path, Phase1Config};
use crate::ikev1::proposal::Phase1Policy;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

const CLIENT: &str = "10.0.0.2:500";
const SERVER: &str = "2.2.2.2:500";

fn phase1(nat: bool, rng: &mut ChaCha8Rng) -> (Phase1Sa, Phase1Sa, Path, Path) {
    let config = Phase1Config {
        policy: Phase1Policy::default(),
        auth: main_mode::Authentication::PreSharedKey(Psk::new(b"k")),
    };
    let client: SocketAddr = CLIENT.parse().unwrap();
    let server: SocketAddr = SERVER.parse().unwrap();
    let seen: SocketAddr = if nat {
        "198.51.100.7:4500".parse().unwrap()
    } else {
        client
    };
    let (ipath, rpath) = (
        Path {
            local: client,
            remote: server,
        },
        Path {
            local: server,
            remote: seen,
        },
    );
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (i1, n) = main_mode::initiate(&config, ipath, rng, &mut a).unwrap();
    let (r1, m) = main_mode::respond(&config, rpath, &a[..n], rng, &mut b).unwrap();
    let (mut i2, n) = i1.on_choice(&b[..m], rng, &mut a).unwrap();
    let (r2, m) = r1.on_key_exchange(&a[..n], rng, &mut b).unwrap();
    let (i3, n) = i2.on_key_exchange(&b[..m], &mut a).unwrap();
    let (rsa, m) = r2.on_auth(&a[..n], &mut b, std::time::UNIX_EPOCH).unwrap();
    (
        i3.on_auth(&b[..m], std::time::UNIX_EPOCH).unwrap(),
        rsa,
        ipath,
        rpath,
    )
}

fn quick(
    isa: &Phase1Sa,
    rsa: &Phase1Sa,
    ipath: Path,
    ipolicy: &Phase2Policy,
    rpolicy: &Phase2Policy,
    rng: &mut ChaCha8Rng,
) -> Result<(ChildSa, ChildSa), Refusal> {
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (mut i, n) = initiate(
        isa,
        ipolicy,
        ipath.local,
        ipath.remote,
        0x1111_2222,
        rng,
        &mut a,
    )?;
    let (r, m) = respond(rsa, rpolicy, &a[..n], 0x3333_4444, rng, &mut b)?;
    let (ichild, n) = i.on_reply(isa, &b[..m], &mut a)?;
    let rchild = r.on_final(rsa, &a[..n])?;
    Ok((ichild, rchild))
}

#[test]
fn esp_sas_match_across_the_pair_and_carry_traffic() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for t in Phase2Policy::default().transforms {
        let (isa, rsa, ipath, _) = phase1(false, &mut rng);
        let policy = Phase2Policy {
            transforms: vec![t],
            ..Phase2Policy::default()
        };
        let (ic, rc) = quick(
            &isa,
            &rsa,
            ipath,
            &policy,
            &Phase2Policy::default(),
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        assert_eq!((ic.transform, rc.transform), (t, t));
        assert_eq!(
            (ic.inbound_spi, ic.outbound_spi),
            (0x1111_2222, 0x3333_4444)
        );
        assert_eq!(
            (rc.inbound_spi, rc.outbound_spi),
            (0x3333_4444, 0x1111_2222)
        );
        assert_eq!(ic.outbound_keys().encryption, rc.inbound_keys().encryption);
        assert_eq!(ic.outbound_keys().integrity, rc.inbound_keys().integrity);
        assert_eq!(ic.inbound_keys().encryption, rc.outbound_keys().encryption);
        assert_ne!(ic.inbound_keys().encryption, ic.outbound_keys().encryption);
        assert_eq!(ic.encapsulation, Encapsulation::Transport);
        // A packet sealed by the initiator opens at the responder.
        let mut out = Sa::outbound(
            Spi(ic.outbound_spi),
            ic.transform,
            ic.outbound_keys(),
            &mut rng,
        )
        .unwrap();
        let mut inb = Sa::inbound(Spi(rc.inbound_spi), rc.transform, rc.inbound_keys()).unwrap();
        let mut buf = [0u8; 256];
        buf[64..76].copy_from_slice(b"l2tp payload");
        let sealed = out
            .seal(&mut buf, 64..76, crate::esp::IpProtocol(17), &mut rng)
            .unwrap();
        let mut packet = buf[sealed].to_vec();
        let opened = inb.open(&mut packet).unwrap();
        assert_eq!(&packet[opened.payload], b"l2tp payload");
    }
}

#[test]
fn pfs_and_nat_encapsulation() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (isa, rsa, ipath, _) = phase1(true, &mut rng);
    let ipolicy = Phase2Policy {
        pfs: Pfs::Group(DhGroup::Modp2048),
        ..Phase2Policy::default()
    };
    let (ic, rc) = quick(
        &isa,
        &rsa,
        ipath,
        &ipolicy,
        &Phase2Policy::default(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        ic.encapsulation,
        Encapsulation::UdpTransport(EncapsulationMode::UDP_TRANSPORT)
    );
    assert_eq!(rc.encapsulation, ic.encapsulation);
    assert_eq!(ic.outbound_keys().encryption, rc.inbound_keys().encryption);
    assert_eq!(
        rc.initiator_original_address,
        Some("10.0.0.2".parse().unwrap())
    );
    // A responder that requires a PFS group refuses an offer without one.
    let rpolicy = Phase2Policy {
        pfs: Pfs::Group(DhGroup::Modp2048),
        ..Phase2Policy::default()
    };
    assert_eq!(
        quick(
            &isa,
            &rsa,
            ipath,
            &Phase2Policy::default(),
            &rpolicy,
            &mut rng
        )
        .unwrap_err(),
        Refusal::NoProposalChosen
    );
}

#[test]
fn no_common_transform_and_forged_hash() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (isa, rsa, ipath, _) = phase1(false, &mut rng);
    let ipolicy = Phase2Policy {
        transforms: vec![
            Transform::new(
                CipherAlgorithm::TripleDesCbc,
                Some(IntegrityAlgorithm::HmacSha1_96),
            )
            .unwrap(),
        ],
        ..Phase2Policy::default()
    };
    let rpolicy = Phase2Policy {
        transforms: vec![Transform::new(CipherAlgorithm::AesGcm16_256, None).unwrap()],
        ..Phase2Policy::default()
    };
    assert_eq!(
        quick(&isa, &rsa, ipath, &ipolicy, &rpolicy, &mut rng).unwrap_err(),
        Refusal::NoProposalChosen
    );
    // A message 1 whose first block is altered fails HASH(1) or parsing, never panics.
    let mut a = [0u8; 4096];
    let (_, n) = initiate(
        &isa,
        &Phase2Policy::default(),
        ipath.local,
        ipath.remote,
        7,
        &mut rng,
        &mut a,
    )
    .unwrap();
    let mut b = [0u8; 4096];
    for i in 28..n {
        let mut m = a[..n].to_vec();
        m[i] ^= 0x40;
        assert!(
            respond(&rsa, &Phase2Policy::default(), &m, 9, &mut rng, &mut b).is_err(),
            "byte {i}"
        );
    }
}
