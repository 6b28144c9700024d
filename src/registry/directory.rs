//! The registry's map from method identity to that method's cache, readable without a lock.
//!
//! Every call looks its method up here before it touches a shard, so this lookup must not
//! write shared memory: a lock here, even a read lock, would make every hit in the process
//! write one cache line. Instead the directory is a fixed array of `OnceLock` slots with
//! linear probing (a slot, once set, never changes), chained to a next level when full.
//! Methods are never removed (there are finitely many method types in a program), so a
//! probe for a present method always meets it before the first empty slot.

use std::any::TypeId;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::table::ErasedCache;

const SLOTS: usize = 16;

/// One method's cache and the identity it was created for.
pub(crate) struct MethodSlot {
    type_id: TypeId,
    pub(crate) cache: Box<dyn ErasedCache>,
}

pub(crate) struct Directory {
    slots: [OnceLock<MethodSlot>; SLOTS],
    next: OnceLock<Box<Directory>>,
}

impl Directory {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { OnceLock::new() }; SLOTS],
            next: OnceLock::new(),
        }
    }

    /// The cache of `type_id`, if it was ever created. A method usually sits in its
    /// home slot, so the hit path is one acquire load and one comparison.
    #[inline]
    pub(crate) fn find(&self, type_id: TypeId) -> Option<&dyn ErasedCache> {
        let home = home_slot(type_id);
        match self.slots[home].get() {
            Some(slot) if slot.type_id == type_id => Some(&*slot.cache),
            Some(_) => self.probe(type_id, home),
            None => None,
        }
    }

    #[cold]
    fn probe(&self, type_id: TypeId, home: usize) -> Option<&dyn ErasedCache> {
        let mut level = self;
        loop {
            for probe in 0..SLOTS {
                match level.slots[(home + probe) % SLOTS].get() {
                    Some(slot) if slot.type_id == type_id => return Some(&*slot.cache),
                    Some(_) => {}
                    None => return None,
                }
            }
            level = level.next.get()?;
        }
    }

    /// The cache of `type_id`, created by `make` if absent.
    #[inline]
    pub(crate) fn find_or_insert(
        &self,
        type_id: TypeId,
        make: impl FnOnce() -> Box<dyn ErasedCache>,
    ) -> &dyn ErasedCache {
        match self.find(type_id) {
            Some(cache) => cache,
            None => self.insert(type_id, make),
        }
    }

    /// Concurrent callers for one method agree on one cache: `OnceLock` lets exactly one
    /// of them fill the first empty slot of the probe sequence, and the others then find
    /// it there.
    #[cold]
    #[inline(never)]
    fn insert(
        &self,
        type_id: TypeId,
        make: impl FnOnce() -> Box<dyn ErasedCache>,
    ) -> &dyn ErasedCache {
        let home = home_slot(type_id);
        let mut make = Some(make);
        let mut level = self;
        loop {
            for probe in 0..SLOTS {
                let slot = level.slots[(home + probe) % SLOTS].get_or_init(|| MethodSlot {
                    type_id,
                    cache: make.take().expect("a slot is filled once per call")(),
                });
                if slot.type_id == type_id {
                    return &*slot.cache;
                }
            }
            level = level.next.get_or_init(|| Box::new(Directory::new()));
        }
    }

    /// Every cache, in a fixed order: the position of a cache never changes, so a cursor
    /// over [`Directory::next_from`] positions visits each cache once per lap.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn ErasedCache> {
        let mut position = 0;
        std::iter::from_fn(move || {
            let (found, cache) = self.next_from(position)?;
            position = found + 1;
            Some(cache)
        })
    }

    /// The first cache at a position `>= position`, with its position.
    pub(crate) fn next_from(&self, position: usize) -> Option<(usize, &dyn ErasedCache)> {
        let mut level = self;
        let mut base = 0;
        while position >= base + SLOTS {
            level = level.next.get()?;
            base += SLOTS;
        }
        let mut index = position - base;
        loop {
            while index < SLOTS {
                if let Some(slot) = level.slots[index].get() {
                    return Some((base + index, &*slot.cache));
                }
                index += 1;
            }
            level = level.next.get()?;
            base += SLOTS;
            index = 0;
        }
    }
}

/// `TypeId` hashes itself by writing 64 bits that are already a hash; keep them.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

#[inline]
fn home_slot(type_id: TypeId) -> usize {
    let hash = BuildHasherDefault::<TypeIdHasher>::default().hash_one(type_id);
    (hash % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{MethodCache, Setup};

    struct Marker<const N: usize>;

    fn table() -> Box<dyn ErasedCache> {
        Box::new(MethodCache::<std::sync::Weak<u8>, u8, u8>::new(
            Setup::plain(1),
        ))
    }

    macro_rules! ids {
        ($($n:literal)*) => { [$(TypeId::of::<Marker<$n>>()),*] };
    }

    #[test]
    fn chains_levels_and_keeps_every_method_findable() {
        let ids = ids!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
                       20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);
        let directory = Directory::new();
        let mut created = Vec::new();
        for id in ids {
            assert!(directory.find(id).is_none());
            let cache: *const dyn ErasedCache = directory.find_or_insert(id, table);
            created.push(cache.cast::<()>());
        }
        for (id, &cache) in ids.iter().zip(&created) {
            let again: *const dyn ErasedCache = directory.find_or_insert(*id, || unreachable!());
            assert_eq!(again.cast::<()>(), cache, "one table per method");
            let found: *const dyn ErasedCache = directory.find(*id).unwrap();
            assert_eq!(found.cast::<()>(), cache);
        }
        assert_eq!(directory.iter().count(), ids.len());
        let positions: Vec<usize> = std::iter::successors(directory.next_from(0), |&(at, _)| {
            directory.next_from(at + 1)
        })
        .map(|(at, _)| at)
        .collect();
        assert_eq!(positions.len(), ids.len());
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            positions.last().unwrap() >= &SLOTS,
            "a second level was used"
        );
    }

    #[test]
    fn concurrent_inserts_of_one_method_agree_on_one_table() {
        let directory = Directory::new();
        let id = TypeId::of::<Marker<7>>();
        let tables: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let cache: *const dyn ErasedCache = directory.find_or_insert(id, table);
                        cache.cast::<()>().addr()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(tables.windows(2).all(|pair| pair[0] == pair[1]));
        assert_eq!(directory.iter().count(), 1);
    }
}
