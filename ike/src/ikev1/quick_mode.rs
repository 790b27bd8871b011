//! IKEv1 Quick Mode (RFC 2409 §5.5) for ESP in transport mode, both roles, with optional PFS
//! and the NAT-OA payloads of RFC 3947 §5.2.
//!
//! ```text
//! I → R  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OAi, NAT-OAr]
//! R → I  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr]
//! I → R  HDR*, HASH(3)
//! HASH(1) = prf(SKEYID_a, M-ID | rest)     HASH(2) = prf(SKEYID_a, M-ID | Ni_b | rest)
//! HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
//! ```

use super::keys::Secret;
use super::main_mode::{Phase1Sa, Refusal};
use super::phase2::{
    Encapsulation, EspChoice, Pfs, Phase2Policy, choose, decode, responder_lifetime, write_offer,
    write_responder_lifetime,
};
use super::protected::{open, seal};
use crate::crypto::{Agreement, DhGroup, DhKeyPair, SharedSecret, check_public};
use crate::esp::{SaKeys, Transform};
use crate::wire::{
    Chain, DOI_IPSEC, EncapsulationMode, ExchangeType, Header, IdType, Identification, MessageId,
    NatOa, Notification, NotifyType, Payload, PayloadType, ProtocolId, SIT_IDENTITY_ONLY,
    SecurityAssociation,
};
use rand_core::CryptoRng;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The L2TP port (RFC 2661 §8.1), used in the Quick Mode client IDs.
pub const L2TP_PORT: u16 = 1701;
/// UDP.
const IPPROTO_UDP: u8 = 17;

/// A negotiated pair of ESP SAs.
#[derive(Debug, Clone)]
pub struct ChildSa {
    /// Message ID of the Quick Mode that made it.
    pub message_id: MessageId,
    /// Cipher and integrity.
    pub transform: Transform,
    /// Plain or UDP-encapsulated transport mode.
    pub encapsulation: Encapsulation,
    /// SPI of the SA we receive on (we chose it).
    pub inbound_spi: u32,
    /// SPI of the SA we send on (the peer chose it).
    pub outbound_spi: u32,
    inbound_keys: Secret,
    outbound_keys: Secret,
    /// Lifetime in seconds.
    pub lifetime: Duration,
    /// Lifetime in kilobytes, if negotiated.
    pub lifetime_kb: Option<u32>,
    /// The initiator's original address from NAT-OAi (to fix inner UDP checksums behind NAT).
    pub initiator_original_address: Option<IpAddr>,
}

impl ChildSa {
    /// Keys of the inbound SA.
    #[must_use]
    pub fn inbound_keys(&self) -> SaKeys<'_> {
        self.split(&self.inbound_keys)
    }

    /// Keys of the outbound SA.
    #[must_use]
    pub fn outbound_keys(&self) -> SaKeys<'_> {
        self.split(&self.outbound_keys)
    }

    /// RFC 2409 §5.5 (and RFC 2407 §4.5): encryption key first, then the integrity key.
    fn split<'k>(&self, keymat: &'k Secret) -> SaKeys<'k> {
        let (encryption, integrity) = keymat.expose().split_at(
            self.transform
                .encryption_key_len()
                .min(keymat.expose().len()),
        );
        SaKeys {
            encryption,
            integrity,
        }
    }
}

fn keymat_len(t: &Transform) -> usize {
    t.encryption_key_len() + t.integrity_key_len()
}

struct Parsed<'p> {
    sa: &'p [u8],
    nonce: &'p [u8],
    ke: Option<&'p [u8]>,
    ids: Option<(&'p [u8], &'p [u8])>,
    nat_oa: Vec<&'p [u8]>,
    /// RESPONDER-LIFETIME (RFC 2407 §4.6.3.1) for ESP: seconds and kilobytes.
    responder_lifetime: (Option<Duration>, Option<u32>),
}

