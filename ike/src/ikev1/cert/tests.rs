use super::*;
use crate::ikev1::test_pki::{Key, Leaf, Pki, ca, subject, wall_clock};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyUsagePurpose, date_time_ymd};
use std::time::Duration;

fn dn_id(cert: &[u8]) -> PeerId {
    PeerId {
        id_type: IdType::DER_ASN1_DN,
        data: subject(cert),
    }
}

fn id(id_type: IdType, data: &[u8]) -> PeerId {
    PeerId {
        id_type,
        data: data.to_vec(),
    }
}

#[test]
fn a_certified_peer_verifies_by_dn_and_by_subject_alt_name() {
    let pki = Pki::new();
    let server = pki.server_credentials();
    let key = server
        .verify_peer(&[&pki.client], &dn_id(&pki.client), wall_clock())
        .unwrap();
    assert_eq!(
        &key,
        RsaPrivateKey::from_pkcs8(&Key::Client.der())
            .unwrap()
            .public_key()
    );
    for ok in [
        id(IdType::USER_FQDN, b"client1@example.com"),
        id(IdType::USER_FQDN, b"Client1@Example.COM"),
    ] {
        assert!(
            server
                .verify_peer(&[&pki.client], &ok, wall_clock())
                .is_ok()
        );
    }
    // The client accepts only the server's DN, and the server certificate also names its
    // DNS name and address.
    let any = Certificates::new(
        vec![pki.client.clone()],
        &Key::Client.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    )
    .unwrap();
    for ok in [
        id(IdType::FQDN, b"vpn.example.com"),
        id(IdType::IPV4_ADDR, &[2, 2, 2, 2]),
        dn_id(&pki.server),
    ] {
        assert!(any.verify_peer(&[&pki.server], &ok, wall_clock()).is_ok());
    }
}

#[test]
fn an_id_the_certificate_does_not_name_is_refused() {
    let pki = Pki::new();
    let server = pki.server_credentials();
    for bad in [
        id(IdType::USER_FQDN, b"other@example.com"),
        id(IdType::FQDN, b"client1"),
        id(IdType::IPV4_ADDR, &[10, 0, 0, 2]),
        dn_id(&pki.server),
        id(IdType::KEY_ID, b"client1"),
    ] {
        assert_eq!(
            server.verify_peer(&[&pki.client], &bad, wall_clock()),
            Err(Refusal::IdMismatch),
            "{bad:?}"
        );
    }
    // The client's policy admits only the server's DN: a certified ID of another kind is
    // refused too.
    let client = pki.client_credentials();
    assert_eq!(
        client.verify_peer(
            &[&pki.server],
            &id(IdType::FQDN, b"vpn.example.com"),
            wall_clock()
        ),
        Err(Refusal::IdMismatch)
    );
}

#[test]
fn certificates_from_another_ca_are_untrusted() {
    let pki = Pki::new();
    let server = pki.server_credentials();
    // Same CA name, different key: the signature does not verify.
    let (_, impostor) = ca("l2sec test CA", Key::Rogue);
    let forged = Leaf::client().issue(&impostor, Key::Rogue);
    // A CA we do not know at all.
    let (_, other) = ca("some other CA", Key::Rogue);
    let foreign = Leaf::client().issue(&other, Key::Rogue);
    for cert in [forged, foreign] {
        assert_eq!(
            server.verify_peer(&[&cert], &dn_id(&cert), wall_clock()),
            Err(Refusal::UntrustedCertificate)
        );
    }
}

#[test]
fn validity_is_checked_at_the_callers_wall_clock() {
    let pki = Pki::new();
    let server = pki.server_credentials();
    let expired = Leaf {
        not_after: (2025, 3, 1),
        ..Leaf::client()
    }
    .issue(&pki.ca_params, Key::Ca);
    assert_eq!(
        server.verify_peer(&[&expired], &dn_id(&expired), wall_clock()),
        Err(Refusal::CertificateExpired)
    );
    // Valid from 2025-01-01 to 2026-01-01: before and after are refused.
    let id = dn_id(&pki.client);
    let day = Duration::from_secs(86_400);
    assert_eq!(
        server.verify_peer(&[&pki.client], &id, wall_clock() - 200 * day),
        Err(Refusal::CertificateExpired)
    );
    assert_eq!(
        server.verify_peer(&[&pki.client], &id, wall_clock() + 300 * day),
        Err(Refusal::CertificateExpired)
    );
    assert_eq!(
        server.verify_peer(&[&pki.client], &id, UNIX_EPOCH),
        Err(Refusal::CertificateExpired),
        "an unset clock fails closed"
    );
}

