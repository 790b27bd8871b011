//! The IPv4 address pool handed out through IPCP.
//!
//! An address is never handed out twice while it is held, and goes back to the pool when the
//! session ends, however it ends (the engine releases it on every session teardown path).
//! Dynamic allocation walks the range from just after the last address handed out, so a freed
//! address is reused as late as possible (a client that reconnects quickly is less likely to
//! receive packets meant for the previous holder). Addresses reserved for users with a static
//! address are never handed out dynamically.

use std::net::Ipv4Addr;

/// Why no address could be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every dynamic address is in use.
    #[error("address pool exhausted")]
    Exhausted,
    /// A static address was asked for but someone holds it.
    #[error("address {0} is already in use")]
    InUse(Ipv4Addr),
    /// A static address outside the pool and not reserved was asked for.
    #[error("address {0} is not in the pool")]
    NotInPool(Ipv4Addr),
}

/// A contiguous range of IPv4 addresses with a bitmap of the ones in use.
#[derive(Debug, Clone)]
pub struct Pool {
    first: u32,
    /// Number of addresses in the range (at most [`Pool::MAX_SIZE`]).
    size: u32,
    /// One bit per address: set while the address is held.
    used: Vec<u64>,
    /// One bit per address: set for addresses reserved for static assignment.
    reserved: Vec<u64>,
    /// Index to start the next dynamic search at.
    cursor: u32,
    in_use: u32,
}

impl Pool {
    /// The largest pool accepted (a /12 worth of addresses).
    pub const MAX_SIZE: u32 = 1 << 20;

    /// A pool of `first..=last`, excluding `exclude` (e.g. the LNS's own PPP address) and
    /// reserving `reserved` (static addresses) from dynamic allocation.
    pub fn new(
        first: Ipv4Addr,
        last: Ipv4Addr,
        exclude: &[Ipv4Addr],
        reserved: &[Ipv4Addr],
    ) -> Result<Self, String> {
        let (a, b) = (u32::from(first), u32::from(last));
        if b < a {
            return Err(format!("pool end {last} is before its start {first}"));
        }
        let size = b - a + 1;
        if size > Self::MAX_SIZE {
            return Err(format!(
                "pool {first}-{last} has {size} addresses; at most {} are supported",
                Self::MAX_SIZE
            ));
        }
        let words = usize::try_from(size.div_ceil(64)).map_err(|_| "pool too large".to_owned())?;
        let mut pool = Self {
            first: a,
            size,
            used: vec![0; words],
            reserved: vec![0; words],
            cursor: 0,
            in_use: 0,
        };
        for addr in exclude.iter().chain(reserved) {
            if let Some(i) = pool.index(*addr) {
                set(&mut pool.reserved, i);
            }
        }
        Ok(pool)
    }

    /// Hands out a free dynamic address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, PoolError> {
        for step in 0..self.size {
            let i = (self.cursor + step) % self.size;
            if !get(&self.used, i) && !get(&self.reserved, i) {
                set(&mut self.used, i);
                self.in_use += 1;
                self.cursor = (i + 1) % self.size;
                return Ok(self.addr(i));
            }
        }
        Err(PoolError::Exhausted)
    }

    /// Hands out a specific address (a user's static address). Reserved addresses and free
    /// pool addresses can be taken; an address outside the pool is refused.
    pub fn allocate_static(&mut self, addr: Ipv4Addr) -> Result<Ipv4Addr, PoolError> {
        let i = self.index(addr).ok_or(PoolError::NotInPool(addr))?;
        if get(&self.used, i) {
            return Err(PoolError::InUse(addr));
        }
        set(&mut self.used, i);
        self.in_use += 1;
        Ok(addr)
    }

    /// Returns an address to the pool. Releasing an address that is not held does nothing and
    /// returns `false`.
    pub fn release(&mut self, addr: Ipv4Addr) -> bool {
        match self.index(addr) {
            Some(i) if get(&self.used, i) => {
                clear(&mut self.used, i);
                self.in_use -= 1;
                true
            }
            _ => false,
        }
    }

    /// Whether `addr` is currently held.
    #[must_use]
    pub fn is_assigned(&self, addr: Ipv4Addr) -> bool {
        self.index(addr).is_some_and(|i| get(&self.used, i))
    }

    /// Whether `addr` lies in the pool's range.
    #[must_use]
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.index(addr).is_some()
    }

    /// Addresses currently held.
    #[must_use]
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Addresses in the range.
    #[must_use]
    pub fn size(&self) -> u32 {
        self.size
    }

    fn index(&self, addr: Ipv4Addr) -> Option<u32> {
        let i = u32::from(addr).checked_sub(self.first)?;
        (i < self.size).then_some(i)
    }

    fn addr(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first + i)
    }
}