fn parse<'p>(payloads: &[Payload<'p>]) -> Result<Parsed<'p>, Refusal> {
    let mut p = Parsed {
        sa: &[],
        nonce: &[],
        ke: None,
        ids: None,
        nat_oa: Vec::new(),
        responder_lifetime: (None, None),
    };
    let (mut sas, mut nonces, mut kes, mut ids) = (0, 0, 0, Vec::new());
    for payload in payloads.iter().skip(1) {
        match payload.kind {
            PayloadType::SA => {
                sas += 1;
                p.sa = payload.body;
            }
            PayloadType::NONCE => {
                nonces += 1;
                p.nonce = payload.body;
            }
            PayloadType::KE => {
                kes += 1;
                p.ke = Some(payload.body);
            }
            PayloadType::ID => ids.push(payload.body),
            PayloadType::NAT_OA | PayloadType::NAT_OA_DRAFT => p.nat_oa.push(payload.body),
            PayloadType::NOTIFY => {
                if let Ok(n) = Notification::parse(payload.body)
                    && n.kind == NotifyType::RESPONDER_LIFETIME
                    && n.protocol == ProtocolId::ESP
                {
                    p.responder_lifetime = responder_lifetime(n.data);
                }
            }
            // Vendor IDs and other notifications are informative only.
            _ => {}
        }
    }
    // RFC 2409 §5.5: one SA and one nonce; the client IDs come as a pair or not at all.
    if sas != 1
        || nonces != 1
        || kes > 1
        || !(ids.is_empty() || ids.len() == 2)
        || p.nat_oa.len() > 2
    {
        return Err(Refusal::Malformed);
    }
    if !(8..=256).contains(&p.nonce.len()) {
        return Err(Refusal::InvalidKeyInformation);
    }
    if let [ci, cr] = ids[..] {
        for id in [ci, cr] {
            let id = Identification::parse(id).map_err(|_| Refusal::InvalidIdInformation)?;
            // Transport mode protects the hosts' L2TP traffic: UDP (or any protocol), any port.
            let address_len_ok = match id.id_type {
                IdType::IPV4_ADDR => id.data.len() == 4,
                IdType::IPV6_ADDR => id.data.len() == 16,
                _ => false,
            };
            if !address_len_ok || !(id.protocol == 0 || id.protocol == IPPROTO_UDP) {
                return Err(Refusal::InvalidIdInformation);
            }
        }
        p.ids = Some((ci, cr));
    }
    Ok(p)
}

fn address_of(oa: &[u8]) -> Option<IpAddr> {
    let oa = NatOa::parse(oa).ok()?;
    match oa.id_type {
        IdType::IPV4_ADDR => <[u8; 4]>::try_from(oa.address).ok().map(IpAddr::from),
        IdType::IPV6_ADDR => <[u8; 16]>::try_from(oa.address).ok().map(IpAddr::from),
        _ => None,
    }
}

fn random_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut n = vec![0u8; 32];
    rng.fill_bytes(&mut n);
    n
}

/// Responder after message 2.
#[derive(Debug)]
pub struct QuickResponder {
    message_id: MessageId,
    transform: Transform,
    encapsulation: Encapsulation,
    lifetime: Duration,
    lifetime_kb: Option<u32>,
    inbound_spi: u32,
    outbound_spi: u32,
    ni: Vec<u8>,
    nr: Vec<u8>,
    gqm: Option<Secret>,
    /// PFS: the agreement runs elsewhere and `gqm` is not known yet.
    awaiting_agreement: bool,
    iv: Vec<u8>,
    initiator_original_address: Option<IpAddr>,
}

/// Answers Quick Mode message 1; `inbound_spi` is the SPI we receive on (unique, from the
/// caller's SA database). With PFS the Diffie-Hellman work is done in line.
///
/// # Errors
/// [`Refusal::NoProposalChosen`] (send the notify, encrypted), others as named.
pub fn respond<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    policy: &Phase2Policy,
    message: &[u8],
    inbound_spi: u32,
    rng: &mut R,
    out: &mut [u8],
) -> Result<(QuickResponder, usize), Refusal> {
    let mut generate = |group, rng: &mut R| {
        DhKeyPair::generate(group, rng).map_err(|_| Refusal::InvalidKeyInformation)
    };
    let (mut state, agreement, len) =
        respond_with(sa, policy, message, inbound_spi, &mut generate, rng, out)?;
    if let Some(agreement) = agreement {
        let shared = agreement
            .run()
            .map_err(|_| Refusal::InvalidKeyInformation)?;
        state.agreed(&shared);
    }
    Ok((state, len))
}

