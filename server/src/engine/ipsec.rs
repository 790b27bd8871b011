//! The IPsec layer of the LNS: IKE, the ESP SA database, and the inner UDP/1701 that carries
//! L2TP, around the [`Lns`] layer.
//!
//! ```text
//! UDP 500  ─ISAKMP──────────▶ ike::Endpoint ─ChildSaUp─▶ esp::SaDb
//! UDP 4500 ─marker+ISAKMP───▶ ike::Endpoint
//! UDP 4500 ─ESP─┐
//! proto 50 ─ESP─┴▶ SaDb::open ─UDP/1701─▶ Lns ─IPv4─▶ TUN
//! TUN ─IPv4─▶ Lns ─L2TP─▶ UDP header ─▶ Sa::seal ─▶ proto 50 or UDP 4500
//! ```
//!
//! Plain L2TP that did not arrive inside ESP never reaches the LNS layer.

use super::lns::{Drop as LnsDrop, Lns, LnsEvent};
use super::stats::{Attempts, EngineStats, Snapshot};
use ike::endpoint::{Endpoint as Ike, Event as IkeEvent};
use ike::esp::{Direction, IpProtocol, Sa, SaDb, Spi, Udp4500, classify_udp4500};
use ike::ikev1::main_mode::Path;
use ike::ikev1::phase2::Encapsulation;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Instant;

/// Bytes needed before an IP packet read from TUN: ESP header and IV (24), UDP (8), L2TP (6),
/// PPP (4), rounded up.
pub const HEADROOM: usize = 64;
/// Bytes needed after it: ESP padding, trailer and ICV.
pub const TAILROOM: usize = 64;
/// The L2TP port.
const L2TP_PORT: u16 = 1701;
/// Length of the inner UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Peers remembered as speaking plain L2TP.
const MAX_PLAIN_PEERS: usize = 4096;

/// How a datagram leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Over UDP (IKE on 500/4500, or UDP-encapsulated ESP on 4500).
    Udp {
        /// Our address and port.
        local: SocketAddr,
        /// Destination.
        remote: SocketAddr,
        /// Prefix the 4-byte non-ESP marker (IKE on port 4500).
        non_esp_marker: bool,
    },
    /// As an IP protocol 50 packet.
    Esp {
        /// Our address: the one the peer sends to (a wildcard-bound server must send from it).
        local: IpAddr,
        /// Destination.
        remote: IpAddr,
    },
}

/// A datagram to send: where, and which bytes of the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// Route.
    pub route: Route,
    /// The bytes to send.
    pub range: Range<usize>,
}

/// Why an input was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    /// IKE refused it.
    #[error("IKE: {0}")]
    Ike(ike::endpoint::Discard),
    /// ESP refused it.
    #[error("ESP: {0:?}")]
    Esp(ike::esp::Discard),
    /// The ESP payload is not UDP to port 1701.
    #[error("not L2TP inside ESP")]
    NotL2tp,
    /// L2TP that did not come through IPsec.
    #[error("plain L2TP refused")]
    PlainL2tp,
    /// A NAT keepalive (not an error; nothing to do).
    #[error("keepalive")]
    Keepalive,
    /// The LNS layer refused it.
    #[error("{0}")]
    Lns(LnsDrop),
    /// No ESP SA for the client the packet is for.
    #[error("no SA")]
    NoSa,
    /// No room for the headers.
    #[error("no room")]
    NoRoom,
}

type Cookies = (ike::wire::Cookie, ike::wire::Cookie);

#[derive(Debug, Clone, Copy)]
struct Child {
    outbound: u32,
    /// Where ESP goes now (follows the peer's NAT mapping).
    path: Path,
    /// The peer as the LNS knows it: its IKE address when it first connected.
    key: SocketAddr,
    /// The ISAKMP SA it belongs to.
    cookies: Cookies,
    encapsulated: bool,
    /// The highest sequence number opened: only a newer packet may move the peer.
    highest: u32,
}

/// What [`Engine::frame`] made of a datagram for a client.
#[derive(Debug)]
enum Framing {
    /// Plain L2TP (allowed by configuration): nothing to encrypt.
    Plain(Out),
    /// Framed by an outbound SA, to be encrypted.
    Esp(EspFrame),
}

