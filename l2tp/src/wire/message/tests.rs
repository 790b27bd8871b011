use super::*;
use crate::testdata::{self, Sender};
use crate::wire::{Packet, write_control};
use crate::{Seq, SessionId, TunnelId};
use hex_literal::hex;
use proptest::prelude::*;

fn parse(body: &[u8]) -> Result<ControlMessage<'_>, MessageError> {
    ControlMessage::parse(Avps::new(body))
}

fn emit(message: &ControlMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut w = Writer::new(&mut buf);
    message.emit(&mut w).unwrap();
    w.written().to_vec()
}

/// The captured messages of one sample, by the extractor's name for them.
fn captured(sample: &str, name: &str) -> Vec<u8> {
    testdata::control(sample)
        .into_iter()
        .find(|m| m.decoded == name)
        .unwrap_or_else(|| panic!("no {name} in {sample}"))
        .bytes
}

#[test]
fn every_captured_control_message_parses_as_what_the_extractor_saw() {
    let all = testdata::all_control();
    assert_eq!(all.len(), 27);
    for m in &all {
        let packet = Packet::new_checked(&m.bytes[..])
            .unwrap_or_else(|e| panic!("{}: header: {e}", m.origin));
        assert!(packet.is_control(), "{}", m.origin);
        if m.decoded == "ZLB" {
            assert!(packet.is_zlb(), "{}", m.origin);
            assert_eq!(m.sender, Sender::Server, "{}: the LNS acks", m.origin);
            continue;
        }
        for avp in Avps::new(packet.payload()) {
            avp.unwrap_or_else(|e| panic!("{}: AVP: {e}", m.origin));
        }
        let message =
            parse(packet.payload()).unwrap_or_else(|e| panic!("{}: message: {e}", m.origin));
        assert_eq!(
            message.message_type().name(),
            Some(m.decoded.as_str()),
            "{}",
            m.origin
        );
        assert_eq!(
            ControlMessage::peek_type(packet.payload()),
            Some(message.message_type())
        );
    }
}

#[test]
fn captured_tunnel_and_session_setup_fields() {
    let sample = "libreswan-server-linux-nm";

    let bytes = captured(sample, "SCCRQ");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        (packet.tunnel_id(), packet.session_id()),
        (TunnelId(0), SessionId(0))
    );
    assert_eq!(packet.sequence(), Some((Seq(0), Seq(0))));
    let ControlMessage::Sccrq(sccrq) = parse(packet.payload()).unwrap() else {
        panic!("not an SCCRQ");
    };
    assert_eq!(
        sccrq,
        Sccrq {
            protocol_version: ProtocolVersion::V1_0,
            framing_capabilities: FramingCapabilities(3),
            bearer_capabilities: Some(BearerCapabilities(0)),
            tie_breaker: None,
            firmware_revision: Some(0x0690),
            host_name: b"e2e-client",
            vendor_name: Some(b"xelerance.com"),
            assigned_tunnel_id: TunnelId(22684),
            receive_window_size: Some(4),
            challenge: None,
        }
    );

    let bytes = captured(sample, "SCCRP");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        packet.tunnel_id(),
        TunnelId(22684),
        "addressed to the LAC's id"
    );
    assert_eq!(packet.sequence(), Some((Seq(0), Seq(1))));
    let ControlMessage::Sccrp(sccrp) = parse(packet.payload()).unwrap() else {
        panic!("not an SCCRP");
    };
    assert_eq!(
        sccrp,
        Sccrp {
            protocol_version: ProtocolVersion::V1_0,
            framing_capabilities: FramingCapabilities(3),
            bearer_capabilities: Some(BearerCapabilities(0)),
            firmware_revision: Some(0x0690),
            host_name: b"e2e-server",
            vendor_name: Some(b"xelerance.com"),
            assigned_tunnel_id: TunnelId(54758),
            receive_window_size: Some(4),
            challenge: None,
            challenge_response: None,
        }
    );

    let bytes = captured(sample, "ICRQ");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        (packet.tunnel_id(), packet.session_id()),
        (TunnelId(54758), SessionId(0))
    );
    assert_eq!(
        parse(packet.payload()).unwrap(),
        ControlMessage::Icrq(Icrq {
            assigned_session_id: SessionId(53796),
            call_serial_number: 1,
            bearer_type: Some(BearerType(0)),
            physical_channel_id: None,
            calling_number: None,
            called_number: None,
            sub_address: None,
        })
    );

    let bytes = captured(sample, "ICRP");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        (packet.tunnel_id(), packet.session_id()),
        (TunnelId(22684), SessionId(53796))
    );
    assert_eq!(
        parse(packet.payload()).unwrap(),
        ControlMessage::Icrp(Icrp {
            assigned_session_id: SessionId(25518),
        })
    );

    let bytes = captured(sample, "ICCN");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        (packet.tunnel_id(), packet.session_id()),
        (TunnelId(54758), SessionId(25518))
    );
    assert_eq!(packet.sequence(), Some((Seq(3), Seq(2))));
    assert_eq!(
        parse(packet.payload()).unwrap(),
        ControlMessage::Iccn(Iccn {
            tx_connect_speed: 0,
            framing_type: FramingType(FramingCapabilities::SYNCHRONOUS),
            initial_received_lcp_confreq: None,
            last_sent_lcp_confreq: None,
            last_received_lcp_confreq: None,
            proxy_authen_type: None,
            proxy_authen_name: None,
            proxy_authen_challenge: None,
            proxy_authen_id: None,
            proxy_authen_response: None,
            private_group_id: None,
            rx_connect_speed: Some(0),
            sequencing_required: false,
        })
    );
}