/// As [`respond`], with PFS taking our key pair from `key_pair` (computed ahead, possibly on
/// another thread) and handing back the [`Agreement`] to run wherever the caller likes: message
/// 2 needs only our public value; [`QuickResponder::agreed`] must be given the result before
/// message 3 is read. A MODP value out of range is refused here.
///
/// # Errors
/// As [`respond`].
pub fn respond_with<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    policy: &Phase2Policy,
    message: &[u8],
    inbound_spi: u32,
    key_pair: &mut dyn FnMut(DhGroup, &mut R) -> Result<DhKeyPair, Refusal>,
    rng: &mut R,
    out: &mut [u8],
) -> Result<(QuickResponder, Option<Agreement>, usize), Refusal> {
    let h = Header::new_checked(message).map_err(|_| Refusal::Malformed)?;
    let mid = h.message_id();
    if h.exchange_type() != ExchangeType::QUICK_MODE || mid.0 == 0 {
        return Err(Refusal::Unexpected);
    }
    let opened = open(sa, message, &sa.exchange_iv(mid))?;
    let mid_b = mid.0.to_be_bytes();
    let payloads = opened.verified(sa, &[&mid_b])?;
    let p = parse(&payloads)?;
    let offer = SecurityAssociation::parse(p.sa).map_err(|_| Refusal::Malformed)?;
    if offer.doi != DOI_IPSEC {
        return Err(Refusal::NoProposalChosen);
    }
    let nat = sa.nat.encapsulate().then_some(sa.nat.version).flatten();
    let choice: EspChoice<'_> = choose(policy, &offer, nat).ok_or(Refusal::NoProposalChosen)?;
    let outbound_spi = u32::from_be_bytes(
        choice
            .proposal
            .spi
            .try_into()
            .map_err(|_| Refusal::Malformed)?,
    );
    // PFS: the KE is present exactly when a group was proposed (RFC 2409 §5.5).
    let (agreement, our_ke) = match (choice.group, p.ke) {
        (Some(group), Some(ke)) => {
            check_public(group, ke).map_err(|_| Refusal::InvalidKeyInformation)?;
            let pair = key_pair(group, rng)?;
            if pair.group() != group {
                return Err(Refusal::InvalidKeyInformation);
            }
            let public = pair.public_value().to_vec();
            (Some(Agreement::new(pair, ke.to_vec())), Some(public))
        }
        (None, None) => (None, None),
        _ => return Err(Refusal::InvalidKeyInformation),
    };
    let nr = random_nonce(rng);
    let ni = p.nonce.to_vec();
    let (len, iv) = seal(
        sa,
        ExchangeType::QUICK_MODE,
        mid,
        &opened.next_iv,
        &[&mid_b, &ni],
        true,
        out,
        |m| {
            m.payload(PayloadType::SA, |w| {
                w.put_u32(DOI_IPSEC)?;
                w.put_u32(SIT_IDENTITY_ONLY)?;
                Chain::nested().put(w, PayloadType::PROPOSAL, |w| {
                    w.put_slice(&[choice.proposal.number, ProtocolId::ESP.0, 4, 1])?;
                    w.put_u32(inbound_spi)?;
                    Chain::nested().put(w, PayloadType::TRANSFORM, |w| {
                        w.put_slice(&[choice.transform_number, choice.transform_id, 0, 0])?;
                        w.put_slice(choice.attributes)
                    })
                })
            })?;
            m.payload(PayloadType::NONCE, |w| w.put_slice(&nr))?;
            if let Some(ke) = &our_ke {
                m.payload(PayloadType::KE, |w| w.put_slice(ke))?;
            }
            if let Some((ci, cr)) = p.ids {
                m.payload(PayloadType::ID, |w| w.put_slice(ci))?;
                m.payload(PayloadType::ID, |w| w.put_slice(cr))?;
            }
            // RFC 2407 §4.6.3.1: our policy is shorter than what was proposed.
            if choice.shortened {
                m.payload(PayloadType::NOTIFY, |w| {
                    w.put_u32(DOI_IPSEC)?;
                    w.put_slice(&[ProtocolId::ESP.0, 4])?;
                    w.put_u16(NotifyType::RESPONDER_LIFETIME.0)?;
                    w.put_u32(inbound_spi)?;
                    write_responder_lifetime(w, choice.lifetime, choice.lifetime_kb)
                })?;
            }
            Ok(())
        },
    )?;
    let state = QuickResponder {
        message_id: mid,
        transform: choice.transform,
        encapsulation: choice.encapsulation,
        lifetime: choice.lifetime,
        lifetime_kb: choice.lifetime_kb,
        inbound_spi,
        outbound_spi,
        ni,
        nr,
        gqm: None,
        awaiting_agreement: agreement.is_some(),
        iv,
        initiator_original_address: p.nat_oa.first().and_then(|oa| address_of(oa)),
    };
    Ok((state, agreement, len))
}

