//! Diffie-Hellman work done by the driver (with [`Config::dh_offload`]).
//!
//! Answering Main Mode message 3 costs two modular exponentiations (our public value and the
//! shared secret): about a millisecond for MODP-2048, which on the thread that also moves ESP
//! would stall every user's packets while a burst of clients connects. With offload the
//! endpoint does neither in line:
//!
//! - key pairs come from a small pool per group, filled ahead of time by
//!   [`DhJob::Generate`] jobs (a group's pool starts filling the first time it is used); when
//!   the pool is empty (the first use, a burst), message 3 waits for a [`DhJob::KeyPairFor`]
//!   job ([`Half::AwaitKeyPair`]);
//! - message 4 goes out at once with that key pair, and the agreement runs as a
//!   [`DhJob::Agree`] job; message 5 is read once its result is back ([`Half::AwaitAgreement`]);
//! - likewise a Quick Mode with PFS: message 2 goes out with a pooled key pair (with the pool
//!   empty, message 1 waits for a [`DhJob::KeyPairFor`] job, [`KeyPairTarget::QuickMode`]), the
//!   agreement is a [`DhJob::AgreeQuick`] job, and message 3 is read once it is back.
//!
//! The private exponents are drawn from the endpoint's RNG (so seeded tests stay
//! deterministic); a job owns its key material and wipes it when dropped. Work is bounded: an
//! agreement exists only for a half-open exchange (capped, and rate-limited by
//! [`Config::max_dh_per_second`]), and each pool holds at most [`Config::dh_pool`] pairs.

use super::{Config, Cookies, Endpoint, Event, Half, MAX_MESSAGE, Quick, Refusal};
use crate::crypto::{Agreement, DhError, DhGroup, DhKeyPair, DrawnKey, SharedSecret};
use crate::ikev1::main_mode::Signing;
use crate::wire::Header;
use rand_core::CryptoRng;
use std::collections::VecDeque;
use std::time::Instant;

/// The exchange that waits for a [`DhJob::KeyPairFor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairTarget {
    /// The Main Mode with these cookies: message 4 waits.
    MainMode(Cookies),
    /// A Quick Mode with PFS that we answer: message 2 waits.
    QuickMode {
        /// Its ISAKMP SA.
        cookies: Cookies,
        /// Its message ID.
        message_id: u32,
    },
}

/// Diffie-Hellman work for the driver: self-contained, to run on any thread.
#[derive(Debug)]
pub enum DhJob {
    /// Compute a key pair for the pool.
    Generate(DrawnKey),
    /// Compute the key pair that an exchange waits for.
    KeyPairFor {
        /// The exchange.
        target: KeyPairTarget,
        /// Our private key, drawn.
        drawn: DrawnKey,
    },
    /// Compute the shared secret of the exchange with these cookies.
    Agree {
        /// The exchange.
        cookies: Cookies,
        /// Our private key and the peer's public value.
        agreement: Box<Agreement>,
    },
    /// Sign our HASH_R for message 6 (certificates: an RSA private-key operation).
    Sign {
        /// The exchange.
        cookies: Cookies,
        /// The hash and the key.
        signing: Box<Signing>,
    },
    /// Compute the PFS secret of a Quick Mode we answer.
    AgreeQuick {
        /// Its ISAKMP SA.
        cookies: Cookies,
        /// Its message ID.
        message_id: u32,
        /// Our private key and the peer's public value.
        agreement: Box<Agreement>,
    },
}

/// A finished [`DhJob`], for [`Endpoint::handle_dh_done`].
#[derive(Debug)]
pub enum DhDone {
    /// A key pair for the pool.
    Generated {
        /// Its group.
        group: DhGroup,
        /// The pair, or why there is none.
        result: Result<DhKeyPair, DhError>,
    },
    /// The key pair an exchange waits for.
    KeyPairFor {
        /// The exchange.
        target: KeyPairTarget,
        /// The pair, or why there is none.
        result: Result<DhKeyPair, DhError>,
    },
    /// The agreement of an exchange.
    Agreed {
        /// The exchange.
        cookies: Cookies,
        /// `g^xy`, or why the peer's value was refused.
        result: Result<SharedSecret, DhError>,
    },
    /// Our signature for message 6.
    Signed {
        /// The exchange.
        cookies: Cookies,
        /// The signature, or why there is none.
        result: Result<Vec<u8>, Refusal>,
    },
    /// The PFS agreement of a Quick Mode.
    AgreedQuick {
        /// Its ISAKMP SA.
        cookies: Cookies,
        /// Its message ID.
        message_id: u32,
        /// `g(qm)^xy`, or why the peer's value was refused.
        result: Result<SharedSecret, DhError>,
    },
}

