//! Informational exchanges after phase 1 (RFC 2409 §5.7): Notify and Delete protected by
//! `HASH(1) = prf(SKEYID_a, M-ID | N/D)`, and Dead Peer Detection (RFC 3706).

use super::main_mode::{Phase1Sa, Refusal};
use super::protected::{open, seal};
use crate::wire::{
    DOI_IPSEC, Delete, ExchangeType, Header, MessageId, Notification, NotifyType, PayloadType,
    ProtocolId,
};
use rand_core::CryptoRng;

/// What an Informational message told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info {
    /// RFC 3706: R-U-THERE with its sequence number (answer with [`write_dpd`]).
    RUThere(u32),
    /// RFC 3706: R-U-THERE-ACK with its sequence number.
    RUThereAck(u32),
    /// The peer deleted this ISAKMP SA.
    DeleteIsakmp,
    /// The peer deleted ESP SAs (the SPIs are those it receives on, i.e. our outbound SAs).
    DeleteEsp(Vec<u32>),
    /// Any other notification (errors such as INVALID-ID-INFORMATION, INITIAL-CONTACT…).
    Notify(NotifyType),
}

fn message_id<R: CryptoRng + ?Sized>(rng: &mut R) -> MessageId {
    loop {
        let m = rng.next_u32();
        if m != 0 {
            return MessageId(m);
        }
    }
}