#[test]
fn captured_messages_are_re_emitted_byte_for_byte() {
    for m in testdata::all_control() {
        let packet = Packet::new_checked(&m.bytes[..]).unwrap();
        let (ns, nr) = packet.sequence().unwrap();
        let mut buf = [0u8; 256];
        let n = if packet.is_zlb() {
            write_control(
                &mut buf,
                packet.tunnel_id(),
                packet.session_id(),
                ns,
                nr,
                |_| Ok(()),
            )
        } else {
            let message = parse(packet.payload()).unwrap();
            write_control(
                &mut buf,
                packet.tunnel_id(),
                packet.session_id(),
                ns,
                nr,
                |w| message.emit(w),
            )
        }
        .unwrap();
        assert_eq!(&buf[..n], &m.bytes[..], "{}", m.origin);
    }
}

#[test]
fn re_emitting_a_captured_message_parses_back_equal() {
    for m in testdata::all_control() {
        let packet = Packet::new_checked(&m.bytes[..]).unwrap();
        if packet.is_zlb() {
            continue;
        }
        let message = parse(packet.payload()).unwrap();
        let body = emit(&message);
        assert_eq!(parse(&body), Ok(message), "{}", m.origin);
    }
}

#[test]
fn every_prefix_of_a_captured_sccrq_is_rejected_without_panicking() {
    for sample in testdata::SAMPLES {
        let bytes = captured(sample, "SCCRQ");
        for len in 0..bytes.len() {
            assert!(
                Packet::new_checked(&bytes[..len]).is_err(),
                "{sample}: header accepted a {len}-byte prefix"
            );
        }
        // Cutting the body instead: a cut inside an AVP is an error; a cut between AVPs
        // leaves a shorter message that is either still complete or misses a mandatory AVP.
        let body = Packet::new_checked(&bytes[..]).unwrap().payload().to_vec();
        let mut boundaries = vec![0];
        for avp in Avps::new(&body) {
            boundaries.push(boundaries.last().unwrap() + 6 + avp.unwrap().value.len());
        }
        for len in 0..body.len() {
            let result = parse(&body[..len]);
            if boundaries.contains(&len) {
                if let Err(e) = result {
                    assert!(
                        matches!(e, MessageError::Missing(_)),
                        "{sample}: {len}: {e}"
                    );
                }
            } else {
                assert_eq!(
                    result,
                    Err(MessageError::Wire(crate::wire::Error::Truncated)),
                    "{sample}: body prefix of {len}"
                );
            }
        }
    }
}

/// An SCCRQ body from the capture with `extra` AVP bytes appended.
fn sccrq_with(extra: &[u8]) -> Vec<u8> {
    let bytes = captured("strongswan-server-windows10", "SCCRQ");
    let mut body = Packet::new_checked(&bytes[..]).unwrap().payload().to_vec();
    body.extend_from_slice(extra);
    body
}