impl DhJob {
    /// Does the work (the expensive part; call it off the packet thread).
    #[must_use]
    pub fn run(self) -> DhDone {
        match self {
            Self::Generate(drawn) => DhDone::Generated {
                group: drawn.group(),
                result: drawn.compute(),
            },
            Self::KeyPairFor { target, drawn } => DhDone::KeyPairFor {
                target,
                result: drawn.compute(),
            },
            Self::Agree { cookies, agreement } => DhDone::Agreed {
                cookies,
                result: agreement.run(),
            },
            Self::Sign { cookies, signing } => DhDone::Signed {
                cookies,
                result: signing.run(),
            },
            Self::AgreeQuick {
                cookies,
                message_id,
                agreement,
            } => DhDone::AgreedQuick {
                cookies,
                message_id,
                result: agreement.run(),
            },
        }
    }
}

/// Key pairs of one group computed ahead.
#[derive(Debug)]
struct Pool {
    group: DhGroup,
    ready: Vec<DhKeyPair>,
    /// Generate jobs handed out and not back yet.
    generating: usize,
}

/// The endpoint's side of the offload.
#[derive(Debug, Default)]
pub(super) struct DhWork {
    /// Agreements waiting for the driver.
    jobs: VecDeque<DhJob>,
    /// One pool per group used so far (a handful at most: one per group the policy accepts).
    pools: Vec<Pool>,
}

impl DhWork {
    /// A key pair of `group` from the pool (whose filling starts with the first use), or
    /// `None`: nothing is computed here, the caller asks [`DhWork::key_pair_for`] and waits.
    pub(super) fn pooled(&mut self, group: DhGroup) -> Option<DhKeyPair> {
        self.pool_of(group).ready.pop()
    }

    pub(super) fn key_pair_for(&mut self, target: KeyPairTarget, drawn: DrawnKey) {
        self.pool_of(drawn.group());
        self.jobs.push_back(DhJob::KeyPairFor { target, drawn });
    }

    /// The pool of `group`, created (empty: it fills from then on) on first use.
    fn pool_of(&mut self, group: DhGroup) -> &mut Pool {
        if let Some(i) = self.pools.iter().position(|p| p.group == group) {
            return &mut self.pools[i];
        }
        self.pools.push(Pool {
            group,
            ready: Vec::new(),
            generating: 0,
        });
        let last = self.pools.len() - 1;
        &mut self.pools[last]
    }

    pub(super) fn agree(&mut self, cookies: Cookies, agreement: Agreement) {
        self.jobs.push_back(DhJob::Agree {
            cookies,
            agreement: Box::new(agreement),
        });
    }

    pub(super) fn sign(&mut self, cookies: Cookies, signing: Signing) {
        self.jobs.push_back(DhJob::Sign {
            cookies,
            signing: Box::new(signing),
        });
    }

    pub(super) fn agree_quick(&mut self, cookies: Cookies, message_id: u32, agreement: Agreement) {
        self.jobs.push_back(DhJob::AgreeQuick {
            cookies,
            message_id,
            agreement: Box::new(agreement),
        });
    }

    /// Key pairs of `group` ready now (for tests and metrics).
    pub(super) fn ready(&self, group: DhGroup) -> usize {
        self.pools
            .iter()
            .find(|p| p.group == group)
            .map_or(0, |p| p.ready.len())
    }
}

impl<R: CryptoRng> Endpoint<R> {
    /// The next piece of Diffie-Hellman work for the driver (only with [`Config::dh_offload`]):
    /// pending agreements first, then key pairs to refill the pools. Run it with
    /// [`DhJob::run`] anywhere and return the result through [`Endpoint::handle_dh_done`].
    pub fn poll_dh_job(&mut self) -> Option<DhJob> {
        if let Some(job) = self.dh.jobs.pop_front() {
            return Some(job);
        }
        let Config {
            dh_offload,
            dh_pool,
            ..
        } = self.config;
        if !dh_offload {
            return None;
        }
        let pool = self
            .dh
            .pools
            .iter_mut()
            .find(|p| p.ready.len() + p.generating < dh_pool)?;
        pool.generating += 1;
        Some(DhJob::Generate(DhKeyPair::draw(pool.group, &mut self.rng)))
    }

    /// Takes back the result of a [`DhJob`]. An agreement lets its exchange read message 5
    /// (at once if it already came); a refused public value ends the exchange. Results for
    /// exchanges that ended meanwhile are dropped.
    pub fn handle_dh_done(&mut self, now: Instant, done: DhDone) {
        match done {
            DhDone::Generated { group, result } => {
                if let Some(pool) = self.dh.pools.iter_mut().find(|p| p.group == group) {
                    pool.generating = pool.generating.saturating_sub(1);
                    if let Ok(pair) = result
                        && pool.ready.len() < self.config.dh_pool
                    {
                        pool.ready.push(pair);
                    }
                }
            }
            DhDone::KeyPairFor {
                target: KeyPairTarget::MainMode(cookies),
                result,
            } => self.key_pair_ready(now, cookies, result),
            DhDone::KeyPairFor {
                target:
                    KeyPairTarget::QuickMode {
                        cookies,
                        message_id,
                    },
                result,
            } => self.quick_key_pair_ready(now, cookies, message_id, result),
            DhDone::Agreed { cookies, result } => self.agreed(now, cookies, result),
            DhDone::Signed { cookies, result } => self.signed(now, cookies, result),
            DhDone::AgreedQuick {
                cookies,
                message_id,
                result,
            } => self.agreed_quick(now, cookies, message_id, result),
        }
        self.rearm_changed();
    }

