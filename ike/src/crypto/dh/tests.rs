use super::*;
use hex_literal::hex;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x1c3)
}

fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
        .collect()
}

fn prime_bytes(group: DhGroup) -> Vec<u8> {
    let hex = match group {
        DhGroup::Modp1024 => G2_HEX,
        DhGroup::Modp1536 => G5_HEX,
        DhGroup::Modp2048 => G14_HEX,
        DhGroup::Modp3072 => G15_HEX,
        DhGroup::Modp4096 => G16_HEX,
        DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Curve25519 => unreachable!(),
    };
    unhex(hex)
}

const MODP: [DhGroup; 5] = [
    DhGroup::Modp1024,
    DhGroup::Modp1536,
    DhGroup::Modp2048,
    DhGroup::Modp3072,
    DhGroup::Modp4096,
];

// A second transcription of the primes, as printed in the RFCs (RFC 2409 §6.2 for group 2, as
// repeated in RFC 7296 Appendix B.2; RFC 3526 §2-§5 for the others).
const RFC_GROUP_2: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE65381
    FFFFFFFF FFFFFFFF";
const RFC_GROUP_5: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA237327 FFFFFFFF FFFFFFFF";
const RFC_GROUP_14: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AACAA68 FFFFFFFF FFFFFFFF";
const RFC_GROUP_15: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A93AD2CA FFFFFFFF FFFFFFFF";
const RFC_GROUP_16: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A9210801 1A723C12 A787E6D7
    88719A10 BDBA5B26 99C32718 6AF4E23C 1A946834 B6150BDA
    2583E9CA 2AD44CE8 DBBBC2DB 04DE8EF9 2E8EFC14 1FBECAA6
    287C5947 4E6BC05D 99B2964F A090C3A2 233BA186 515BE7ED
    1F612970 CEE2D7AF B81BDD76 2170481C D0069127 D5B05AA9
    93B4EA98 8D8FDDC1 86FFB7DC 90A6C08F 4DF435C9 34063199
    FFFFFFFF FFFFFFFF";

#[test]
fn primes_match_the_rfc_text() {
    let rfc = [
        RFC_GROUP_2,
        RFC_GROUP_5,
        RFC_GROUP_14,
        RFC_GROUP_15,
        RFC_GROUP_16,
    ];
    for (group, text) in MODP.into_iter().zip(rfc) {
        assert_eq!(prime_bytes(group), unhex(text), "{group:?}");
    }
}

#[test]
fn primes_have_the_bit_length_and_shape_of_the_oakley_construction() {
    let p16 = prime_bytes(DhGroup::Modp4096);
    for group in MODP {
        let p = prime_bytes(group);
        assert_eq!(p.len(), group.public_len(), "{group:?}");
        assert_eq!(p.len() * 8, group.public_len() * 8);
        // The top bit is set (full bit length), and every prime is 2^n - 2^(n-64) - 1 + 2^64 * k:
        // the top and bottom 64 bits are all ones.
        assert_eq!(p[0] & 0x80, 0x80, "{group:?}");
        assert_eq!(&p[..8], &[0xff; 8], "{group:?}");
        assert_eq!(&p[p.len() - 8..], &[0xff; 8], "{group:?}");
        // k starts with the binary expansion of pi, shared by all groups: the first 48 bytes
        // after the top 64 bits agree with the 4096-bit prime's.
        assert_eq!(&p[8..56], &p16[8..56], "{group:?}");
        assert_eq!(&p[8..12], &hex!("C90FDAA2"), "pi = 3.243F6A88... shifted");
    }
}

#[test]
fn group_numbers_round_trip() {
    for group in DhGroup::ALL {
        assert_eq!(DhGroup::from_id(group.id()), Some(group));
    }
    assert_eq!(DhGroup::from_id(1), None);
    assert_eq!(DhGroup::from_id(24), None);
}

