//! The SA database: SAs keyed by SPI, with random SPI allocation and a bound on its size.
//!
//! Inbound SAs are found by the SPI in each packet (RFC 4303 §2.1: the receiver chooses it).
//! Outbound SAs can be stored too, keyed by the peer's SPI; callers normally keep them with the
//! peer state instead. A `BTreeMap` keeps lookups deterministic without a hasher seeded from the
//! OS (STYLE.md §14).

use super::sa::{Discard, Opened, Sa, Verified};
use super::{Direction, Spi};
use rand_core::CryptoRng;
use std::collections::BTreeMap;

/// Random draws [`SaDb::allocate_spi`] makes before giving up.
const SPI_ATTEMPTS: usize = 32;

/// Errors from [`SaDb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaDbError {
    /// The database holds its maximum number of SAs.
    #[error("SA database full ({0} SAs)")]
    Full(usize),
    /// An SA with this SPI and direction is already present.
    #[error("SPI {0:#x} already in use")]
    DuplicateSpi(u32),
    /// No free SPI found (the database is nearly full of a 2^32 space, or the RNG is broken).
    #[error("no free SPI found")]
    NoFreeSpi,
}

/// SAs keyed by direction and SPI, at most `capacity` of them.
#[derive(Debug)]
pub struct SaDb {
    /// Boxed: an SA is over a kilobyte (key schedules, replay window), and B-tree nodes hold
    /// eleven values whether used or not.
    sas: BTreeMap<(Direction, Spi), Box<Sa>>,
    /// The most SAs held at once; [`SaDb::insert`] refuses more (bound stated per STYLE.md §5).
    capacity: usize,
}

impl SaDb {
    /// An empty database holding at most `capacity` SAs.
    #[must_use]
    pub const fn new(capacity: usize) -> Self {
        Self {
            sas: BTreeMap::new(),
            capacity,
        }
    }

    /// Number of SAs held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether the database is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty()
    }

    /// The bound given to [`SaDb::new`].
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Picks a random inbound SPI: non-zero, outside the IANA range 1..=255 (RFC 4303 §2.1) and
    /// not used by any inbound SA here. The caller builds the SA with it and calls
    /// [`SaDb::insert`].
    ///
    /// # Errors
    /// [`SaDbError::Full`] if no further SA could be inserted, [`SaDbError::NoFreeSpi`] if
    /// random draws kept colliding.
    pub fn allocate_spi<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<Spi, SaDbError> {
        if self.sas.len() >= self.capacity {
            return Err(SaDbError::Full(self.capacity));
        }
        for _ in 0..SPI_ATTEMPTS {
            let spi = Spi(rng.next_u32());
            if spi.0 >= 256 && !self.sas.contains_key(&(Direction::Inbound, spi)) {
                return Ok(spi);
            }
        }
        Err(SaDbError::NoFreeSpi)
    }

    /// Adds `sa`.
    ///
    /// # Errors
    /// [`SaDbError::Full`] at the bound (nothing is evicted), [`SaDbError::DuplicateSpi`] if an
    /// SA with the same SPI and direction exists. On error `sa` is dropped (its keys with it).
    pub fn insert(&mut self, sa: Sa) -> Result<(), SaDbError> {
        let key = (sa.direction(), sa.spi());
        if self.sas.contains_key(&key) {
            return Err(SaDbError::DuplicateSpi(key.1.0));
        }
        if self.sas.len() >= self.capacity {
            return Err(SaDbError::Full(self.capacity));
        }
        self.sas.insert(key, Box::new(sa));
        Ok(())
    }

    /// The inbound SA for `spi`.
    #[must_use]
    pub fn inbound(&self, spi: Spi) -> Option<&Sa> {
        self.sas.get(&(Direction::Inbound, spi)).map(|sa| &**sa)
    }

    /// The inbound SA for `spi`, mutably.
    pub fn inbound_mut(&mut self, spi: Spi) -> Option<&mut Sa> {
        self.sas
            .get_mut(&(Direction::Inbound, spi))
            .map(|sa| &mut **sa)
    }

    /// The outbound SA sealing to the peer's `spi` (for [`Sa::encrypt`], which needs no more).
    #[must_use]
    pub fn outbound(&self, spi: Spi) -> Option<&Sa> {
        self.sas.get(&(Direction::Outbound, spi)).map(|sa| &**sa)
    }

    /// The outbound SA sealing to the peer's `spi`, mutably.
    pub fn outbound_mut(&mut self, spi: Spi) -> Option<&mut Sa> {
        self.sas
            .get_mut(&(Direction::Outbound, spi))
            .map(|sa| &mut **sa)
    }

    /// Removes and returns an SA (its keys are wiped when it is dropped).
    pub fn remove(&mut self, direction: Direction, spi: Spi) -> Option<Sa> {
        self.sas.remove(&(direction, spi)).map(|sa| *sa)
    }

    /// Opens an ESP packet with the inbound SA its SPI names (see [`Sa::open`]).
    ///
    /// # Errors
    /// [`Discard::Truncated`] if there is no SPI, [`Discard::UnknownSpi`] if no SA has it, or
    /// the SA's own [`Discard`].
    pub fn open(&mut self, packet: &mut [u8]) -> Result<(Spi, Opened), Discard> {
        let spi = match packet.get(..4) {
            Some(&[a, b, c, d]) => Spi(u32::from_be_bytes([a, b, c, d])),
            _ => return Err(Discard::Truncated),
        };
        let sa = self.inbound_mut(spi).ok_or(Discard::UnknownSpi(spi.0))?;
        sa.open(packet).map(|opened| (spi, opened))
    }

    /// The SPI of an ESP packet (its first four bytes).
    ///
    /// # Errors
    /// [`Discard::Truncated`] if there is no SPI.
    pub fn spi_of(packet: &[u8]) -> Result<Spi, Discard> {
        match packet.first_chunk::<4>() {
            Some(&spi) => Ok(Spi(u32::from_be_bytes(spi))),
            None => Err(Discard::Truncated),
        }
    }

    /// The pure half of [`SaDb::open`] ([`Sa::verify`] with the inbound SA the SPI names):
    /// `&self`, so the packets of a batch can be verified on several threads. Hand the result
    /// to [`SaDb::accept`] in packet order.
    ///
    /// # Errors
    /// As [`SaDb::open`]; nothing is counted yet.
    pub fn verify(&self, packet: &mut [u8]) -> Result<(Spi, Verified), Discard> {
        let spi = Self::spi_of(packet)?;
        let sa = self.inbound(spi).ok_or(Discard::UnknownSpi(spi.0))?;
        sa.verify(packet).map(|verified| (spi, verified))
    }

    /// The stateful half of [`SaDb::open`]: [`Sa::accept`] by the SA of `spi` (the replay
    /// window checked again and moved, the counters), if it still exists.
    ///
    /// # Errors
    /// [`Discard::UnknownSpi`] if the SA went away since, or the SA's own [`Discard`].
    pub fn accept(
        &mut self,
        spi: Spi,
        verified: Result<Verified, Discard>,
    ) -> Result<Opened, Discard> {
        let sa = self.inbound_mut(spi).ok_or(Discard::UnknownSpi(spi.0))?;
        sa.accept(verified)
    }
}