#[test]
fn unknown_avps_fail_the_message_only_with_the_m_bit() {
    let plain = sccrq_with(&[]);
    let plain = parse(&plain).unwrap();

    // Unknown IETF attribute 99 with M: fatal.
    let body = sccrq_with(&hex!("8007 0000 0063 01"));
    assert_eq!(
        parse(&body),
        Err(MessageError::UnknownMandatory {
            vendor: 0,
            attribute: AttributeType(99)
        })
    );
    // Without M: ignored.
    let body = sccrq_with(&hex!("0007 0000 0063 01"));
    assert_eq!(parse(&body), Ok(plain));
    // A vendor AVP (Microsoft, 311) with M: fatal; without: ignored.
    let body = sccrq_with(&hex!("8007 0137 0001 01"));
    assert_eq!(
        parse(&body),
        Err(MessageError::UnknownMandatory {
            vendor: 311,
            attribute: AttributeType(1)
        })
    );
    let body = sccrq_with(&hex!("0007 0137 0001 01"));
    assert_eq!(parse(&body), Ok(plain));
    // RFC 2661 §4.1: a reserved bit makes even a known attribute unrecognised.
    let body = sccrq_with(&hex!("8408 0000 0005 0102"));
    assert!(matches!(
        parse(&body),
        Err(MessageError::UnknownMandatory { .. })
    ));
    // A defined attribute that does not belong in this message is unrecognised here.
    let body = sccrq_with(&hex!("8008 0000 000e 0001"));
    assert_eq!(
        parse(&body),
        Err(MessageError::UnknownMandatory {
            vendor: 0,
            attribute: AttributeType::ASSIGNED_SESSION_ID
        })
    );
    // Random Vectors are allowed anywhere, any number of times.
    let body = sccrq_with(&hex!("800a 0000 0024 01020304 8007 0000 0024 05"));
    assert_eq!(parse(&body), Ok(plain));
}

#[test]
fn tunnel_and_session_messages_have_their_teardown_scope() {
    let body = sccrq_with(&[]);
    assert_eq!(parse(&body).unwrap().scope(), Scope::Tunnel);
    assert_eq!(MessageType::SCCRQ.scope(), Some(Scope::Tunnel));
    let iccn = captured("libreswan-server-natt", "ICCN");
    let packet = Packet::new_checked(&iccn[..]).unwrap();
    assert_eq!(parse(packet.payload()).unwrap().scope(), Scope::Session);
}

#[test]
fn duplicates_missing_and_bad_values_are_typed_errors() {
    // A second Host Name.
    let body = sccrq_with(&hex!("8007 0000 0007 78"));
    assert_eq!(
        parse(&body),
        Err(MessageError::Duplicate(AttributeType::HOST_NAME))
    );
    // A second Message Type.
    let body = sccrq_with(&hex!("8008 0000 0000 0001"));
    assert_eq!(
        parse(&body),
        Err(MessageError::Duplicate(AttributeType::MESSAGE_TYPE))
    );
    // A message with only its Message Type AVP.
    assert_eq!(
        parse(&hex!("8008 0000 0000 0001")),
        Err(MessageError::Missing(AttributeType::PROTOCOL_VERSION))
    );
    assert_eq!(
        parse(&hex!("8008 0000 0000 0004 8008 0000 0009 0001")),
        Err(MessageError::Missing(AttributeType::RESULT_CODE))
    );
    assert_eq!(
        parse(&[]),
        Err(MessageError::Missing(AttributeType::MESSAGE_TYPE))
    );
    // Assigned Tunnel ID of three bytes; an empty Host Name.
    let body = hex!("8008 0000 0000 0002 8009 0000 0009 000102");
    assert_eq!(
        parse(&body),
        Err(MessageError::BadValue(AttributeType::ASSIGNED_TUNNEL_ID))
    );
    let body = hex!("8008 0000 0000 0002 8006 0000 0007");
    assert_eq!(
        parse(&body),
        Err(MessageError::BadValue(AttributeType::HOST_NAME))
    );
    // A Result Code of three bytes.
    let body = hex!("8008 0000 0000 0004 8009 0000 0001 000100");
    assert_eq!(
        parse(&body),
        Err(MessageError::BadValue(AttributeType::RESULT_CODE))
    );
}