/// An ESP packet framed in a caller's buffer, waiting for encryption.
#[derive(Debug, Clone)]
struct EspFrame {
    spi: Spi,
    framed: ike::esp::Framed,
    route: Route,
}

impl EspFrame {
    /// Encrypts the packet in `buf` with its SA (read-only: any thread may run this).
    fn encrypt(&self, sadb: &SaDb, buf: &mut [u8]) -> Result<Out, Drop> {
        let sa = sadb.outbound(self.spi).ok_or(Drop::NoSa)?;
        let range = sa.encrypt(buf, &self.framed).map_err(|_| Drop::NoRoom)?;
        Ok(Out {
            route: self.route,
            range,
        })
    }
}

/// The whole server engine below the driver.
#[derive(Debug)]
pub struct Engine<R> {
    ike: Ike<ChaCha20Rng>,
    sadb: SaDb,
    lns: Lns<ChaCha20Rng>,
    /// Inbound SPI → the child it belongs to.
    children: index::Children,
    /// Peer (LNS key) → the inbound SPI of its newest child.
    newest: BTreeMap<SocketAddr, u32>,
    /// ISAKMP SA → the LNS key of its peer.
    keys: index::Keys,
    /// A peer's current IKE address → its LNS key, for peers whose NAT mapping moved.
    moved: index::Moved,
    /// LNS key → the peer's IKE identity (a moved peer's next ISAKMP SA must present it).
    identities: BTreeMap<SocketAddr, ike::ikev1::main_mode::PeerId>,
    /// Peer → the client's inner L2TP port, learned from its first packet.
    inner_port: BTreeMap<SocketAddr, u16>,
    /// Accept L2TP on UDP 1701 without IPsec (off unless configured: it is unencrypted).
    allow_plain_l2tp: bool,
    /// Peers that spoke plain L2TP, and the local address they reached.
    plain_peers: BTreeMap<SocketAddr, SocketAddr>,
    /// Wireshark key-table rows for a debugging key log, when enabled (bounded).
    keylog: Option<Vec<KeyLogRow>>,
    rng: R,
    stats: EngineStats,
    /// Connections between their first IKE packet and their outcome (bounded).
    attempts: Attempts,
}

/// A row of one of Wireshark's key tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLogRow {
    /// `ikev1_decryption_table`: initiator cookie and ISAKMP encryption key.
    Ikev1(String),
    /// `esp_sa`: addresses, SPI, algorithms and keys of one ESP SA.
    Esp(String),
}

/// Wireshark's names for an ESP transform (its `esp_sa` table: encryption, authentication).
fn wireshark_names(t: ike::esp::Transform) -> (&'static str, &'static str) {
    use ike::crypto::{CipherAlgorithm as C, IntegrityAlgorithm as I};
    let cipher = match t.cipher() {
        C::AesCbc128 | C::AesCbc192 | C::AesCbc256 => "AES-CBC [RFC3602]",
        C::TripleDesCbc => "TripleDES-CBC [RFC2451]",
        C::AesGcm16_128 | C::AesGcm16_256 => "AES-GCM with 16 octet ICV [RFC4106]",
    };
    let integrity = match t.integrity() {
        Some(I::HmacSha1_96) => "HMAC-SHA-1-96 [RFC2404]",
        Some(I::HmacSha256_128) => "HMAC-SHA-256-128 [RFC4868]",
        Some(I::HmacSha256_96) => "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]",
        Some(I::HmacSha384_192) => "HMAC-SHA-384-192 [RFC4868]",
        Some(I::HmacSha512_256) => "HMAC-SHA-512-256 [RFC4868]",
        None => "NULL",
    };
    (cipher, integrity)
}

/// An ESP transform as strongSwan writes it: `aes256-sha1`, `aes128gcm16`.
fn esp_name(t: ike::esp::Transform) -> String {
    match t.integrity() {
        Some(i) => format!("{}-{i}", t.cipher()),
        None => t.cipher().to_string(),
    }
}

