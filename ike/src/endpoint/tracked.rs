//! A table that remembers which of its entries changed, so that the endpoint re-reads the
//! deadlines of those entries only (and never scans the table on the timer path).

use std::collections::BTreeMap;
use std::collections::btree_map::{Iter, Keys, Values};
use timer::ReadyQueue;

/// A `BTreeMap` whose mutable accesses mark the key as changed.
#[derive(Debug)]
pub(super) struct Tracked<K, V> {
    map: BTreeMap<K, V>,
    /// Keys inserted, removed or borrowed mutably since the last [`Tracked::take_changed`].
    changed: ReadyQueue<K>,
}

impl<K: Ord + Copy, V> Tracked<K, V> {
    pub(super) fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            changed: ReadyQueue::new(),
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        self.changed.push(*key);
        Some(value)
    }

    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.changed.push(key);
        self.map.insert(key, value)
    }

    pub(super) fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.map.remove(key)?;
        self.changed.push(*key);
        Some(value)
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let changed = &mut self.changed;
        self.map.retain(|k, v| {
            let kept = keep(k, v);
            if !kept {
                changed.push(*k);
            }
            kept
        });
    }

    /// Marks `key` as changed (its timers ran).
    pub(super) fn touch(&mut self, key: K) {
        self.changed.push(key);
    }

    /// The next changed key.
    pub(super) fn take_changed(&mut self) -> Option<K> {
        self.changed.pop()
    }

    pub(super) fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn iter(&self) -> Iter<'_, K, V> {
        self.map.iter()
    }

    pub(super) fn keys(&self) -> Keys<'_, K, V> {
        self.map.keys()
    }

    pub(super) fn values(&self) -> Values<'_, K, V> {
        self.map.values()
    }
}
