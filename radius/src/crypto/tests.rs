use super::*;
use crate::verify::{MessageAuthenticatorPolicy, verify_request, verify_response};
use crate::wire::{
    Attr, AttributeType, Code, Identifier, MsAttr, MsAttributeType, Packet, PacketWriter,
    VendorAttributes,
};
use hex_literal::hex;

/// The shared secret of every example in RFC 2865 §7.
const RFC2865_SECRET: &[u8] = b"xyzzy5461";

/// RFC 2865 §7.1: Access-Request for `nemo` / `arctangent` on port 3.
static RFC2865_7_1_REQUEST: [u8; 56] = hex!(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
);

/// RFC 2865 §7.1: the Access-Accept (Service-Type Login, Login-Service Telnet, Login-IP-Host).
static RFC2865_7_1_ACCEPT: [u8; 38] = hex!(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf"
    "9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
);

/// RFC 2865 §7.2: CHAP Access-Request for `flopsy` on port 20; the Request Authenticator is the
/// CHAP challenge.
static RFC2865_7_2_REQUEST: [u8; 71] = hex!(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
);

fn secret() -> Secret {
    Secret::new(RFC2865_SECRET)
}

fn attrs(packet: &'static [u8]) -> Vec<Attr<'static>> {
    crate::wire::Attributes::new(&packet[20..])
        .map(|a| Attr::parse(a.unwrap()).unwrap())
        .collect()
}

#[test]
fn rfc_2865_7_1_password_hiding_is_reproduced_byte_for_byte() {
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    let authenticator = request.authenticator();
    let mut hidden = [0u8; 16];
    let len = hide_user_password(b"arctangent", &secret(), &authenticator, &mut hidden).unwrap();
    assert_eq!(len, 16);
    assert_eq!(hidden, RFC2865_7_1_REQUEST[28..44]);

    let revealed = reveal_user_password(&hidden, &secret(), &authenticator).unwrap();
    assert_eq!(revealed.expose(), b"arctangent");
    assert_eq!(format!("{revealed:?}"), "Password(<redacted>)");
}

#[test]
fn rfc_2865_7_1_request_is_rebuilt_byte_for_byte_by_the_writer() {
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    assert_eq!(
        attrs(&RFC2865_7_1_REQUEST),
        [
            Attr::UserName(b"nemo"),
            Attr::UserPassword(&RFC2865_7_1_REQUEST[28..44]),
            Attr::NasIpAddress([192, 168, 1, 16].into()),
            Attr::NasPort(3),
        ]
    );
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_REQUEST,
        Identifier(0),
        &request.authenticator(),
    )
    .unwrap();
    w.attr(&Attr::UserName(b"nemo")).unwrap();
    w.user_password(b"arctangent", &secret()).unwrap();
    w.attr(&Attr::NasIpAddress([192, 168, 1, 16].into()))
        .unwrap();
    w.attr(&Attr::NasPort(3)).unwrap();
    let built = w.finish_request(&secret()).unwrap();
    assert_eq!(&*built, &RFC2865_7_1_REQUEST[..]);
}

