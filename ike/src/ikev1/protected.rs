//! Encrypted exchanges after phase 1 (Quick Mode, Informational): the HASH payload that leads
//! every message (RFC 2409 §5.5, §5.7) and the per-exchange CBC IV chain (Appendix B).

use super::main_mode::{Phase1Sa, Refusal};
use crate::wire::{
    ExchangeType, FLAG_ENCRYPTION, HEADER_LEN, Header, MessageId, MessageWriter, Payload,
    PayloadType, Payloads,
};
use subtle::ConstantTimeEq;

/// A decrypted message: its header fields and plaintext.
#[derive(Debug)]
pub struct Opened {
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Message ID.
    pub message_id: MessageId,
    /// Type of the first payload.
    pub first: PayloadType,
    /// The plaintext (payload chain and padding).
    pub plain: Vec<u8>,
    /// The IV for the next message of this exchange (this message's last ciphertext block).
    pub next_iv: Vec<u8>,
}

/// Decrypts a message of `sa` with `iv`.
///
/// # Errors
/// [`Refusal::Unexpected`] for other cookies or a clear message, [`Refusal::Malformed`] for a
/// body that is not whole cipher blocks.
pub fn open(sa: &Phase1Sa, message: &[u8], iv: &[u8]) -> Result<Opened, Refusal> {
    let h = Header::new_checked(message).map_err(|_| Refusal::Malformed)?;
    if h.initiator_cookie() != sa.cky_i || h.responder_cookie() != sa.cky_r || !h.is_encrypted() {
        return Err(Refusal::Unexpected);
    }
    let block = sa.suite.cipher.block_len();
    let mut plain = h.body().to_vec();
    if plain.is_empty() || !plain.len().is_multiple_of(block) {
        return Err(Refusal::Malformed);
    }
    let next_iv = plain[plain.len() - block..].to_vec();
    sa.cipher()?
        .decrypt_cbc(iv, &mut plain)
        .map_err(|_| Refusal::Malformed)?;
    Ok(Opened {
        exchange: h.exchange_type(),
        message_id: h.message_id(),
        first: h.next_payload(),
        plain,
        next_iv,
    })
}

impl Opened {
    /// Checks the leading HASH payload: `prf(SKEYID_a, prefix… | every payload after HASH)`
    /// (padding excluded), in constant time, and returns all payloads.
    ///
    /// # Errors
    /// [`Refusal::Malformed`] when the chain is broken or does not start with HASH,
    /// [`Refusal::AuthenticationFailed`] when the hash differs.
    pub fn verified(&self, sa: &Phase1Sa, prefix: &[&[u8]]) -> Result<Vec<Payload<'_>>, Refusal> {
        let payloads = Payloads::validate(self.first, &self.plain)
            .map_err(|_| Refusal::Malformed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Refusal::Malformed)?;
        let hash = payloads
            .first()
            .filter(|p| p.kind == PayloadType::HASH)
            .ok_or(Refusal::Malformed)?;
        let after = 4 + hash.body.len();
        let end: usize = payloads.iter().map(|p| 4 + p.body.len()).sum();
        let covered = self.plain.get(after..end).ok_or(Refusal::Malformed)?;
        let mut parts: Vec<&[u8]> = prefix.to_vec();
        parts.push(covered);
        let expected = sa.keys.hash_a(&parts);
        if !bool::from(expected.expose().ct_eq(hash.body)) {
            return Err(Refusal::AuthenticationFailed);
        }
        Ok(payloads)
    }
}

/// Writes an encrypted message that starts with `HASH = prf(SKEYID_a, prefix… | payloads after
/// HASH)`; `payloads` writes those. With `hash_covers_payloads = false` the hash covers only the
/// prefix (Quick Mode HASH(3)). Returns the length and the next IV.
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small.
#[expect(
    clippy::too_many_arguments,
    reason = "header fields, IV, hash inputs and body are all distinct"
)]
pub fn seal(
    sa: &Phase1Sa,
    exchange: ExchangeType,
    message_id: MessageId,
    iv: &[u8],
    prefix: &[&[u8]],
    hash_covers_payloads: bool,
    out: &mut [u8],
    payloads: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), codec::NoSpace>,
) -> Result<(usize, Vec<u8>), Refusal> {
    let hash_len = sa.suite.prf().output_len();
    let block = sa.suite.cipher.block_len();
    let mut m = MessageWriter::new(
        out,
        sa.cky_i,
        sa.cky_r,
        exchange,
        FLAG_ENCRYPTION,
        message_id,
    )
    .map_err(|_| Refusal::Malformed)?;
    m.payload(PayloadType::HASH, |w| w.put_fill(0, hash_len))
        .map_err(|_| Refusal::Malformed)?;
    let after = HEADER_LEN + 4 + hash_len;
    payloads(&mut m).map_err(|_| Refusal::Malformed)?;
    let end = m.written().len();
    let mut parts: Vec<&[u8]> = prefix.to_vec();
    if hash_covers_payloads {
        parts.push(&m.written()[after..end]);
    }
    let hash = sa.keys.hash_a(&parts);
    m.body_mut()[4..4 + hash_len].copy_from_slice(hash.expose());
    let pad = (block - (end - HEADER_LEN) % block) % block;
    m.put_raw(&[0u8; 16][..pad])
        .map_err(|_| Refusal::Malformed)?;
    sa.cipher()?
        .encrypt_cbc(iv, m.body_mut())
        .map_err(|_| Refusal::Malformed)?;
    let message = m.finish().map_err(|_| Refusal::Malformed)?;
    let next_iv = message[message.len() - block..].to_vec();
    Ok((message.len(), next_iv))
}