#[test]
fn message_type_must_come_first_and_be_known() {
    // Host Name before Message Type.
    assert_eq!(
        parse(&hex!("8007 0000 0007 78 8008 0000 0000 0001")),
        Err(MessageError::MessageTypeNotFirst)
    );
    // A vendor's attribute 0 is not the Message Type.
    assert_eq!(
        parse(&hex!("8008 0137 0000 0001")),
        Err(MessageError::MessageTypeNotFirst)
    );
    assert_eq!(
        parse(&hex!("8008 0000 0000 0005")),
        Err(MessageError::UnknownMessageType {
            message_type: MessageType(5),
            mandatory: true
        })
    );
    assert_eq!(
        parse(&hex!("0008 0000 0000 0063")),
        Err(MessageError::UnknownMessageType {
            message_type: MessageType(99),
            mandatory: false
        })
    );
    assert_eq!(
        parse(&hex!("8009 0000 0000 000100")),
        Err(MessageError::BadValue(AttributeType::MESSAGE_TYPE))
    );
    assert_eq!(
        parse(&hex!("c008 0000 0000 0001")),
        Err(MessageError::Hidden(AttributeType::MESSAGE_TYPE))
    );
}

#[test]
fn stop_ccn_and_cdn_carry_typed_result_codes() {
    let stop = StopCcn {
        assigned_tunnel_id: TunnelId(7),
        result_code: ResultCode {
            result: StopCcnResult::GENERAL_ERROR.0,
            error: Some(ResultError {
                code: ErrorCode::UNKNOWN_MANDATORY_AVP,
                message: b"bye",
            }),
        },
    };
    let body = emit(&stop.into());
    assert_eq!(
        body,
        hex!("8008 0000 0000 0004  8008 0000 0009 0007  800d 0000 0001 0002 0008 627965")
    );
    assert_eq!(parse(&body), Ok(ControlMessage::StopCcn(stop)));

    // Result code alone; result and error code without a message.
    for (value, error) in [
        (&hex!("0001")[..], None),
        (
            &hex!("0002 0000")[..],
            Some(ResultError {
                code: ErrorCode::NO_GENERAL_ERROR,
                message: b"",
            }),
        ),
    ] {
        assert_eq!(
            ResultCode::decode(value),
            Some(ResultCode {
                result: u16::from_be_bytes([value[0], value[1]]),
                error
            })
        );
    }

    let cdn = Cdn {
        result_code: ResultCode {
            result: CdnResult::ADMINISTRATIVE.0,
            error: None,
        },
        assigned_session_id: SessionId(9),
        q931_cause_code: Some(Q931Cause {
            cause: 16,
            message: 0x5a,
            advisory: b"",
        }),
    };
    let body = emit(&cdn.into());
    assert_eq!(parse(&body), Ok(ControlMessage::Cdn(cdn)));
}

#[test]
fn hello_wen_sli_and_flags_round_trip() {
    for message in [
        ControlMessage::Hello(Hello {}),
        ControlMessage::Scccn(Scccn {
            challenge_response: Some([0xab; 16]),
        }),
        ControlMessage::Wen(Wen {
            call_errors: CallErrors {
                crc_errors: 1,
                framing_errors: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeout_errors: 5,
                alignment_errors: 6,
            },
        }),
        ControlMessage::Sli(Sli {
            accm: Accm {
                send: 0xffff_ffff,
                receive: 0,
            },
        }),
        ControlMessage::Occn(Occn {
            tx_connect_speed: 64_000,
            framing_type: FramingType(1),
            rx_connect_speed: None,
            sequencing_required: true,
        }),
        ControlMessage::Ocrp(Ocrp {
            assigned_session_id: SessionId(3),
            physical_channel_id: Some(4),
        }),
        ControlMessage::Ocrq(Ocrq {
            assigned_session_id: SessionId(3),
            call_serial_number: 5,
            minimum_bps: 1,
            maximum_bps: 2,
            bearer_type: BearerType(1),
            framing_type: FramingType(2),
            called_number: b"555",
            sub_address: Some(b"1"),
        }),
    ] {
        let body = emit(&message);
        assert_eq!(parse(&body), Ok(message));
    }
    assert_eq!(
        emit(&Hello {}.into()),
        hex!("8008 0000 0000 0006"),
        "HELLO is just its type"
    );
    // Sequencing Required must be empty.
    let body = hex!(
        "8008 0000 0000 0009 800a 0000 0018 00000001 800a 0000 0013 00000001 8007 0000 0027 00"
    );
    assert_eq!(
        parse(&body),
        Err(MessageError::BadValue(AttributeType::SEQUENCING_REQUIRED))
    );
}