#[test]
fn rfc_2865_7_1_accept_verifies_against_its_request() {
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    let accept = Packet::new_checked(&RFC2865_7_1_ACCEPT[..]).unwrap();
    assert_eq!(accept.code(), Code::ACCESS_ACCEPT);
    assert_eq!(
        verify_response(
            &accept,
            &request.authenticator(),
            &secret(),
            MessageAuthenticatorPolicy::IfPresent
        ),
        Ok(())
    );
    // The 1999 example carries no Message-Authenticator: our default policy drops it.
    assert_eq!(
        verify_response(
            &accept,
            &request.authenticator(),
            &secret(),
            MessageAuthenticatorPolicy::Required
        ),
        Err(crate::verify::VerifyError::MissingMessageAuthenticator)
    );
    // Another secret, another request, or one flipped bit: not authentic.
    let wrong = Secret::new("xyzzy5462");
    assert!(
        verify_response(
            &accept,
            &request.authenticator(),
            &wrong,
            MessageAuthenticatorPolicy::IfPresent
        )
        .is_err()
    );
    let mut other = request.authenticator();
    other.0[15] ^= 1;
    assert!(
        verify_response(
            &accept,
            &other,
            &secret(),
            MessageAuthenticatorPolicy::IfPresent
        )
        .is_err()
    );
    for bit in 0..RFC2865_7_1_ACCEPT.len() * 8 {
        let mut forged = RFC2865_7_1_ACCEPT;
        forged[bit / 8] ^= 1 << (bit % 8);
        if let Ok(p) = Packet::new_checked(&forged[..]) {
            assert!(
                verify_response(
                    &p,
                    &request.authenticator(),
                    &secret(),
                    MessageAuthenticatorPolicy::IfPresent
                )
                .is_err(),
                "bit {bit} flipped and still verified"
            );
        }
    }
}

#[test]
fn rfc_2865_7_1_accept_is_rebuilt_byte_for_byte_by_the_writer() {
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    let mut buf = [0u8; 64];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_ACCEPT,
        Identifier(0),
        &Authenticator::ZERO,
    )
    .unwrap();
    w.attr(&Attr::ServiceType(crate::wire::ServiceType::LOGIN))
        .unwrap();
    w.raw(AttributeType::LOGIN_SERVICE, &[0, 0, 0, 0]).unwrap();
    w.raw(AttributeType::LOGIN_IP_HOST, &[192, 168, 1, 3])
        .unwrap();
    let built = w
        .finish_response(&secret(), &request.authenticator())
        .unwrap();
    assert_eq!(&*built, &RFC2865_7_1_ACCEPT[..]);
}

#[test]
fn rfc_2865_7_2_chap_request_decodes_and_re_emits_byte_for_byte() {
    let request = Packet::new_checked(&RFC2865_7_2_REQUEST[..]).unwrap();
    assert_eq!(request.identifier(), Identifier(1));
    assert_eq!(
        attrs(&RFC2865_7_2_REQUEST),
        [
            Attr::UserName(b"flopsy"),
            Attr::ChapPassword {
                ident: 0x16,
                response: hex!("e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75"),
            },
            Attr::NasIpAddress([192, 168, 1, 16].into()),
            Attr::NasPort(20),
            Attr::ServiceType(crate::wire::ServiceType::FRAMED),
            Attr::FramedProtocol(crate::wire::FramedProtocol::PPP),
        ]
    );
    // Re-emitting every typed attribute gives the same bytes.
    let mut buf = [0u8; 128];
    let mut w = codec::Writer::new(&mut buf);
    for a in request.attributes() {
        Attr::parse(a.unwrap()).unwrap().emit(&mut w).unwrap();
    }
    assert_eq!(w.written(), request.attribute_bytes());
}