#[test]
fn a_key_usage_without_signing_is_refused() {
    let pki = Pki::new();
    let cert = Leaf {
        key_usages: vec![KeyUsagePurpose::KeyEncipherment],
        ..Leaf::client()
    }
    .issue(&pki.ca_params, Key::Ca);
    assert_eq!(
        pki.server_credentials()
            .verify_peer(&[&cert], &dn_id(&cert), wall_clock()),
        Err(Refusal::CertificateInvalid)
    );
}

#[test]
fn garbage_or_missing_certificates_are_invalid() {
    let pki = Pki::new();
    let server = pki.server_credentials();
    let id = dn_id(&pki.client);
    assert_eq!(
        server.verify_peer(&[], &id, wall_clock()),
        Err(Refusal::CertificateInvalid)
    );
    for len in (0..pki.client.len()).step_by(7) {
        assert_eq!(
            server.verify_peer(&[&pki.client[..len]], &id, wall_clock()),
            Err(Refusal::CertificateInvalid),
            "{len}"
        );
    }
    let five = [&pki.client[..]; 5];
    assert_eq!(
        server.verify_peer(&five, &id, wall_clock()),
        Err(Refusal::CertificateInvalid)
    );
}

#[test]
fn an_intermediate_ca_sent_by_the_peer_completes_the_path() {
    let pki = Pki::new();
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "l2sec intermediate");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2030, 1, 1);
    let root = Issuer::from_params(&pki.ca_params, Key::Ca.pair());
    let intermediate = p
        .signed_by(&Key::Rogue.pair(), &root)
        .unwrap()
        .der()
        .to_vec();
    let leaf = Leaf::client().issue(&p, Key::Rogue);
    let server = pki.server_credentials();
    assert!(
        server
            .verify_peer(&[&leaf, &intermediate], &dn_id(&leaf), wall_clock())
            .is_ok()
    );
    assert_eq!(
        server.verify_peer(&[&leaf], &dn_id(&leaf), wall_clock()),
        Err(Refusal::UntrustedCertificate),
        "without the intermediate there is no path"
    );
    // A leaf cannot stand in for a CA: the client certificate is no issuer.
    let under_leaf = Leaf::server().issue(&p, Key::Rogue);
    assert_eq!(
        server.verify_peer(
            &[&under_leaf, &pki.client],
            &dn_id(&under_leaf),
            wall_clock()
        ),
        Err(Refusal::UntrustedCertificate)
    );
}

#[test]
fn configuration_errors_are_typed_and_the_key_stays_secret() {
    let pki = Pki::new();
    let mismatch = Certificates::new(
        vec![pki.server.clone()],
        &Key::Client.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    );
    assert_eq!(mismatch.unwrap_err(), CertificateError::KeyMismatch);
    let none = Certificates::new(
        vec![],
        &Key::Client.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    );
    assert_eq!(none.unwrap_err(), CertificateError::NoCertificate);
    let no_ca = Certificates::new(
        vec![pki.client.clone()],
        &Key::Client.der(),
        vec![],
        PeerPolicy::AnyCertified,
    );
    assert_eq!(no_ca.unwrap_err(), CertificateError::NoTrustAnchor);
    let creds = Certificates::new(
        vec![pki.client.clone()],
        &Key::Client.der(),
        vec![pki.ca.clone()],
        PeerPolicy::AnyCertified,
    )
    .unwrap();
    assert_eq!(creds.local_id(), &dn_id(&pki.client));
    let debug = format!("{creds:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    let creds = creds
        .with_local_id(id(IdType::USER_FQDN, b"client1@example.com"))
        .unwrap();
    assert_eq!(creds.local_id().id_type, IdType::USER_FQDN);
    assert_eq!(
        creds
            .with_local_id(id(IdType::USER_FQDN, b"mallory@example.com"))
            .unwrap_err(),
        CertificateError::IdNotInCertificate
    );
}