    fn key_pair_ready(&mut self, now: Instant, key: Cookies, result: Result<DhKeyPair, DhError>) {
        let Some(mut p) = self.pending.remove(&key) else {
            return;
        };
        let Half::AwaitKeyPair { state, message3 } = p.state else {
            self.pending.insert(key, p);
            return;
        };
        let Ok(pair) = result else {
            self.events.push_back(Event::Refused {
                peer: p.path.remote,
                refusal: Refusal::InvalidKeyInformation,
            });
            return;
        };
        // Through the pool, where the answer takes it from (the last in is the first out).
        self.dh.pool_of(pair.group()).ready.push(pair);
        p.state = Half::AwaitKe(state);
        self.pending.insert(key, p);
        let (path, message) = message3;
        let _ = self.on_pending_with(now, path, key, &message, true);
    }

    /// The key pair a Quick Mode responder waits for: message 1 is answered now (the pair goes
    /// through the pool, where the answer takes it from), or the exchange ends if there is none.
    fn quick_key_pair_ready(
        &mut self,
        now: Instant,
        key: Cookies,
        message_id: u32,
        result: Result<DhKeyPair, DhError>,
    ) {
        let Some(e) = self.established.get_mut(&key) else {
            return;
        };
        if !e
            .quick
            .get(&message_id)
            .is_some_and(|q| matches!(q.state, Quick::AwaitKeyPair))
        {
            return;
        }
        let Some(q) = e.quick.remove(&message_id) else {
            return;
        };
        super::release_if_empty(&mut e.quick);
        let Ok(pair) = result else {
            let peer = e.path.remote;
            self.events.push_back(Event::Refused {
                peer,
                refusal: Refusal::InvalidKeyInformation,
            });
            return;
        };
        self.dh.pool_of(pair.group()).ready.push(pair);
        if let Some((path, message)) = q.early
            && let Ok(h) = Header::new_checked(message.as_slice())
        {
            // Refusals were recorded as events; the driver sees them there.
            let _ = self.on_established(now, path, key, &h, &message);
        }
    }

    fn agreed(&mut self, now: Instant, key: Cookies, result: Result<SharedSecret, DhError>) {
        let Some(mut p) = self.pending.remove(&key) else {
            return;
        };
        let Half::AwaitAgreement { state, early } = p.state else {
            self.pending.insert(key, p);
            return;
        };
        let Ok(shared) = result else {
            self.events.push_back(Event::Refused {
                peer: p.path.remote,
                refusal: Refusal::InvalidKeyInformation,
            });
            return;
        };
        self.stats.dh_computations += 1;
        p.state = Half::AwaitAuth(Box::new(state.agreed(&shared)));
        self.pending.insert(key, p);
        if let Some((path, message)) = early {
            // Refusals were recorded as events; the driver sees them there.
            let _ = self.on_pending(now, path, key, &message);
        }
    }

    fn signed(&mut self, now: Instant, key: Cookies, result: Result<Vec<u8>, Refusal>) {
        let Some(p) = self.pending.remove(&key) else {
            return;
        };
        let Half::AwaitSignature {
            state,
            checked,
            message5: (path, message),
        } = p.state
        else {
            self.pending.insert(key, p);
            return;
        };
        let mut buf = [0u8; MAX_MESSAGE];
        match result.and_then(|sig| state.answer_signed(*checked, sig, &mut buf)) {
            Ok((sa, len)) => {
                let out = buf.get(..len).unwrap_or_default().to_vec();
                self.answer_message5(now, sa, (p.path, path), message, out);
            }
            Err(refusal) => {
                self.events.push_back(Event::Refused {
                    peer: p.path.remote,
                    refusal,
                });
            }
        }
    }

    fn agreed_quick(
        &mut self,
        now: Instant,
        key: Cookies,
        message_id: u32,
        result: Result<SharedSecret, DhError>,
    ) {
        let Some(e) = self.established.get_mut(&key) else {
            return;
        };
        let Some(q) = e.quick.get_mut(&message_id) else {
            return;
        };
        let Quick::Responder(r) = &mut q.state else {
            return;
        };
        if !r.awaiting_agreement() {
            return;
        }
        let Ok(shared) = result else {
            let spi = r.inbound_spi();
            e.quick.remove(&message_id);
            super::release_if_empty(&mut e.quick);
            let peer = e.path.remote;
            self.spis.remove(&spi);
            self.events.push_back(Event::Refused {
                peer,
                refusal: Refusal::InvalidKeyInformation,
            });
            return;
        };
        r.agreed(&shared);
        self.stats.dh_computations += 1;
        if let Some((path, message)) = q.early.take()
            && let Ok(h) = Header::new_checked(message.as_slice())
        {
            // Refusals were recorded as events; the driver sees them there.
            let _ = self.on_established(now, path, key, &h, &message);
        }
    }

    /// Key pairs of `group` computed ahead and not used yet.
    pub fn dh_ready(&self, group: DhGroup) -> usize {
        self.dh.ready(group)
    }
}