#[test]
fn hmac_md5_matches_rfc_2202() {
    assert_eq!(
        hmac_md5(&[0x0b; 16], &[b"Hi ", b"There"]),
        hex!("9294727a3638bb1c13f48ef8158bfc9d")
    );
    assert_eq!(
        hmac_md5(b"Jefe", &[b"what do ya want for nothing?"]),
        hex!("750c783e6ab0b503eaa86e310a5db738")
    );
    // Test case 6: a key longer than the block is hashed first.
    assert_eq!(
        hmac_md5(
            &[0xaa; 80],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
        ),
        hex!("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
    );
}

/// Message-Authenticator computed independently: HMAC-MD5 over a copy of the packet whose
/// Message-Authenticator value is zeroed, as RFC 3579 §3.2 describes it.
fn independent_message_authenticator(packet: &[u8], value_at: usize, key: &[u8]) -> [u8; 16] {
    let mut copy = packet.to_vec();
    copy[value_at..value_at + 16].fill(0);
    hmac_md5(key, &[&copy])
}

#[test]
fn message_authenticator_known_answer() {
    // An Access-Request as RFC 2865 §7.1, with Message-Authenticator first.
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_REQUEST,
        Identifier(0),
        &request.authenticator(),
    )
    .unwrap();
    w.message_authenticator().unwrap();
    w.attr(&Attr::UserName(b"nemo")).unwrap();
    w.user_password(b"arctangent", &secret()).unwrap();
    let built = w.finish_request(&secret()).unwrap().to_vec();
    assert_eq!(built[20..22], [80, 18]);
    assert_eq!(
        built[22..38],
        independent_message_authenticator(&built, 22, RFC2865_SECRET)
    );
    // Pinned, so that a change in either computation shows.
    assert_eq!(
        built[22..38],
        hex!("41 28 7e 85 c3 eb 5c f1 52 ff 4b b7 a2 1f bf 25")
    );
    let p = Packet::new_checked(&built[..]).unwrap();
    assert_eq!(
        verify_request(&p, &secret(), MessageAuthenticatorPolicy::Required),
        Ok(())
    );
    let mut forged = built.clone();
    forged[30] ^= 0x40;
    let p = Packet::new_checked(&forged[..]).unwrap();
    assert_eq!(
        verify_request(&p, &secret(), MessageAuthenticatorPolicy::Required),
        Err(crate::verify::VerifyError::MessageAuthenticator)
    );
}

#[test]
fn a_response_message_authenticator_is_keyed_on_the_request_authenticator() {
    let request = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_REJECT,
        Identifier(0),
        &Authenticator::ZERO,
    )
    .unwrap();
    w.message_authenticator().unwrap();
    w.attr(&Attr::ReplyMessage(b"no")).unwrap();
    let built = w
        .finish_response(&secret(), &request.authenticator())
        .unwrap()
        .to_vec();
    // The MAC is over the packet with the Request Authenticator in the header.
    let mut with_request_authenticator = built.clone();
    with_request_authenticator[4..20].copy_from_slice(&request.authenticator().0);
    assert_eq!(
        built[22..38],
        independent_message_authenticator(&with_request_authenticator, 22, RFC2865_SECRET)
    );
    // The Response Authenticator is computed over the finished MAC.
    assert_eq!(
        built[4..20],
        md5(&[&with_request_authenticator, RFC2865_SECRET])
    );
    let p = Packet::new_checked(&built[..]).unwrap();
    assert_eq!(
        verify_response(
            &p,
            &request.authenticator(),
            &secret(),
            MessageAuthenticatorPolicy::Required
        ),
        Ok(())
    );
}

#[test]
fn accounting_request_authenticator_follows_rfc_2866() {
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCOUNTING_REQUEST,
        Identifier(9),
        &Authenticator([0xee; 16]),
    )
    .unwrap();
    w.attr(&Attr::AcctStatusType(crate::wire::AcctStatusType::START))
        .unwrap();
    w.attr(&Attr::AcctSessionId(b"0000000100000001")).unwrap();
    let built = w.finish_request(&secret()).unwrap().to_vec();
    // MD5(Code + Identifier + Length + 16 zero octets + attributes + secret).
    let mut zeroed = built.clone();
    zeroed[4..20].fill(0);
    assert_eq!(built[4..20], md5(&[&zeroed, RFC2865_SECRET]));
    let p = Packet::new_checked(&built[..]).unwrap();
    assert_eq!(
        verify_request(&p, &secret(), MessageAuthenticatorPolicy::IfPresent),
        Ok(())
    );
    assert_eq!(
        verify_request(&p, &Secret::new("x"), MessageAuthenticatorPolicy::IfPresent),
        Err(crate::verify::VerifyError::Authenticator)
    );
}

