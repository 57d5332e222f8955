//! The hash cache: file identity -> SHA-256, bounded, least-recently-used first out.
//!
//! Two generations: look-ups hit the young map, then the old one (and move the entry young).
//! When the young map is full, the old one is dropped and the young one becomes old. So the
//! cache never holds more than `capacity` entries, every operation is O(1), and an entry used
//! within the last `capacity / 2` insertions survives.

use foldhash::{HashMap, HashMapExt as _};

use super::{digest::Hashed, key::FileKey};

/// A bounded map from file identity to its hash.
#[derive(Debug)]
pub struct HashCache {
    young: HashMap<FileKey, Hashed>,
    old: HashMap<FileKey, Hashed>,
    /// Entries per generation.
    half: usize,
}

impl HashCache {
    /// A cache of at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        let half = (capacity / 2).max(1);
        Self {
            young: HashMap::with_capacity(half),
            old: HashMap::with_capacity(half),
            half,
        }
    }

    /// The hash of the file with identity `key`, if it is cached.
    #[inline]
    pub fn get(&mut self, key: &FileKey) -> Option<Hashed> {
        if let Some(hit) = self.young.get(key) {
            return Some(*hit);
        }
        let hit = self.old.remove(key)?;
        self.insert(*key, hit);
        Some(hit)
    }

    /// Caches `hashed` as the content of `key`.
    pub fn insert(&mut self, key: FileKey, hashed: Hashed) {
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            self.old = std::mem::replace(&mut self.young, HashMap::with_capacity(self.half));
        }
        self.young.insert(key, hashed);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