// Known answers computed without modpow: with x = 5, g^x = 32; with x = n (the bit length),
// 2^n mod p = 2^n - p because 2^(n-1) < p < 2^n. And a peer value of 3 gives 3^5 = 243.
#[test]
fn modp_small_exponent_known_answers() {
    for group in MODP {
        let n = group.public_len();
        let kp = DhKeyPair::with_modp_exponent(group, &[5]);
        let mut want = vec![0u8; n];
        want[n - 1] = 32;
        assert_eq!(kp.public_value(), &want[..], "{group:?}");

        let mut peer = vec![0u8; n];
        peer[n - 1] = 3;
        let secret = kp.agree(&peer).unwrap();
        want[n - 1] = 243;
        assert_eq!(secret.as_bytes(), &want[..], "{group:?}");

        let bits = u16::try_from(n * 8).unwrap();
        let kp = DhKeyPair::with_modp_exponent(group, &bits.to_be_bytes());
        let p = prime_bytes(group);
        // 2^n - p, as a byte-wise two's complement negation of p.
        let mut neg = vec![0u8; n];
        let mut borrow = 0u16;
        for i in (0..n).rev() {
            let d = 0u16.wrapping_sub(u16::from(p[i])).wrapping_sub(borrow);
            neg[i] = d.to_be_bytes()[1];
            borrow = u16::from(d > 0xff);
        }
        assert_eq!(kp.public_value(), &neg[..], "{group:?}");
    }
}

#[test]
fn modp_public_values_out_of_range_are_refused() {
    for group in MODP {
        let n = group.public_len();
        let p = prime_bytes(group);
        let mut p_minus_1 = p.clone();
        p_minus_1[n - 1] -= 1; // p ends in 0xff
        let mut one = vec![0u8; n];
        one[n - 1] = 1;
        for bad in [vec![0u8; n], one, p_minus_1, p.clone(), vec![0xff; n]] {
            let kp = DhKeyPair::generate(group, &mut rng()).unwrap();
            assert_eq!(kp.agree(&bad).unwrap_err(), DhError::InvalidPublicValue);
        }
        let kp = DhKeyPair::generate(group, &mut rng()).unwrap();
        assert_eq!(
            kp.agree(&p[1..]).unwrap_err(),
            DhError::PublicLength {
                got: n - 1,
                want: n
            }
        );
    }
}

#[test]
fn two_parties_agree_in_every_group() {
    let mut rng = rng();
    for group in DhGroup::ALL {
        let a = DhKeyPair::generate(group, &mut rng).unwrap();
        let b = DhKeyPair::generate(group, &mut rng).unwrap();
        assert_eq!(a.public_value().len(), group.public_len());
        assert_ne!(a.public_value(), b.public_value());
        let a_pub = a.public_value().to_vec();
        let b_pub = b.public_value().to_vec();
        let s1 = a.agree(&b_pub).unwrap();
        let s2 = b.agree(&a_pub).unwrap();
        assert_eq!(s1.as_bytes(), s2.as_bytes(), "{group:?}");
        assert_eq!(s1.as_bytes().len(), group.shared_len(), "{group:?}");
        assert!(format!("{s1:?}").contains("<redacted>"));
    }
}

#[test]
fn modp_keys_are_deterministic_under_a_seeded_rng_and_use_the_full_width() {
    let a = DhKeyPair::generate(DhGroup::Modp2048, &mut rng()).unwrap();
    let b = DhKeyPair::generate(DhGroup::Modp2048, &mut rng()).unwrap();
    assert_eq!(a.public_value(), b.public_value());
    let Private::Modp(x) = &a.private else {
        panic!()
    };
    assert_eq!(&x[..32], &[0u8; 32]);
    assert!(x[32] & 0x80 != 0);
    assert!(format!("{a:?}").contains("<redacted>"));
}

// RFC 5903 §8.1 and §8.2: the published public values are accepted in the x || y encoding and
// give a shared secret of the right length. ring cannot import the published private keys, so
// the shared value itself cannot be checked against the RFC.
#[test]
fn rfc5903_public_values_are_accepted_as_x_then_y() {
    let gr_256 = hex!(
        "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
        "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"
    );
    let gr_384 = hex!(
        "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
        "0D1AC43A0336DEF96FDA41D0774A3571"
        "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF"
        "F83FA40142209DFF5EAAD96DB9E6386C"
    );
    for (group, peer) in [
        (DhGroup::Ecp256, &gr_256[..]),
        (DhGroup::Ecp384, &gr_384[..]),
    ] {
        let kp = DhKeyPair::generate(group, &mut rng()).unwrap();
        let secret = kp.agree(peer).unwrap();
        assert_eq!(secret.as_bytes().len(), group.shared_len());
        // A point off the curve (y changed) is refused.
        let mut bad = peer.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        let kp = DhKeyPair::generate(group, &mut rng()).unwrap();
        assert_eq!(kp.agree(&bad).unwrap_err(), DhError::InvalidPublicValue);
        // The SEC1 form with its 0x04 prefix is the wrong length for IKE.
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(peer);
        let kp = DhKeyPair::generate(group, &mut rng()).unwrap();
        assert!(matches!(
            kp.agree(&sec1).unwrap_err(),
            DhError::PublicLength { .. }
        ));
    }
}