#[test]
fn accounting_message_authenticator_is_over_a_zero_authenticator() {
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCOUNTING_REQUEST,
        Identifier(9),
        &Authenticator::ZERO,
    )
    .unwrap();
    w.attr(&Attr::AcctStatusType(crate::wire::AcctStatusType::STOP))
        .unwrap();
    w.message_authenticator().unwrap();
    let built = w.finish_request(&secret()).unwrap().to_vec();
    let mut zeroed = built.clone();
    zeroed[4..20].fill(0);
    assert_eq!(
        built[28..44],
        independent_message_authenticator(&zeroed, 28, RFC2865_SECRET)
    );
    zeroed[28..44].copy_from_slice(&built[28..44]);
    assert_eq!(built[4..20], md5(&[&zeroed, RFC2865_SECRET]));
    let p = Packet::new_checked(&built[..]).unwrap();
    assert_eq!(
        verify_request(&p, &secret(), MessageAuthenticatorPolicy::Required),
        Ok(())
    );
}

/// RFC 2548 §2.4.2 done by hand with plain MD5 calls.
fn independent_salt_encryption(key: &[u8], salt: [u8; 2], secret: &[u8], r: &[u8; 16]) -> Vec<u8> {
    let mut p = vec![u8::try_from(key.len()).unwrap()];
    p.extend_from_slice(key);
    while p.len() % 16 != 0 {
        p.push(0);
    }
    let mut out = salt.to_vec();
    let mut previous: Vec<u8> = Vec::new();
    for (i, chunk) in p.chunks(16).enumerate() {
        let b = if i == 0 {
            md5(&[secret, r, &salt])
        } else {
            md5(&[secret, &previous])
        };
        let c: Vec<u8> = chunk.iter().zip(b).map(|(p, b)| p ^ b).collect();
        out.extend_from_slice(&c);
        previous = c;
    }
    out
}

#[test]
fn mppe_key_salt_encryption_known_answer_and_round_trip() {
    let request_authenticator = Authenticator(hex!("0f403f9473978057bd83d5cb98f4227a"));
    let key: [u8; 16] = hex!("000102030405060708090a0b0c0d0e0f");
    let salt = [0x80, 0x01];
    let mut out = [0u8; 64];
    let len = encrypt_salted(&key, salt, &secret(), &request_authenticator, &mut out).unwrap();
    assert_eq!(len, 34, "salt + Key-Length + 16-octet key padded to 32");
    assert_eq!(
        out[..len],
        independent_salt_encryption(&key, salt, RFC2865_SECRET, &request_authenticator.0)[..]
    );
    // Pinned, so that a change in either computation shows.
    assert_eq!(
        out[..len],
        hex!(
            "80 01 d7 4f d7 7a 66 15 9a f1 c0 0e 26 03 ed 8f 8a 2d"
            "a1 82 14 fc d7 96 20 4e 7e 1e dd 8c 11 ca fc e2"
        )
    );
    let encrypted = EncryptedKey {
        salt,
        string: &out[2..len],
    };
    let decrypted = decrypt_salted(&encrypted, &secret(), &request_authenticator).unwrap();
    assert_eq!(decrypted.expose(), key);
    assert_eq!(format!("{decrypted:?}"), "MppeKey(<16 bytes redacted>)");

    // Every key length that fits one attribute round-trips.
    for n in 0..=200 {
        let key: Vec<u8> = (0..n).map(|i| u8::try_from(i).unwrap()).collect();
        let mut out = [0u8; 253];
        let len = encrypt_salted(
            &key,
            [0xff, 0xfe],
            &secret(),
            &request_authenticator,
            &mut out,
        )
        .unwrap();
        assert_eq!(len, salted_len(n));
        let e = EncryptedKey {
            salt: [0xff, 0xfe],
            string: &out[2..len],
        };
        assert_eq!(
            decrypt_salted(&e, &secret(), &request_authenticator)
                .unwrap()
                .expose(),
            &key[..]
        );
    }
    assert_eq!(
        encrypt_salted(&key, [0x7f, 0], &secret(), &request_authenticator, &mut out),
        Err(WriteError::BadSalt)
    );
}