fn get(bits: &[u64], i: u32) -> bool {
    let (w, b) = split(i);
    bits.get(w).is_some_and(|word| word & (1 << b) != 0)
}

fn set(bits: &mut [u64], i: u32) {
    let (w, b) = split(i);
    if let Some(word) = bits.get_mut(w) {
        *word |= 1 << b;
    }
}

fn clear(bits: &mut [u64], i: u32) {
    let (w, b) = split(i);
    if let Some(word) = bits.get_mut(w) {
        *word &= !(1 << b);
    }
}

fn split(i: u32) -> (usize, u32) {
    (usize::try_from(i / 64).unwrap_or(usize::MAX), i % 64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_reference_pool_hands_out_99_distinct_addresses_then_refuses() {
        let mut pool = Pool::new(
            ip("172.16.1.2"),
            ip("172.16.1.100"),
            &[ip("172.16.1.1")],
            &[],
        )
        .unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..99 {
            let a = pool.allocate().unwrap();
            assert!(seen.insert(a), "{a} handed out twice");
            assert!(
                (u32::from(ip("172.16.1.2"))..=u32::from(ip("172.16.1.100")))
                    .contains(&u32::from(a))
            );
        }
        assert_eq!(pool.allocate(), Err(PoolError::Exhausted));
        assert_eq!(pool.in_use(), 99);
        assert!(pool.release(ip("172.16.1.51")));
        assert!(
            !pool.release(ip("172.16.1.51")),
            "a second release is a no-op"
        );
        assert_eq!(pool.allocate(), Ok(ip("172.16.1.51")));
    }

    #[test]
    fn a_freed_address_is_reused_last() {
        let mut pool = Pool::new(ip("10.0.0.1"), ip("10.0.0.4"), &[], &[]).unwrap();
        let a = pool.allocate().unwrap();
        pool.release(a);
        assert_eq!(pool.allocate(), Ok(ip("10.0.0.2")));
        assert_eq!(pool.allocate(), Ok(ip("10.0.0.3")));
        assert_eq!(pool.allocate(), Ok(ip("10.0.0.4")));
        assert_eq!(pool.allocate(), Ok(a), "wraps around to the freed address");
    }

    #[test]
    fn reserved_and_excluded_addresses_are_never_dynamic() {
        let mut pool = Pool::new(
            ip("10.0.0.1"),
            ip("10.0.0.4"),
            &[ip("10.0.0.1")],
            &[ip("10.0.0.3")],
        )
        .unwrap();
        assert_eq!(pool.allocate(), Ok(ip("10.0.0.2")));
        assert_eq!(pool.allocate(), Ok(ip("10.0.0.4")));
        assert_eq!(pool.allocate(), Err(PoolError::Exhausted));
        assert_eq!(pool.allocate_static(ip("10.0.0.3")), Ok(ip("10.0.0.3")));
        assert_eq!(
            pool.allocate_static(ip("10.0.0.3")),
            Err(PoolError::InUse(ip("10.0.0.3")))
        );
        assert_eq!(
            pool.allocate_static(ip("10.0.1.3")),
            Err(PoolError::NotInPool(ip("10.0.1.3")))
        );
        assert!(pool.release(ip("10.0.0.3")));
        assert!(!pool.is_assigned(ip("10.0.0.3")));
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(Pool::new(ip("10.0.0.9"), ip("10.0.0.1"), &[], &[]).is_err());
        assert!(Pool::new(ip("10.0.0.0"), ip("10.255.255.255"), &[], &[]).is_err());
        let pool = Pool::new(ip("10.0.0.0"), ip("10.0.0.0"), &[], &[]).unwrap();
        assert_eq!(pool.size(), 1);
        assert!(pool.contains(ip("10.0.0.0")));
        assert!(!pool.contains(ip("10.0.0.1")));
    }

    #[test]
    fn random_allocate_release_sequences_match_a_naive_model() {
        // A seeded xorshift drives 20,000 operations on a 130-address pool (three bitmap words).
        let mut pool = Pool::new(ip("10.1.0.0"), ip("10.1.0.129"), &[], &[]).unwrap();
        let mut held = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) && !held.is_empty() {
                let nth = usize::try_from(x % held.len() as u64).unwrap();
                let a = *held.iter().nth(nth).unwrap();
                assert!(pool.release(a));
                held.remove(&a);
            } else {
                match pool.allocate() {
                    Ok(a) => assert!(held.insert(a), "{a} handed out twice"),
                    Err(PoolError::Exhausted) => assert_eq!(held.len(), 130),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(pool.in_use() as usize, held.len());
        }
    }
}