impl QuickResponder {
    /// The message ID of this exchange.
    #[must_use]
    pub const fn message_id(&self) -> MessageId {
        self.message_id
    }

    /// The SPI we receive on.
    #[must_use]
    pub const fn inbound_spi(&self) -> u32 {
        self.inbound_spi
    }

    /// Whether the PFS agreement's result is still to come ([`QuickResponder::agreed`]).
    #[must_use]
    pub const fn awaiting_agreement(&self) -> bool {
        self.awaiting_agreement
    }

    /// Takes the PFS agreement's result (`g(qm)^xy`, RFC 2409 §5.5).
    pub fn agreed(&mut self, shared: &SharedSecret) {
        self.gqm = Some(Secret::new(shared.as_bytes()));
        self.awaiting_agreement = false;
    }

    /// Verifies message 3: both ESP SAs exist now.
    ///
    /// # Errors
    /// [`Refusal::AuthenticationFailed`] for a wrong HASH(3).
    pub fn on_final(&self, sa: &Phase1Sa, message: &[u8]) -> Result<ChildSa, Refusal> {
        if self.awaiting_agreement {
            return Err(Refusal::Unexpected);
        }
        let opened = open(sa, message, &self.iv)?;
        if opened.message_id != self.message_id || opened.exchange != ExchangeType::QUICK_MODE {
            return Err(Refusal::Unexpected);
        }
        opened.verified(
            sa,
            &[&[0], &self.message_id.0.to_be_bytes(), &self.ni, &self.nr],
        )?;
        Ok(child(
            sa,
            self.message_id,
            self.transform,
            self.encapsulation,
            (self.inbound_spi, self.outbound_spi),
            (&self.ni, &self.nr),
            self.gqm.as_ref(),
            (self.lifetime, self.lifetime_kb),
            self.initiator_original_address,
        ))
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "every part of the child SA comes from a different place"
)]
fn child(
    sa: &Phase1Sa,
    message_id: MessageId,
    transform: Transform,
    encapsulation: Encapsulation,
    (inbound_spi, outbound_spi): (u32, u32),
    (ni, nr): (&[u8], &[u8]),
    gqm: Option<&Secret>,
    (lifetime, lifetime_kb): (Duration, Option<u32>),
    initiator_original_address: Option<IpAddr>,
) -> ChildSa {
    let len = keymat_len(&transform);
    let gqm = gqm.map(Secret::expose);
    let esp = ProtocolId::ESP.0;
    ChildSa {
        message_id,
        transform,
        encapsulation,
        inbound_spi,
        outbound_spi,
        inbound_keys: sa
            .keys
            .keymat(gqm, esp, inbound_spi.to_be_bytes(), ni, nr, len),
        outbound_keys: sa
            .keys
            .keymat(gqm, esp, outbound_spi.to_be_bytes(), ni, nr, len),
        lifetime,
        lifetime_kb,
        initiator_original_address,
    }
}

/// Initiator after message 1.
#[derive(Debug)]
pub struct QuickInitiator {
    message_id: MessageId,
    inbound_spi: u32,
    offered: Vec<Transform>,
    mode: EncapsulationMode,
    policy: Phase2Policy,
    ni: Vec<u8>,
    pair: Option<DhKeyPair>,
    iv: Vec<u8>,
    local: SocketAddr,
}