#[test]
fn a_decrypted_key_length_beyond_the_string_is_refused() {
    let r = Authenticator([3; 16]);
    // Encrypt a plaintext whose Key-Length octet claims 200 octets in a 16-octet string.
    let mut plain = [0u8; 16];
    plain[0] = 200;
    let b = md5(&[RFC2865_SECRET, &r.0, &[0x80, 0]]);
    let c: Vec<u8> = plain.iter().zip(b).map(|(p, b)| p ^ b).collect();
    let e = EncryptedKey {
        salt: [0x80, 0],
        string: &c,
    };
    assert_eq!(decrypt_salted(&e, &secret(), &r), Err(Error::Encrypted));
}

#[test]
fn mppe_keys_written_into_an_accept_decrypt_with_the_request_authenticator() {
    let request_authenticator = Authenticator([0x42; 16]);
    let send: [u8; 16] = [1; 16];
    let recv: [u8; 16] = [2; 16];
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_ACCEPT,
        Identifier(3),
        &Authenticator::ZERO,
    )
    .unwrap();
    w.message_authenticator().unwrap();
    w.mppe_key(
        MsAttributeType::MS_MPPE_SEND_KEY,
        &send,
        [0x81, 1],
        &secret(),
        &request_authenticator,
    )
    .unwrap();
    w.mppe_key(
        MsAttributeType::MS_MPPE_RECV_KEY,
        &recv,
        [0x81, 2],
        &secret(),
        &request_authenticator,
    )
    .unwrap();
    let built = w
        .finish_response(&secret(), &request_authenticator)
        .unwrap()
        .to_vec();
    let p = Packet::new_checked(&built[..]).unwrap();
    let mut keys = Vec::new();
    for a in p.attributes() {
        let Attr::VendorSpecific { vendor, data } = Attr::parse(a.unwrap()).unwrap() else {
            continue;
        };
        assert_eq!(vendor, crate::wire::VendorId::MICROSOFT);
        for sub in VendorAttributes::new(data) {
            match MsAttr::parse(sub.unwrap()).unwrap() {
                MsAttr::MppeSendKey(k) | MsAttr::MppeRecvKey(k) => keys.push(
                    decrypt_salted(&k, &secret(), &request_authenticator)
                        .unwrap()
                        .expose()
                        .to_vec(),
                ),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(keys, [send.to_vec(), recv.to_vec()]);
}

#[test]
fn hidden_passwords_of_every_length_round_trip_and_long_ones_are_refused() {
    let a = Authenticator([9; 16]);
    for n in 0..=128 {
        let password: Vec<u8> = (1..=n).map(|i| u8::try_from(i).unwrap()).collect();
        let mut out = [0u8; 128];
        let len = hide_user_password(&password, &secret(), &a, &mut out).unwrap();
        assert_eq!(len, hidden_password_len(n));
        assert_eq!(len % 16, 0);
        let back = reveal_user_password(&out[..len], &secret(), &a).unwrap();
        assert_eq!(back.expose(), &password[..]);
    }
    let mut out = [0u8; 256];
    assert_eq!(
        hide_user_password(&[1; 129], &secret(), &a, &mut out),
        Err(WriteError::PasswordTooLong(129))
    );
    assert_eq!(
        reveal_user_password(&[0; 15], &secret(), &a).map(|_| ()),
        Err(Error::Encrypted)
    );
}

#[test]
fn secrets_never_print() {
    assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
}

#[test]
fn rfc_5997_status_server_example_message_authenticator_verifies() {
    let packet = hex!(
        "0c da 00 26 8a 54 f4 68 6f b3 94 c5 28 66 e3 02"
        "18 5d 06 23 50 12 5a 66 5e 2e 1e 84 11 f3 e2 43"
        "82 20 97 c8 4f a3"
    );
    let p = Packet::new_checked(&packet[..]).unwrap();
    assert_eq!(p.code(), Code::STATUS_SERVER);
    assert_eq!(
        verify_request(&p, &secret(), MessageAuthenticatorPolicy::Required),
        Ok(())
    );
}
