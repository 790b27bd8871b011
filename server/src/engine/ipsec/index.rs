//! The engine's tables of ESP children and peers, with the reverse indexes that let a
//! teardown, a rekey or a NAT move touch only the entries of its own peer: each costs
//! O(log n + that peer's entries), never a scan of every client (50,000 clients leaving at
//! once would otherwise cost 50,000² steps).

use super::{Child, Cookies};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// ESP children by inbound SPI, indexed by LNS peer key and by ISAKMP SA.
#[derive(Debug, Default)]
pub(super) struct Children {
    by_spi: BTreeMap<u32, Child>,
    by_key: BTreeSet<(SocketAddr, u32)>,
    by_cookies: BTreeSet<(Cookies, u32)>,
}

impl Children {
    pub(super) fn len(&self) -> usize {
        self.by_spi.len()
    }

    pub(super) fn get(&self, spi: &u32) -> Option<&Child> {
        self.by_spi.get(spi)
    }

    pub(super) fn insert(&mut self, spi: u32, child: Child) {
        self.remove(&spi);
        self.by_key.insert((child.key, spi));
        self.by_cookies.insert((child.cookies, spi));
        self.by_spi.insert(spi, child);
    }

    pub(super) fn remove(&mut self, spi: &u32) -> Option<Child> {
        let child = self.by_spi.remove(spi)?;
        self.by_key.remove(&(child.key, *spi));
        self.by_cookies.remove(&(child.cookies, *spi));
        Some(child)
    }

    /// Records the highest sequence number opened on `spi`.
    pub(super) fn set_highest(&mut self, spi: u32, sequence: u32) {
        if let Some(c) = self.by_spi.get_mut(&spi) {
            c.highest = sequence;
        }
    }

    /// The SPIs of `key`'s children, lowest first.
    fn of_key(&self, key: SocketAddr) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.by_key
            .range((key, 0)..=(key, u32::MAX))
            .map(|(_, spi)| *spi)
    }

    /// Another child of `key` to fall back to when its newest goes: the highest SPI left.
    pub(super) fn fallback_of(&self, key: SocketAddr) -> Option<u32> {
        self.of_key(key).next_back()
    }

    /// The ISAKMP SA `old` was replaced by `new`: its children move over.
    pub(super) fn rekeyed(&mut self, old: Cookies, new: Cookies) {
        let spis: Vec<u32> = self
            .by_cookies
            .range((old, 0)..=(old, u32::MAX))
            .map(|(_, spi)| *spi)
            .collect();
        for spi in spis {
            self.by_cookies.remove(&(old, spi));
            self.by_cookies.insert((new, spi));
            if let Some(c) = self.by_spi.get_mut(&spi) {
                c.cookies = new;
            }
        }
    }

    /// `key`'s NAT mapping moved to `remote`: its children send there (plain ESP keeps its
    /// port, which is none).
    pub(super) fn moved(&mut self, key: SocketAddr, remote: SocketAddr) {
        let spis: Vec<u32> = self.of_key(key).collect();
        for spi in spis {
            if let Some(c) = self.by_spi.get_mut(&spi) {
                c.path.remote = if c.encapsulated {
                    remote
                } else {
                    SocketAddr::new(remote.ip(), c.path.remote.port())
                };
            }
        }
    }
}

/// ISAKMP SA → LNS peer key, with the reverse index.
#[derive(Debug, Default)]
pub(super) struct Keys {
    of: BTreeMap<Cookies, SocketAddr>,
    by_key: BTreeSet<(SocketAddr, Cookies)>,
}

impl Keys {
    pub(super) fn get(&self, cookies: &Cookies) -> Option<&SocketAddr> {
        self.of.get(cookies)
    }

    pub(super) fn insert(&mut self, cookies: Cookies, key: SocketAddr) {
        self.remove(&cookies);
        self.by_key.insert((key, cookies));
        self.of.insert(cookies, key);
    }

    pub(super) fn remove(&mut self, cookies: &Cookies) -> Option<SocketAddr> {
        let key = self.of.remove(cookies)?;
        self.by_key.remove(&(key, *cookies));
        Some(key)
    }

    /// The ISAKMP SAs of `key`.
    pub(super) fn of_key(&self, key: SocketAddr) -> impl Iterator<Item = Cookies> + '_ {
        let zero = ike::wire::Cookie::default();
        self.by_key
            .range((key, (zero, zero))..)
            .take_while(move |(k, _)| *k == key)
            .map(|(_, c)| *c)
    }

    /// Every ISAKMP SA (tests).
    #[cfg(test)]
    pub(super) fn cookies(&self) -> impl Iterator<Item = &Cookies> {
        self.of.keys()
    }

    /// Whether any ISAKMP SA still belongs to `key`.
    pub(super) fn any_of(&self, key: SocketAddr) -> bool {
        self.of_key(key).next().is_some()
    }
}

/// A moved peer's current address → its LNS key, with the reverse index.
#[derive(Debug, Default)]
pub(super) struct Moved {
    to_key: BTreeMap<SocketAddr, SocketAddr>,
    by_key: BTreeSet<(SocketAddr, SocketAddr)>,
}

impl Moved {
    pub(super) fn get(&self, remote: &SocketAddr) -> Option<&SocketAddr> {
        self.to_key.get(remote)
    }