/// Most transforms we offer in one proposal.
pub const MAX_OFFERED: usize = 16;

fn id_payload(w: &mut codec::Writer<'_>, ip: IpAddr) -> Result<(), codec::NoSpace> {
    match ip {
        IpAddr::V4(a) => {
            w.put_slice(&[IdType::IPV4_ADDR.0, IPPROTO_UDP])?;
            w.put_u16(L2TP_PORT)?;
            w.put_slice(&a.octets())
        }
        IpAddr::V6(a) => {
            w.put_slice(&[IdType::IPV6_ADDR.0, IPPROTO_UDP])?;
            w.put_u16(L2TP_PORT)?;
            w.put_slice(&a.octets())
        }
    }
}

fn nat_oa_payload(w: &mut codec::Writer<'_>, ip: IpAddr) -> Result<(), codec::NoSpace> {
    match ip {
        IpAddr::V4(a) => {
            w.put_slice(&[IdType::IPV4_ADDR.0, 0, 0, 0])?;
            w.put_slice(&a.octets())
        }
        IpAddr::V6(a) => {
            w.put_slice(&[IdType::IPV6_ADDR.0, 0, 0, 0])?;
            w.put_slice(&a.octets())
        }
    }
}

/// Sends Quick Mode message 1 protecting L2TP (UDP 1701) between `local` and `remote`.
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small.
pub fn initiate<R: CryptoRng + ?Sized>(
    sa: &Phase1Sa,
    policy: &Phase2Policy,
    local: SocketAddr,
    remote: SocketAddr,
    inbound_spi: u32,
    rng: &mut R,
    out: &mut [u8],
) -> Result<(QuickInitiator, usize), Refusal> {
    let message_id = loop {
        let m = rng.next_u32();
        if m != 0 {
            break MessageId(m);
        }
    };
    let offered: Vec<Transform> = policy
        .transforms
        .iter()
        .take(MAX_OFFERED)
        .copied()
        .collect();
    let count = u8::try_from(offered.len()).map_err(|_| Refusal::Malformed)?;
    let nat = sa.nat.encapsulate().then_some(sa.nat.version).flatten();
    let mode = match nat {
        None => EncapsulationMode::TRANSPORT,
        Some(v) if v.uses_draft_numbers() => EncapsulationMode::UDP_TRANSPORT_DRAFT,
        Some(_) => EncapsulationMode::UDP_TRANSPORT,
    };
    let pair = match policy.pfs {
        Pfs::Group(g) => {
            Some(DhKeyPair::generate(g, rng).map_err(|_| Refusal::InvalidKeyInformation)?)
        }
        Pfs::Optional => None,
    };
    let ni = random_nonce(rng);
    let mid_b = message_id.0.to_be_bytes();
    let oa_kind = match nat {
        Some(v) if v.uses_draft_numbers() => PayloadType::NAT_OA_DRAFT,
        _ => PayloadType::NAT_OA,
    };
    let (len, iv) = seal(
        sa,
        ExchangeType::QUICK_MODE,
        message_id,
        &sa.exchange_iv(message_id),
        &[&mid_b],
        true,
        out,
        |m| {
            m.payload(PayloadType::SA, |w| {
                w.put_u32(DOI_IPSEC)?;
                w.put_u32(SIT_IDENTITY_ONLY)?;
                Chain::nested().put(w, PayloadType::PROPOSAL, |w| {
                    w.put_slice(&[1, ProtocolId::ESP.0, 4, count])?;
                    w.put_u32(inbound_spi)?;
                    let mut transforms = Chain::nested();
                    for (i, t) in offered.iter().enumerate() {
                        let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
                        transforms.put(w, PayloadType::TRANSFORM, |w| {
                            write_offer(w, number, *t, mode, policy)
                        })?;
                    }
                    Ok(())
                })
            })?;
            m.payload(PayloadType::NONCE, |w| w.put_slice(&ni))?;
            if let Some(pair) = &pair {
                m.payload(PayloadType::KE, |w| w.put_slice(pair.public_value()))?;
            }
            m.payload(PayloadType::ID, |w| id_payload(w, local.ip()))?;
            m.payload(PayloadType::ID, |w| id_payload(w, remote.ip()))?;
            if nat.is_some() {
                // RFC 3947 §5.2: in transport mode the initiator sends both original addresses.
                m.payload(oa_kind, |w| nat_oa_payload(w, local.ip()))?;
                m.payload(oa_kind, |w| nat_oa_payload(w, remote.ip()))?;
            }
            Ok(())
        },
    )?;
    let state = QuickInitiator {
        message_id,
        inbound_spi,
        offered,
        mode,
        policy: policy.clone(),
        ni,
        pair,
        iv,
        local,
    };
    Ok((state, len))
}