#[test]
fn emitting_into_a_short_buffer_fails_cleanly() {
    let body = sccrq_with(&[]);
    let message = parse(&body).unwrap();
    let mut buf = vec![0u8; body.len() - 1];
    let mut w = Writer::new(&mut buf);
    assert_eq!(message.emit(&mut w), Err(NoSpace));
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn nonempty(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..max)
}

proptest! {
    #[test]
    fn sccrq_round_trips(
        version: u8, revision: u8, framing: u32, bearer: Option<u32>, tie: Option<[u8; 8]>,
        firmware: Option<u16>, host in nonempty(64), vendor in proptest::option::of(bytes(64)),
        tunnel: u16, window: Option<u16>, challenge in proptest::option::of(nonempty(64)),
    ) {
        let sccrq = Sccrq {
            protocol_version: ProtocolVersion { version, revision },
            framing_capabilities: FramingCapabilities(framing),
            bearer_capabilities: bearer.map(BearerCapabilities),
            tie_breaker: tie,
            firmware_revision: firmware,
            host_name: &host,
            vendor_name: vendor.as_deref(),
            assigned_tunnel_id: TunnelId(tunnel),
            receive_window_size: window,
            challenge: challenge.as_deref(),
        };
        let message = ControlMessage::from(sccrq);
        let body = emit(&message);
        prop_assert_eq!(parse(&body), Ok(message));
    }

    #[test]
    fn iccn_round_trips(
        tx: u32, framing: u32, lcp in proptest::option::of(bytes(40)),
        authen_type: Option<u16>, name in proptest::option::of(bytes(40)),
        id: Option<u8>, response in proptest::option::of(bytes(40)),
        group in proptest::option::of(bytes(8)), rx: Option<u32>, sequencing: bool,
    ) {
        let iccn = Iccn {
            tx_connect_speed: tx,
            framing_type: FramingType(framing),
            initial_received_lcp_confreq: lcp.as_deref(),
            last_sent_lcp_confreq: lcp.as_deref(),
            last_received_lcp_confreq: None,
            proxy_authen_type: authen_type.map(ProxyAuthenType),
            proxy_authen_name: name.as_deref(),
            proxy_authen_challenge: name.as_deref(),
            proxy_authen_id: id.map(ProxyAuthenId),
            proxy_authen_response: response.as_deref(),
            private_group_id: group.as_deref(),
            rx_connect_speed: rx,
            sequencing_required: sequencing,
        };
        let message = ControlMessage::from(iccn);
        let body = emit(&message);
        prop_assert_eq!(parse(&body), Ok(message));
    }

    #[test]
    fn stop_ccn_and_cdn_round_trip(
        tunnel: u16, session: u16, result: u16,
        error in proptest::option::of((any::<u16>(), bytes(64))),
        cause in proptest::option::of((any::<u16>(), any::<u8>(), bytes(16))),
    ) {
        let result_code = ResultCode {
            result,
            error: error.as_ref().map(|(code, message)| ResultError { code: ErrorCode(*code), message }),
        };
        let stop = ControlMessage::from(StopCcn { assigned_tunnel_id: TunnelId(tunnel), result_code });
        let body = emit(&stop);
        prop_assert_eq!(parse(&body), Ok(stop));
        let cdn = ControlMessage::from(Cdn {
            result_code,
            assigned_session_id: SessionId(session),
            q931_cause_code: cause.as_ref().map(|(cause, message, advisory)| Q931Cause {
                cause: *cause, message: *message, advisory,
            }),
        });
        let body = emit(&cdn);
        prop_assert_eq!(parse(&body), Ok(cdn));
    }

    #[test]
    fn no_body_makes_the_parser_panic(body in bytes(96)) {
        let _ = parse(&body);
        let _ = ControlMessage::peek_type(&body);
    }

    #[test]
    fn appended_garbage_to_a_captured_sccrq_never_panics(tail in bytes(32)) {
        let _ = parse(&sccrq_with(&tail));
    }
}