/// Reads a protected Informational message.
///
/// # Errors
/// [`Refusal::AuthenticationFailed`] when HASH(1) does not verify; others when the message is
/// not an Informational of this SA.
pub fn read(sa: &Phase1Sa, message: &[u8]) -> Result<Vec<Info>, Refusal> {
    let h = Header::new_checked(message).map_err(|_| Refusal::Malformed)?;
    if h.exchange_type() != ExchangeType::INFORMATIONAL {
        return Err(Refusal::Unexpected);
    }
    let mid = h.message_id();
    let opened = open(sa, message, &sa.exchange_iv(mid))?;
    let payloads = opened.verified(sa, &[&mid.0.to_be_bytes()])?;
    let mut infos = Vec::new();
    for p in payloads.iter().skip(1) {
        match p.kind {
            PayloadType::NOTIFY => {
                let n = Notification::parse(p.body).map_err(|_| Refusal::Malformed)?;
                let seq = <[u8; 4]>::try_from(n.data).map(u32::from_be_bytes);
                infos.push(match (n.kind, seq) {
                    (NotifyType::R_U_THERE, Ok(seq)) => Info::RUThere(seq),
                    (NotifyType::R_U_THERE_ACK, Ok(seq)) => Info::RUThereAck(seq),
                    (kind, _) => Info::Notify(kind),
                });
            }
            PayloadType::DELETE => {
                let d = Delete::parse(p.body).map_err(|_| Refusal::Malformed)?;
                match d.protocol {
                    ProtocolId::ISAKMP => infos.push(Info::DeleteIsakmp),
                    ProtocolId::ESP => infos.push(Info::DeleteEsp(
                        d.spis()
                            .filter_map(|s| <[u8; 4]>::try_from(s).ok())
                            .map(u32::from_be_bytes)
                            .collect(),
                    )),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(infos)
}

/// Writes a protected Notify of `kind` about this ISAKMP SA (the cookies as SPI).
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small.
pub fn write_notify<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    kind: NotifyType,
    data: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, Refusal> {
    let mid = message_id(rng);
    let (len, _) = seal(
        sa,
        ExchangeType::INFORMATIONAL,
        mid,
        &sa.exchange_iv(mid),
        &[&mid.0.to_be_bytes()],
        true,
        out,
        |m| {
            m.payload(PayloadType::NOTIFY, |w| {
                w.put_u32(DOI_IPSEC)?;
                w.put_slice(&[ProtocolId::ISAKMP.0, 16])?;
                w.put_u16(kind.0)?;
                w.put_slice(&sa.cky_i.0)?;
                w.put_slice(&sa.cky_r.0)?;
                w.put_slice(data)
            })
        },
    )?;
    Ok(len)
}

/// Writes R-U-THERE (`ack = false`) or R-U-THERE-ACK with sequence number `seq` (RFC 3706 §5).
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small.
pub fn write_dpd<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    ack: bool,
    seq: u32,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, Refusal> {
    let kind = if ack {
        NotifyType::R_U_THERE_ACK
    } else {
        NotifyType::R_U_THERE
    };
    write_notify(sa, kind, &seq.to_be_bytes(), rng, out)
}

/// What a Delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted<'a> {
    /// This ISAKMP SA.
    Isakmp,
    /// ESP SAs we receive on (their SPIs).
    Esp(&'a [u32]),
}

/// Writes a protected Delete.
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small or there are too many SPIs.
pub fn write_delete<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    what: Deleted<'_>,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, Refusal> {
    let mid = message_id(rng);
    let (len, _) = seal(
        sa,
        ExchangeType::INFORMATIONAL,
        mid,
        &sa.exchange_iv(mid),
        &[&mid.0.to_be_bytes()],
        true,
        out,
        |m| {
            m.payload(PayloadType::DELETE, |w| {
                w.put_u32(DOI_IPSEC)?;
                match what {
                    Deleted::Isakmp => {
                        w.put_slice(&[ProtocolId::ISAKMP.0, 16])?;
                        w.put_u16(1)?;
                        w.put_slice(&sa.cky_i.0)?;
                        w.put_slice(&sa.cky_r.0)
                    }
                    Deleted::Esp(spis) => {
                        w.put_slice(&[ProtocolId::ESP.0, 4])?;
                        w.put_u16(u16::try_from(spis.len()).map_err(|_| codec::NoSpace)?)?;
                        spis.iter().try_for_each(|s| w.put_u32(*s))
                    }
                }
            })
        },
    )?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ikev1::keys::Secret;
    use crate::ikev1::main_mode::{self, Path, Phase1Config};
    use crate::ikev1::proposal::Phase1Policy;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn pair(rng: &mut ChaCha8Rng) -> (Phase1Sa, Phase1Sa) {
        let config = Phase1Config {
            policy: Phase1Policy::default(),
            auth: main_mode::Authentication::PreSharedKey(Secret::new(b"k")),
        };
        let ipath = Path {
            local: "10.0.0.2:500".parse().unwrap(),
            remote: "2.2.2.2:500".parse().unwrap(),
        };
        let rpath = Path {
            local: ipath.remote,
            remote: ipath.local,
        };
        let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
        let (i1, n) = main_mode::initiate(&config, ipath, rng, &mut a).unwrap();
        let (r1, m) = main_mode::respond(&config, rpath, &a[..n], rng, &mut b).unwrap();
        let (mut i2, n) = i1.on_choice(&b[..m], rng, &mut a).unwrap();
        let (r2, m) = r1.on_key_exchange(&a[..n], rng, &mut b).unwrap();
        let (i3, n) = i2.on_key_exchange(&b[..m], &mut a).unwrap();
        let (rsa, m) = r2.on_auth(&a[..n], &mut b, std::time::UNIX_EPOCH).unwrap();
        (i3.on_auth(&b[..m], std::time::UNIX_EPOCH).unwrap(), rsa)
    }

    #[test]
    fn dpd_delete_and_notify_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (isa, rsa) = pair(&mut rng);
        let mut buf = [0u8; 512];
        let n = write_dpd(&rsa, false, 7, &mut rng, &mut buf).unwrap();
        assert_eq!(read(&isa, &buf[..n]).unwrap(), vec![Info::RUThere(7)]);
        let n = write_dpd(&isa, true, 7, &mut rng, &mut buf).unwrap();
        assert_eq!(read(&rsa, &buf[..n]).unwrap(), vec![Info::RUThereAck(7)]);
        let n = write_delete(&isa, Deleted::Esp(&[0x1234, 0x5678]), &mut rng, &mut buf).unwrap();
        assert_eq!(
            read(&rsa, &buf[..n]).unwrap(),
            vec![Info::DeleteEsp(vec![0x1234, 0x5678])]
        );
        let n = write_delete(&isa, Deleted::Isakmp, &mut rng, &mut buf).unwrap();
        assert_eq!(read(&rsa, &buf[..n]).unwrap(), vec![Info::DeleteIsakmp]);
        let n = write_notify(
            &rsa,
            NotifyType::INVALID_ID_INFORMATION,
            &[],
            &mut rng,
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            read(&isa, &buf[..n]).unwrap(),
            vec![Info::Notify(NotifyType::INVALID_ID_INFORMATION)]
        );
        // Another SA's keys cannot read it.
        let (other, _) = pair(&mut rng);
        assert!(read(&other, &buf[..n]).is_err());
    }
}