/// A peer identity for the log: an address, a name, or the length of a DN (DNs are logged
/// by the certificate check itself).
fn id_name(id: &ike::ikev1::main_mode::PeerId) -> String {
    use ike::wire::IdType;
    let printable = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .chars()
            .take(128)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect::<String>()
    };
    match (id.id_type, id.data.as_slice()) {
        (IdType::IPV4_ADDR, &[a, b, c, d]) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
        (IdType::IPV6_ADDR, d) if d.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(d);
            std::net::Ipv6Addr::from(o).to_string()
        }
        (IdType::FQDN | IdType::USER_FQDN, d) => printable(d),
        (t, d) => format!("type {} ({} bytes)", t.0, d.len()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<R: CryptoRng> Engine<R> {
    /// Joins the layers.
    pub fn new(
        ike: ike::endpoint::Config,
        lns: Lns<ChaCha20Rng>,
        sa_capacity: usize,
        mut rng: R,
    ) -> Self {
        Self {
            ike: Ike::new(ike, ChaCha20Rng::from_rng(&mut rng)),
            sadb: SaDb::new(sa_capacity),
            lns,
            children: index::Children::default(),
            newest: BTreeMap::new(),
            keys: index::Keys::default(),
            moved: index::Moved::default(),
            identities: BTreeMap::new(),
            inner_port: BTreeMap::new(),
            allow_plain_l2tp: false,
            plain_peers: BTreeMap::new(),
            keylog: None,
            rng,
            stats: EngineStats::default(),
            attempts: Attempts::default(),
        }
    }

    /// Records ISAKMP and ESP keys as rows of Wireshark's `ikev1_decryption_table` and
    /// `esp_sa` tables (debugging only: whoever reads them can decrypt the traffic). Drain
    /// them with [`Engine::take_keylog`].
    pub fn enable_keylog(&mut self) {
        self.keylog = Some(Vec::new());
    }

    /// The key-log rows recorded since the last call.
    pub fn take_keylog(&mut self) -> Vec<KeyLogRow> {
        self.keylog
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default()
    }

    /// Accepts L2TP on UDP 1701 outside IPsec (for testing or trusted networks only: nothing
    /// is encrypted).
    pub const fn allow_plain_l2tp(&mut self, allow: bool) {
        self.allow_plain_l2tp = allow;
    }

    /// The LNS layer (pool, sessions, counters).
    pub const fn lns(&self) -> &Lns<ChaCha20Rng> {
        &self.lns
    }

    /// The LNS layer, mutable (events).
    pub const fn lns_mut(&mut self) -> &mut Lns<ChaCha20Rng> {
        &mut self.lns
    }

    /// Installed ESP SA pairs.
    pub fn child_sas(&self) -> usize {
        self.children.len()
    }

    /// A UDP datagram arrived on `local` from `remote` (ports 500 and 4500; 1701 is refused).
    /// An IP packet for TUN comes back as a range of `buf`.
    ///
    /// # Errors
    /// [`Drop`].
    pub fn handle_udp(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        let path = Path { local, remote };
        let result = match local.port() {
            4500 => match classify_udp4500(buf) {
                // Shorter than an ESP header, or a bare non-ESP marker.
                Err(_) => Err(Drop::Esp(ike::esp::Discard::Truncated)),
                Ok(Udp4500::NatKeepalive) => Err(Drop::Keepalive),
                Ok(Udp4500::Ike) => {
                    let result = self
                        .ike
                        .handle_datagram(now, path, &buf[4..])
                        .map_err(Drop::Ike);
                    self.pump(now);
                    result.map(|()| None)
                }
                Ok(Udp4500::Esp) => self.esp_in(now, remote, buf),
            },
            L2TP_PORT if self.allow_plain_l2tp => {
                if self.plain_peers.len() < MAX_PLAIN_PEERS
                    || self.plain_peers.contains_key(&remote)
                {
                    self.plain_peers.insert(remote, local);
                }
                let result = self.lns.handle_l2tp(now, remote, buf).map_err(Drop::Lns);
                self.pump(now);
                result
            }
            L2TP_PORT => Err(Drop::PlainL2tp),
            _ => {
                let result = self.ike.handle_datagram(now, path, buf).map_err(Drop::Ike);
                self.pump(now);
                result.map(|()| None)
            }
        };
        self.count_udp(now, local, remote, buf, &result);
        result
    }

    /// An IP protocol 50 packet arrived from `remote` (payload after the IP header).
    ///
    /// # Errors
    /// [`Drop`].
    pub fn handle_esp(
        &mut self,
        now: Instant,
        remote: IpAddr,
        packet: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        let result = self.esp_in(now, SocketAddr::new(remote, 0), packet);
        self.stats.result(&result, Some(remote));
        result
    }

    fn esp_in(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        let verdict = self.sadb.verify(packet);
        self.esp_accept(now, from, packet, verdict)
    }

    /// Everything after the crypto of one ESP packet, in packet order: the replay window
    /// (again) and the SA's counters, the peer's NAT mapping, the LNS. `verdict` is what
    /// [`SaDb::verify`] said of `packet`.
    fn esp_accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &mut [u8],
        verdict: Result<(Spi, ike::esp::Verified), ike::esp::Discard>,
    ) -> Result<Option<Range<usize>>, Drop> {
        let (spi, opened) = match verdict {
            Ok((spi, verified)) => (spi, self.sadb.accept(spi, Ok(verified)).map_err(Drop::Esp)?),
            Err(discard) => {
                // Counted by the SA it names, when there is one (as `SaDb::open` does).
                if let Ok(spi) = SaDb::spi_of(packet) {
                    let _ = self.sadb.accept(spi, Err(discard));
                }
                return Err(Drop::Esp(discard));
            }
        };
        self.stats.received(packet.len());
        let child = *self.children.get(&spi.0).ok_or(Drop::NoSa)?;
        // The peer's NAT mapping moved: ESP that verified and is the newest of its SA proves
        // the new address (RFC 3948 §3.2 leaves the policy to us; an old packet replayed from
        // elsewhere never passes the replay window, a late one is not the newest).
        let arrived_from = if child.encapsulated {
            from
        } else {
            SocketAddr::new(from.ip(), child.path.remote.port())
        };
        if opened.sequence > child.highest {
            self.children.set_highest(spi.0, opened.sequence);
            if arrived_from != child.path.remote {
                self.ike.peer_seen_at(child.cookies, arrived_from);
                self.pump(now);
            }
        }
        if opened.next_header != IpProtocol(17) {
            return Err(Drop::NotL2tp);
        }
        let udp = opened.payload.clone();
        let header = packet
            .get(udp.start..udp.start + UDP_HEADER_LEN)
            .ok_or(Drop::NotL2tp)?;
        let (src_port, dst_port) = (
            u16::from_be_bytes([header[0], header[1]]),
            u16::from_be_bytes([header[2], header[3]]),
        );
        if dst_port != L2TP_PORT {
            return Err(Drop::NotL2tp);
        }
        let peer = child.key;
        self.inner_port.insert(peer, src_port);
        let l2tp = udp.start + UDP_HEADER_LEN..udp.end;
        let result = self
            .lns
            .handle_l2tp(now, peer, &mut packet[l2tp.clone()])
            .map_err(Drop::Lns);
        let forwarded = result.map(|r| r.map(|r| r.start + l2tp.start..r.end + l2tp.start));
        self.pump(now);
        forwarded
    }

    /// Takes an IP packet from TUN at `buf[packet]` ([`HEADROOM`] before, [`TAILROOM`] after)
    /// and seals it for its client in place.
    ///
    /// # Errors
    /// [`Drop`].
    pub fn handle_tun(&mut self, buf: &mut [u8], packet: Range<usize>) -> Result<Out, Drop> {
        let result = (self.lns.handle_tun(buf, packet).map_err(Drop::Lns))
            .and_then(|(peer, l2tp)| self.seal(peer, buf, l2tp));
        self.stats.tun_result(&result);
        result
    }

    /// Wraps the inner L2TP datagram at `buf[l2tp]` in UDP and ESP for `peer`.
    fn seal(&mut self, peer: SocketAddr, buf: &mut [u8], l2tp: Range<usize>) -> Result<Out, Drop> {
        match self.frame(peer, buf, l2tp)? {
            Framing::Plain(out) => Ok(out),
            Framing::Esp(esp) => {
                let out = esp.encrypt(&self.sadb, buf)?;
                self.stats.sent(out.range.len());
                Ok(out)
            }
        }
    }

    /// The stateful half of [`Engine::seal`], in packet order: the UDP header, then the ESP
    /// framing by the peer's newest outbound SA (sequence number, padding, CBC IV), or the
    /// plain L2TP route. The encryption is left to [`EspFrame::encrypt`].
    fn frame(
        &mut self,
        peer: SocketAddr,
        buf: &mut [u8],
        l2tp: Range<usize>,
    ) -> Result<Framing, Drop> {
        if let Some(local) = self
            .plain_peers
            .get(&peer)
            .filter(|_| self.allow_plain_l2tp)
        {
            return Ok(Framing::Plain(Out {
                route: Route::Udp {
                    local: *local,
                    remote: peer,
                    non_esp_marker: false,
                },
                range: l2tp,
            }));
        }
        let spi = *self.newest.get(&peer).ok_or(Drop::NoSa)?;
        let child = *self.children.get(&spi).ok_or(Drop::NoSa)?;
        let start = l2tp.start.checked_sub(UDP_HEADER_LEN).ok_or(Drop::NoRoom)?;
        let len = u16::try_from(l2tp.len() + UDP_HEADER_LEN).map_err(|_| Drop::NoRoom)?;
        let dst = self.inner_port.get(&peer).copied().unwrap_or(L2TP_PORT);
        // RFC 768: a zero checksum means none; ESP already protects the datagram, and NAT-T
        // would otherwise need the original addresses to fix it (RFC 3948 §3.1.2).
        // Written field by field into the headroom: nothing is allocated per packet.
        let header = buf.get_mut(start..l2tp.start).ok_or(Drop::NoRoom)?;
        header[0..2].copy_from_slice(&L2TP_PORT.to_be_bytes());
        header[2..4].copy_from_slice(&dst.to_be_bytes());
        header[4..6].copy_from_slice(&len.to_be_bytes());
        header[6..8].copy_from_slice(&[0, 0]);
        let sa = self
            .sadb
            .outbound_mut(Spi(child.outbound))
            .ok_or(Drop::NoSa)?;
        let framed = sa
            .frame(buf, start..l2tp.end, IpProtocol(17), &mut self.rng)
            .map_err(|_| Drop::NoRoom)?;
        let route = if child.encapsulated {
            Route::Udp {
                local: child.path.local,
                remote: child.path.remote,
                non_esp_marker: false,
            }
        } else {
            Route::Esp {
                local: child.path.local.ip(),
                remote: child.path.remote.ip(),
            }
        };
        Ok(Framing::Esp(EspFrame {
            spi: Spi(child.outbound),
            framed,
            route,
        }))
    }

    /// Writes the next control datagram (IKE, or L2TP/PPP control sealed in ESP) into `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Out> {
        if let Some(t) = self.ike.poll_transmit(buf) {
            let route = Route::Udp {
                local: t.local,
                remote: t.remote,
                non_esp_marker: t.non_esp_marker,
            };
            return Some(Out {
                route,
                range: 0..t.len,
            });
        }
        loop {
            let space = buf.get_mut(HEADROOM..buf.len().saturating_sub(TAILROOM))?;
            let (peer, n) = self.lns.poll_transmit(now, space)?;
            match self.seal(peer, buf, HEADROOM..HEADROOM + n) {
                Ok(out) => return Some(out),
                // A client whose SA is gone: its control traffic has nowhere to go.
                Err(_) => continue,
            }
        }
    }

    /// The earliest deadline of every layer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.ike.poll_timeout(), self.lns.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ike.handle_timeout(now);
        self.lns.handle_timeout(now);
        self.pump(now);
        self.attempts.expire(&mut self.stats, now);
    }

    /// From now on the Diffie-Hellman work of the IKE exchanges we answer is left to the
    /// driver: [`Engine::poll_dh_job`] hands it out, [`Engine::handle_dh_done`] takes the
    /// results back (see `ike::endpoint::Config::dh_offload`).
    pub const fn offload_dh(&mut self) {
        self.ike.set_dh_offload(true);
    }

    /// The next Diffie-Hellman job for the driver's workers.
    pub fn poll_dh_job(&mut self) -> Option<ike::endpoint::DhJob> {
        self.ike.poll_dh_job()
    }

    /// A finished Diffie-Hellman job.
    pub fn handle_dh_done(&mut self, now: Instant, done: ike::endpoint::DhDone) {
        self.ike.handle_dh_done(now, done);
        self.pump(now);
    }

    /// A clean stop, first step: every L2TP tunnel ends with StopCCN (Shutting Down), sent
    /// through the still-living ESP SAs. Returns whether there was any tunnel (then the caller
    /// gives the StopCCNs a moment to be acknowledged before [`Engine::finish_shutdown`]).
    pub fn begin_shutdown(&mut self, now: Instant) -> bool {
        let any = self.lns.tunnels() > 0;
        self.lns.close_all(now);
        self.pump(now);
        any
    }

    /// A clean stop, last step: every IKE SA is deleted, the peer told (Delete for its ESP
    /// SAs, then for the ISAKMP SA).
    pub fn finish_shutdown(&mut self, now: Instant) {
        self.ike.close_all();
        self.pump(now);
    }

    /// The LNS key of the peer of an ISAKMP SA now at `remote`.
    fn key_of(&self, cookies: Cookies, remote: SocketAddr) -> SocketAddr {
        self.keys
            .get(&cookies)
            .or_else(|| self.moved.get(&remote))
            .copied()
            .unwrap_or(remote)
    }

    fn log_isakmp_key(&mut self, cookies: (ike::wire::Cookie, ike::wire::Cookie)) {
        let Some(log) = self.keylog.as_mut().filter(|l| l.len() < 1024) else {
            return;
        };
        if let Some(key) = self.ike.isakmp_encryption_key(cookies) {
            log.push(KeyLogRow::Ikev1(format!(
                "{},{}",
                hex(&cookies.0.0),
                hex(key.expose())
            )));
        }
    }

    fn pump(&mut self, now: Instant) {
        self.close_kicked_peers();
        while let Some(event) = self.ike.poll_event() {
            self.attempts.ike(&mut self.stats, &event);
            match event {
                IkeEvent::ChildSaUp {
                    cookies,
                    path,
                    child,
                } => {
                    let transform = child.transform;
                    let inbound =
                        Sa::inbound(Spi(child.inbound_spi), transform, child.inbound_keys());
                    let outbound = Sa::outbound(
                        Spi(child.outbound_spi),
                        transform,
                        child.outbound_keys(),
                        &mut self.rng,
                    );
                    let (Ok(inbound), Ok(outbound)) = (inbound, outbound) else {
                        continue;
                    };
                    if self.sadb.insert(inbound).is_err() || self.sadb.insert(outbound).is_err() {
                        self.sadb.remove(Direction::Inbound, Spi(child.inbound_spi));
                        continue;
                    }
                    let encapsulated =
                        matches!(child.encapsulation, Encapsulation::UdpTransport(_));
                    tracing::info!(
                        peer = %path.remote,
                        esp = %esp_name(transform),
                        encapsulation = if encapsulated { "udp-4500" } else { "esp" },
                        lifetime_s = child.lifetime.as_secs(),
                        spi_in = format_args!("{:#010x}", child.inbound_spi),
                        spi_out = format_args!("{:#010x}", child.outbound_spi),
                        "IPsec SA established"
                    );
                    if let Some(log) = self.keylog.as_mut().filter(|l| l.len() < 1024) {
                        let (cipher, integrity) = wireshark_names(transform);
                        let (us, them) = (path.local.ip(), path.remote.ip());
                        for (src, dst, spi, keys) in [
                            (them, us, child.inbound_spi, child.inbound_keys()),
                            (us, them, child.outbound_spi, child.outbound_keys()),
                        ] {
                            log.push(KeyLogRow::Esp(format!(
                                "\"IPv4\",\"{src}\",\"{dst}\",\"{spi:#010x}\",\"{cipher}\",\"0x{}\",\"{integrity}\",\"0x{}\"",
                                hex(keys.encryption),
                                hex(keys.integrity)
                            )));
                        }
                    }
                    let key = self.key_of(cookies, path.remote);
                    self.children.insert(
                        child.inbound_spi,
                        Child {
                            outbound: child.outbound_spi,
                            path,
                            key,
                            cookies,
                            encapsulated,
                            highest: 0,
                        },
                    );
                    self.newest.insert(key, child.inbound_spi);
                }
                IkeEvent::ChildSaDown {
                    inbound_spi,
                    outbound_spi,
                } => {
                    if let Some(child) = self.children.get(&inbound_spi) {
                        tracing::info!(
                            peer = %child.path.remote,
                            spi_in = format_args!("{inbound_spi:#010x}"),
                            "IPsec SA deleted"
                        );
                    }
                    self.sadb.remove(Direction::Inbound, Spi(inbound_spi));
                    self.sadb.remove(Direction::Outbound, Spi(outbound_spi));
                    if let Some(child) = self.children.remove(&inbound_spi)
                        && self.newest.get(&child.key) == Some(&inbound_spi)
                    {
                        // Fall back to an older pair of the same peer, if one remains.
                        match self.children.fallback_of(child.key) {
                            Some(s) => self.newest.insert(child.key, s),
                            None => self.newest.remove(&child.key),
                        };
                    }
                }
                IkeEvent::Phase1Down {
                    cookies,
                    peer,
                    reason,
                } => {
                    tracing::info!(%peer, ?reason, "IKE SA deleted");
                    let key = self.keys.remove(&cookies).unwrap_or(peer);
                    // Another ISAKMP SA of the same peer may live on (rekey in progress).
                    if !self.keys.any_of(key) {
                        self.moved.forget(key);
                        self.identities.remove(&key);
                    }
                    let peer = key;
                    self.lns.peer_gone(now, peer);
                    self.inner_port.remove(&peer);
                }
                IkeEvent::Phase1Rekeyed { old, new } => {
                    if let Some(key) = self.keys.remove(&old) {
                        self.keys.insert(new, key);
                    }
                    self.children.rekeyed(old, new);
                    if let Some(sa) = self.ike.phase1(new) {
                        tracing::info!(suite = %sa.suite, "IKE SA rekeyed");
                    }
                    self.log_isakmp_key(new);
                }
                IkeEvent::PeerMoved { cookies, path } => {
                    let key = self.key_of(cookies, path.remote);
                    tracing::info!(peer = %key, now = %path.remote, "peer address changed (NAT mapping)");
                    self.moved.insert(path.remote, key);
                    self.children.moved(key, path.remote);
                }
                IkeEvent::Phase1Up {
                    cookies,
                    peer,
                    peer_id,
                    nat,
                } => {
                    if let Some(sa) = self.ike.phase1(cookies) {
                        tracing::info!(
                            %peer,
                            id = %id_name(&peer_id),
                            suite = %sa.suite,
                            lifetime_s = sa.lifetime.as_secs(),
                            nat = nat.peer_behind_nat || nat.local_behind_nat,
                            vendors = %sa.peer_vendors,
                            "IKE SA established"
                        );
                    }
                    self.log_isakmp_key(cookies);
                    // A new ISAKMP SA from a moved peer's new address (its rekey) belongs to
                    // the same LNS peer if it presents the same identity.
                    let key = self
                        .moved
                        .get(&peer)
                        .copied()
                        .filter(|k| self.identities.get(k) == Some(&peer_id))
                        .unwrap_or(peer);
                    self.identities.insert(key, peer_id);
                    self.keys.insert(cookies, key);
                    self.lns.forget_kicked_peer(key);
                }
                // One packet can cause this: `debug`. The refusal that ends a connection
                // attempt is logged at `info` once with its outcome (`stats::Attempts`).
                IkeEvent::Refused { peer, refusal } => {
                    tracing::debug!(%peer, %refusal, "IKE refused")
                }
            }
        }
    }
}

pub mod admin;
mod batch;
mod index;
mod observe;
pub use batch::{RxJob, Serial, Spread, TunJob};
#[cfg(test)]
mod tests;