    pub(super) fn insert(&mut self, remote: SocketAddr, key: SocketAddr) {
        if let Some(old) = self.to_key.insert(remote, key) {
            self.by_key.remove(&(old, remote));
        }
        self.by_key.insert((key, remote));
    }

    /// Forgets every address `key` was seen at.
    pub(super) fn forget(&mut self, key: SocketAddr) {
        let remotes: Vec<SocketAddr> = self
            .by_key
            .range((key, SocketAddr::from(([0, 0, 0, 0], 0)))..)
            .take_while(|(k, _)| *k == key)
            .map(|(_, r)| *r)
            .collect();
        for r in remotes {
            self.by_key.remove(&(key, r));
            self.to_key.remove(&r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::ikev1::main_mode::Path;
    use ike::wire::Cookie;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    fn cookies(n: u8) -> Cookies {
        (Cookie([n; 8]), Cookie([n.wrapping_add(100); 8]))
    }

    fn child(key: SocketAddr, c: Cookies, encapsulated: bool) -> Child {
        Child {
            outbound: 7,
            path: Path {
                local: addr(1, 4500),
                remote: key,
            },
            key,
            cookies: c,
            encapsulated,
            highest: 0,
        }
    }

    /// Three peers whose addresses sort around each other (same address, other ports).
    fn table() -> (Children, [SocketAddr; 3]) {
        let keys = [addr(5, 4500), addr(5, 4501), addr(6, 500)];
        let mut t = Children::default();
        t.insert(30, child(keys[0], cookies(1), true));
        t.insert(10, child(keys[0], cookies(1), true));
        t.insert(20, child(keys[1], cookies(2), true));
        t.insert(40, child(keys[2], cookies(3), false));
        t.insert(25, child(keys[1], cookies(2), true));
        (t, keys)
    }

    #[test]
    fn children_fall_back_within_their_own_peer_only() {
        let (mut t, keys) = table();
        assert_eq!(t.len(), 5);
        assert_eq!(t.fallback_of(keys[0]), Some(30));
        assert_eq!(t.fallback_of(keys[1]), Some(25));
        assert!(t.remove(&30).is_some());
        assert_eq!(t.fallback_of(keys[0]), Some(10));
        assert!(t.remove(&10).is_some());
        assert_eq!(t.fallback_of(keys[0]), None, "nothing of the neighbours");
        assert_eq!(t.fallback_of(keys[1]), Some(25));
        assert!(t.remove(&10).is_none());
        // Re-inserting an SPI under another peer re-files it.
        t.insert(25, child(keys[2], cookies(3), false));
        assert_eq!(t.fallback_of(keys[1]), Some(20));
        assert_eq!(t.fallback_of(keys[2]), Some(40));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_rekey_and_a_move_touch_only_their_peer() {
        let (mut t, keys) = table();
        t.rekeyed(cookies(2), cookies(9));
        assert_eq!(t.get(&20).unwrap().cookies, cookies(9));
        assert_eq!(t.get(&25).unwrap().cookies, cookies(9));
        assert_eq!(t.get(&10).unwrap().cookies, cookies(1));
        // The old cookies file nothing any more, the new ones both children.
        t.rekeyed(cookies(2), cookies(1));
        assert_eq!(t.get(&20).unwrap().cookies, cookies(9));
        t.rekeyed(cookies(9), cookies(8));
        assert_eq!(t.get(&25).unwrap().cookies, cookies(8));

        let now = addr(77, 61_000);
        t.moved(keys[0], now);
        assert_eq!(t.get(&10).unwrap().path.remote, now);
        assert_eq!(t.get(&30).unwrap().path.remote, now);
        assert_eq!(t.get(&20).unwrap().path.remote, keys[1]);
        // Plain ESP keeps its port.
        t.moved(keys[2], now);
        assert_eq!(t.get(&40).unwrap().path.remote, addr(77, 500));
        t.set_highest(40, 99);
        assert_eq!(t.get(&40).unwrap().highest, 99);
    }

    #[test]
    fn keys_and_moves_are_found_and_forgotten_by_peer() {
        let (a, b) = (addr(5, 4500), addr(5, 4501));
        let mut k = Keys::default();
        k.insert(cookies(1), a);
        k.insert(cookies(2), b);
        k.insert(cookies(3), a);
        assert_eq!(k.of_key(a).collect::<Vec<_>>(), [cookies(1), cookies(3)]);
        assert_eq!(k.remove(&cookies(1)), Some(a));
        assert!(k.any_of(a));
        assert_eq!(k.remove(&cookies(3)), Some(a));
        assert!(!k.any_of(a));
        assert!(k.any_of(b));
        // Re-filing cookies under another peer.
        k.insert(cookies(2), a);
        assert!(!k.any_of(b) && k.any_of(a));
        assert_eq!(k.get(&cookies(2)), Some(&a));

        let mut m = Moved::default();
        m.insert(addr(8, 1), a);
        m.insert(addr(8, 2), a);
        m.insert(addr(8, 3), b);
        // An address taken over by another peer leaves the first one's index.
        m.insert(addr(8, 2), b);
        m.forget(a);
        assert_eq!(m.get(&addr(8, 1)), None);
        assert_eq!(m.get(&addr(8, 2)), Some(&b));
        m.forget(b);
        assert_eq!(m.get(&addr(8, 3)), None);
        assert!(m.to_key.is_empty() && m.by_key.is_empty());
    }
}
