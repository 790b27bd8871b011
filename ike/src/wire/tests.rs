use super::*;

fn sample_message(buf: &mut [u8]) -> usize {
    let mut m = MessageWriter::new(
        buf,
        Cookie([1; 8]),
        Cookie::default(),
        ExchangeType::MAIN_MODE,
        0,
        MessageId(0),
    )
    .unwrap();
    m.payload(PayloadType::SA, |w| {
        w.put_u32(DOI_IPSEC)?;
        w.put_u32(SIT_IDENTITY_ONLY)?;
        // One proposal with two transforms.
        Chain::nested().put(w, PayloadType::PROPOSAL, |w| {
            w.put_slice(&[1, ProtocolId::ISAKMP.0, 0, 2])?;
            let mut transforms = Chain::nested();
            for (n, enc) in [
                (1u8, EncryptionAlgorithm::AES_CBC),
                (2, EncryptionAlgorithm::TRIPLE_DES_CBC),
            ] {
                transforms.put(w, PayloadType::TRANSFORM, |w| {
                    w.put_slice(&[n, KEY_IKE, 0, 0])?;
                    AttributeWriter::short(w, Phase1Attribute::ENCRYPTION.0, enc.0)?;
                    AttributeWriter::number(w, Phase1Attribute::LIFE_DURATION.0, 28_800)?;
                    AttributeWriter::number(w, Phase1Attribute::LIFE_DURATION.0, 86_400)
                })?;
            }
            Ok(())
        })
    })
    .unwrap();
    m.payload(PayloadType::VID, |w| w.put_slice(b"l2sec"))
        .unwrap();
    m.finish().unwrap().len()
}

#[test]
fn written_message_parses_back() {
    let mut buf = [0u8; 512];
    let len = sample_message(&mut buf);
    let h = Header::new_checked(&buf[..len]).unwrap();
    assert_eq!(h.exchange_type(), ExchangeType::MAIN_MODE);
    assert_eq!(h.length(), len);
    assert_eq!(h.next_payload(), PayloadType::SA);
    let payloads: Vec<_> = Payloads::new(h.next_payload(), h.body())
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(
        payloads.iter().map(|p| p.kind).collect::<Vec<_>>(),
        vec![PayloadType::SA, PayloadType::VID]
    );
    let sa = SecurityAssociation::parse(payloads[0].body).unwrap();
    let proposals: Vec<_> = sa.proposals().collect();
    assert_eq!(proposals.len(), 1);
    let transforms: Vec<_> = proposals[0].transforms().collect();
    assert_eq!(transforms.len(), 2);
    let attrs: Vec<_> = transforms[1].attributes().collect::<Result<_>>().unwrap();
    assert_eq!(
        attrs[0],
        Attribute {
            kind: 1,
            value: AttributeValue::Short(5)
        }
    );
    assert_eq!(attrs[1].value.as_u32(), Some(28_800));
    assert_eq!(
        attrs[2].value,
        AttributeValue::Long(&86_400u32.to_be_bytes())
    );
    assert_eq!(attrs[2].value.as_u32(), Some(86_400));
    assert_eq!(payloads[1].body, b"l2sec");
    for cut in 0..len {
        let ok = Header::new_checked(&buf[..cut]).is_ok();
        assert!(!ok, "accepted a {cut}-byte prefix");
    }
}

#[test]
fn malformed_chains_are_errors_and_stop() {
    // Payload length 3 (< 4).
    let body = [0u8, 0, 0, 3];
    let items: Vec<_> = Payloads::new(PayloadType::VID, &body).collect();
    assert_eq!(items, vec![Err(Error::BadLength(3))]);
    // Length beyond the data.
    let body = [0u8, 0, 0, 9, 1];
    assert_eq!(
        Payloads::new(PayloadType::VID, &body).next(),
        Some(Err(Error::BadLength(9)))
    );
    // A self-referencing chain of empty payloads is capped.
    let body = [13u8, 0, 0, 4].repeat(100);
    let items: Vec<_> = Payloads::new(PayloadType::VID, &body).collect();
    assert_eq!(items.last(), Some(&Err(Error::TooManyPayloads)));
    assert_eq!(items.len(), MAX_PAYLOADS + 1);
}

#[test]
fn version_and_length_checks() {
    let mut buf = [0u8; 28];
    buf[17] = 0x20;
    buf[27] = 28;
    assert_eq!(
        Header::new_checked(&buf[..]).unwrap_err(),
        Error::Version(0x20)
    );
    buf[17] = 0x10;
    assert!(Header::new_checked(&buf[..]).is_ok());
    buf[27] = 29;
    assert_eq!(
        Header::new_checked(&buf[..]).unwrap_err(),
        Error::BadLength(29)
    );
}

#[test]
fn notification_delete_id_nat_oa() {
    let n = [0, 0, 0, 1, 3, 4, 0x60, 0x02, 0xaa, 0xbb, 0xcc, 0xdd];
    let n = Notification::parse(&n).unwrap();
    assert_eq!(
        (n.protocol, n.kind, n.spi.len(), n.data.len()),
        (ProtocolId::ESP, NotifyType::INITIAL_CONTACT, 4, 0)
    );
    let d = [0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8];
    let d = Delete::parse(&d).unwrap();
    assert_eq!(
        d.spis().collect::<Vec<_>>(),
        vec![&[1u8, 2, 3, 4][..], &[5, 6, 7, 8][..]]
    );
    assert!(Delete::parse(&[0, 0, 0, 1, 3, 4, 0, 3, 1, 2, 3, 4]).is_err());
    let id = Identification::parse(&[1, 17, 0x06, 0xa5, 10, 0, 0, 1]).unwrap();
    assert_eq!(
        (id.id_type, id.protocol, id.port, id.data),
        (IdType::IPV4_ADDR, 17, 1701, &[10u8, 0, 0, 1][..])
    );
    let oa = NatOa::parse(&[1, 0, 0, 0, 192, 168, 0, 2]).unwrap();
    assert_eq!(oa.address, &[192, 168, 0, 2]);
    assert!(NatOa::parse(&[1, 0, 0, 0, 192, 168, 0]).is_err());
}

#[test]
fn proposal_with_a_wrong_transform_count_is_rejected() {
    // SA with one proposal announcing 2 transforms but carrying 1.
    let transform = [0u8, 0, 0, 8, 1, KEY_IKE, 0, 0];
    let mut proposal = vec![0u8, 0, 0, 0, 1, 1, 0, 2];
    proposal.extend_from_slice(&transform);
    let len = u16::try_from(proposal.len()).unwrap().to_be_bytes();
    proposal[2..4].copy_from_slice(&len);
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&proposal);
    assert_eq!(
        SecurityAssociation::parse(&sa).unwrap_err(),
        Error::TransformCount
    );
}