impl QuickInitiator {
    /// The message ID of this exchange.
    #[must_use]
    pub const fn message_id(&self) -> MessageId {
        self.message_id
    }

    /// Verifies message 2 and sends message 3: both ESP SAs exist now.
    ///
    /// # Errors
    /// [`Refusal::NoProposalChosen`] when the responder chose what we did not offer.
    pub fn on_reply(
        &mut self,
        sa: &Phase1Sa,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<(ChildSa, usize), Refusal> {
        let opened = open(sa, message, &self.iv)?;
        if opened.message_id != self.message_id || opened.exchange != ExchangeType::QUICK_MODE {
            return Err(Refusal::Unexpected);
        }
        let mid_b = self.message_id.0.to_be_bytes();
        let payloads = opened.verified(sa, &[&mid_b, &self.ni])?;
        let p = parse(&payloads)?;
        let answer = SecurityAssociation::parse(p.sa).map_err(|_| Refusal::Malformed)?;
        let mut proposals = answer.proposals();
        let proposal = proposals.next().ok_or(Refusal::NoProposalChosen)?;
        let mut transforms = proposal.transforms();
        let t = transforms.next().ok_or(Refusal::NoProposalChosen)?;
        if proposals.next().is_some()
            || transforms.next().is_some()
            || proposal.protocol != ProtocolId::ESP
        {
            return Err(Refusal::NoProposalChosen);
        }
        let outbound_spi = u32::from_be_bytes(
            proposal
                .spi
                .try_into()
                .map_err(|_| Refusal::NoProposalChosen)?,
        );
        let offer = decode(&t, self.policy.sha256_96);
        let transform = offer
            .transform
            .filter(|x| self.offered.contains(x))
            .ok_or(Refusal::NoProposalChosen)?;
        if offer.mode != self.mode {
            return Err(Refusal::NoProposalChosen);
        }
        let encapsulation = if self.mode == EncapsulationMode::TRANSPORT {
            Encapsulation::Transport
        } else {
            Encapsulation::UdpTransport(self.mode)
        };
        let gqm = match (self.pair.take(), p.ke) {
            (Some(pair), Some(ke)) => Some(Secret::new(
                pair.agree(ke)
                    .map_err(|_| Refusal::InvalidKeyInformation)?
                    .as_bytes(),
            )),
            (None, None) => None,
            _ => return Err(Refusal::InvalidKeyInformation),
        };
        let nr = p.nonce.to_vec();
        // The responder may shorten what we proposed, saying so with RESPONDER-LIFETIME.
        let (their_seconds, their_kb) = p.responder_lifetime;
        let lifetime = offer
            .lifetime
            .unwrap_or(self.policy.lifetime)
            .min(their_seconds.unwrap_or(Duration::MAX));
        let lifetime_kb = match (offer.lifetime_kb, their_kb) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (len, _) = seal(
            sa,
            ExchangeType::QUICK_MODE,
            self.message_id,
            &opened.next_iv,
            &[&[0], &mid_b, &self.ni, &nr],
            false,
            out,
            |_| Ok(()),
        )?;
        let child = child(
            sa,
            self.message_id,
            transform,
            encapsulation,
            (self.inbound_spi, outbound_spi),
            (&self.ni, &nr),
            gqm.as_ref(),
            (lifetime, lifetime_kb),
            Some(self.local.ip()),
        );
        Ok((child, len))
    }
}

#[cfg(test)]
mod tests;
