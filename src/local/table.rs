//! One method's entries in a [`LocalRegistry`](crate::LocalRegistry): a slab of entries
//! in recency order (a doubly linked list by index), indexed by a `HashTable<u32>` of
//! slab positions. One thread, so a `RefCell` and `Cell`s: no atomics, no locks.
//!
//! User code run while the table is borrowed (the arguments' `Eq`, the value's `Clone`)
//! can only reach it again through another lookup, which finds it borrowed and panics
//! with a message, so the borrow is never aliased. Removed arguments and values leave
//! the table in a [`Removed`] list, dropped (and reported) after the borrow ends, so
//! their `Drop` may use the cache.

use std::any::TypeId;
use std::cell::{Cell, RefCell, RefMut};
use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::lookup::Lookup;
use crate::owners::Held;
use crate::removal::RemovalCause;
use crate::stats::Stats;
use crate::table::expiry::{Clock, now_ms, ttl_ms};

/// No slab position: the ends of the recency list.
const NIL: u32 = u32::MAX;

/// A TTL in ms meaning none, as [`ttl_ms`] spells it.
pub(super) const NO_TTL: u64 = ttl_ms(None);

/// A weigher of a local method's entries: see
/// [`LocalMemo::set_weigher`](crate::LocalMemo::set_weigher).
pub type LocalWeigher<A, V> = std::rc::Rc<dyn Fn(&A, &V) -> u32>;

/// The keys being computed on this stack, with their arguments.
type PendingKeys<H, A> = Vec<(Key<<H as Held>::Addrs>, std::rc::Rc<A>)>;

/// Entries taken out of a table, with why: reported and dropped once it is released.
pub(super) type Removed<A, V> = Vec<(RemovalCause, A, V)>;

struct Entry<H, A, V> {
    hash: u64,
    owner: H,
    args: A,
    value: V,
    /// When it was stored, in [`now_ms`] (0: while the method had no TTL).
    born: u64,
    weight: u32,
}

struct Node<H, A, V> {
    entry: Option<Entry<H, A, V>>,
    /// Towards the most recent (`prev`) and the least recent (`next`); for a free node,
    /// `next` is the next free one.
    prev: u32,
    next: u32,
}

/// A key as a call computes it before borrowing the table.
#[derive(Clone, Copy)]
pub(super) struct Key<Ad> {
    pub(super) hash: u64,
    pub(super) addrs: Ad,
}

pub(super) struct State<H: Held, A, V> {
    index: HashTable<u32>,
    nodes: Vec<Node<H, A, V>>,
    free: u32,
    /// Most and least recently used.
    head: u32,
    tail: u32,
    len: usize,
    weight: u64,
    /// In weight; `u64::MAX` is none.
    pub(super) capacity: u64,
    /// The TTL in force (ms, [`NO_TTL`] for none), whether it is the method's own, and
    /// since when entries stamped 0 age.
    pub(super) ttl: u64,
    pub(super) own_ttl: bool,
    since: u64,
    pub(super) weigher: Option<LocalWeigher<A, V>>,
    /// Where the next purge step looks.
    cursor: usize,
}

/// Counters, each exact: one thread.
#[derive(Default)]
struct Counts {
    hits: Cell<u64>,
    misses: Cell<u64>,
    purged: Cell<u64>,
    invalidated: Cell<u64>,
    discarded: Cell<u64>,
    evicted: Cell<u64>,
    expired: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get() + by);
}

pub(crate) struct LocalTable<H: Held, A, V> {
    pub(super) method: TypeId,
    pub(super) name: &'static str,
    hasher: DefaultHashBuilder,
    state: RefCell<State<H, A, V>>,
    counts: Counts,
    /// Raised by every invalidation, so that a computation begun before one is not
    /// stored after it.
    epoch: Cell<u64>,
    /// Keys being computed by `call`s on this thread's stack, to fail fast on a call
    /// that re-enters its own key (it would otherwise recurse until the stack
    /// overflows). Compared by hash, owners and `Eq`, never by hash alone.
    pending: RefCell<PendingKeys<H, A>>,
}

impl<H: Held, A: Hash + Eq + 'static, V: Clone + 'static> LocalTable<H, A, V> {
    pub(super) fn new(method: TypeId, name: &'static str, capacity: u64, ttl: u64) -> Self {
        Self {
            method,
            name,
            hasher: DefaultHashBuilder::default(),
            state: RefCell::new(State {
                index: HashTable::new(),
                nodes: Vec::new(),
                free: NIL,
                head: NIL,
                tail: NIL,
                len: 0,
                weight: 0,
                capacity,
                ttl,
                own_ttl: false,
                since: 0,
                weigher: None,
                cursor: 0,
            }),
            counts: Counts::default(),
            epoch: Cell::new(0),
            pending: RefCell::new(Vec::new()),
        }
    }

    #[inline]
    pub(super) fn key<Q: Hash>(&self, addrs: H::Addrs, args: &Q) -> Key<H::Addrs> {
        Key {
            hash: self.hasher.hash_one((addrs, args)),
            addrs,
        }
    }

    /// The table, or a panic naming the misuse: only user code run under the borrow
    /// (an argument's `Eq`, a value's `Clone`) can find it borrowed.
    #[inline]
    pub(super) fn state(&self) -> RefMut<'_, State<H, A, V>> {
        self.state
            .try_borrow_mut()
            .unwrap_or_else(|_| self.reentered())
    }

    #[cold]
    fn reentered(&self) -> ! {
        panic!(
            "weakmemo: the cache of `{}` was used from an argument's `Eq` or a value's \
                 `Clone` while it ran them; a local registry cannot serve such a call",
            self.name
        )
    }

    /// The value of `key`, counted as a hit or a miss; an expired entry found is taken
    /// out.
    #[inline]
    pub(super) fn get<Q: Lookup<A>>(
        &self,
        key: Key<H::Addrs>,
        args: &Q,
        removed: &mut Removed<A, V>,
    ) -> Option<V> {
        let mut state = self.state();
        let found = state.find(key, args);
        let value = found.and_then(|at| {
            if state.is_expired(at, state.clock()) {
                removed.push(state.take(at, RemovalCause::Expired));
                bump(&self.counts.expired, 1);
                return None;
            }
            // Recency is kept only under a bound, the one reader of it: an unbounded
            // method's hit writes nothing but its counter.
            if state.capacity != u64::MAX {
                state.touch(at);
            }
            Some(state.entry(at).value.clone())
        });
        bump(
            if value.is_some() {
                &self.counts.hits
            } else {
                &self.counts.misses
            },
            1,
        );
        value
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    fn invalidated(&self, removed: usize) {
        self.epoch.set(self.epoch.get() + 1);
        bump(&self.counts.invalidated, removed as u64);
    }

    /// Records `key` as being computed by a `call` on this stack.
    ///
    /// # Panics
    ///
    /// If it already is: the call re-entered its own key.
    pub(super) fn begin<Q: Lookup<A>>(
        &self,
        key: Key<H::Addrs>,
        args: &Q,
        stored: &std::rc::Rc<A>,
    ) {
        // `Eq` runs under this borrow: a call from it finds it taken.
        let mut pending = self
            .pending
            .try_borrow_mut()
            .unwrap_or_else(|_| self.reentered());
        let recursive = pending
            .iter()
            .any(|(k, a)| k.hash == key.hash && k.addrs == key.addrs && args.matches(a));
        assert!(
            !recursive,
            "weakmemo: recursive call for the same key of `{}`: a call re-entered the key \
             it is computing, which would never finish",
            self.name
        );
        pending.push((key, std::rc::Rc::clone(stored)));
    }

    /// Forgets a computation [`begin`](Self::begin) recorded (done, or unwound).
    pub(super) fn end(&self, stored: &std::rc::Rc<A>) {
        let mut pending = self.pending.borrow_mut();
        if let Some(at) = pending
            .iter()
            .rposition(|(_, a)| std::rc::Rc::ptr_eq(a, stored))
        {
            pending.swap_remove(at);
        }
    }

    /// Whether no invalidation came since `epoch`, so that a value computed since may be
    /// stored; one that may not is counted as discarded.
    pub(super) fn still_current(&self, epoch: u64) -> bool {
        let current = epoch == self.epoch.get();
        if !current {
            bump(&self.counts.discarded, 1);
        }
        current
    }

    /// Stores a computed value, unless the key is stored already (another task's
    /// computation), or a bound or a TTL of 0 keeps it out; makes room by taking the
    /// least recently used entries (dead and expired ones counted as such).
    pub(super) fn store(
        &self,
        key: Key<H::Addrs>,
        owner: H,
        args: A,
        value: V,
        weight: u32,
        removed: &mut Removed<A, V>,
    ) {
        let mut state = self.state();
        if state.find(key, &args).is_some() {
            bump(&self.counts.discarded, 1);
            return;
        }
        if state.ttl == 0 || u64::from(weight) > state.capacity {
            bump(&self.counts.evicted, 1);
            return;
        }
        let clock = state.clock();
        while state.weight + u64::from(weight) > state.capacity {
            let tail = state.tail;
            let cause = state.cause(tail, clock).unwrap_or(RemovalCause::Size);
            removed.push(state.take(tail, cause));
            self.counted(cause);
        }
        if state.free == NIL && state.nodes.len() == state.nodes.capacity() {
            // Before the slab grows, drop what can never be returned again, so that
            // dead owners' entries do not grow it even with purge steps off.
            let len = state.nodes.len();
            self.sweep(&mut state, 0..len, removed);
        }
        let born = if state.ttl == NO_TTL { 0 } else { now_ms() };
        state.insert(Entry {
            hash: key.hash,
            owner,
            args,
            value,
            born,
            weight,
        });
    }

    fn counted(&self, cause: RemovalCause) {
        let counter = match cause {
            RemovalCause::Collected => &self.counts.purged,
            RemovalCause::Expired => &self.counts.expired,
            RemovalCause::Size => &self.counts.evicted,
            RemovalCause::Explicit => &self.counts.invalidated,
        };
        bump(counter, 1);
    }

    /// Takes the dead and expired entries among slab positions `range`.
    fn sweep(
        &self,
        state: &mut State<H, A, V>,
        range: std::ops::Range<usize>,
        removed: &mut Removed<A, V>,
    ) -> usize {
        let clock = state.clock();
        let before = removed.len();
        for at in range {
            let at = at as u32;
            if let Some(cause) = state.cause(at, clock) {
                removed.push(state.take(at, cause));
                self.counted(cause);
            }
        }
        removed.len() - before
    }

    /// A lazy purge step: looks at the next `slots` slab positions, wrapping round.
    pub(super) fn purge_step(&self, slots: usize, removed: &mut Removed<A, V>) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return; // in use below us on this stack: the next step will come round
        };
        let len = state.nodes.len();
        let start = if state.cursor >= len { 0 } else { state.cursor };
        let end = start + slots.min(len);
        state.cursor = end % len.max(1);
        self.sweep(&mut state, start..end.min(len), removed);
        self.sweep(&mut state, 0..end.saturating_sub(len), removed);
    }

    /// Takes every dead and expired entry; returns how many.
    pub(super) fn purge(&self, removed: &mut Removed<A, V>) -> usize {
        let mut state = self.state();
        let len = state.nodes.len();
        self.sweep(&mut state, 0..len, removed)
    }

    pub(super) fn invalidate<Q: Lookup<A>>(
        &self,
        key: Key<H::Addrs>,
        args: &Q,
        removed: &mut Removed<A, V>,
    ) -> bool {
        let mut state = self.state();
        let found = state.find(key, args);
        if let Some(at) = found {
            removed.push(state.take(at, RemovalCause::Explicit));
        }
        drop(state);
        self.invalidated(usize::from(found.is_some()));
        found.is_some()
    }

    /// Takes the entries that `keep` refuses, as invalidated; returns how many.
    pub(super) fn invalidate_where(
        &self,
        removed: &mut Removed<A, V>,
        mut doomed: impl FnMut(&H) -> bool,
    ) -> usize {
        let mut state = self.state();
        let before = removed.len();
        for at in 0..state.nodes.len() as u32 {
            if state.nodes[at as usize]
                .entry
                .as_ref()
                .is_some_and(|entry| doomed(&entry.owner))
            {
                removed.push(state.take(at, RemovalCause::Explicit));
            }
        }
        drop(state);
        let count = removed.len() - before;
        self.invalidated(count);
        count
    }

    pub(super) fn set_ttl(&self, ttl: u64, own: bool) {
        let mut state = self.state();
        if ttl != NO_TTL && state.ttl == NO_TTL {
            state.since = now_ms();
        }
        state.ttl = ttl;
        state.own_ttl = own;
    }

    pub(super) fn add_stats(&self, stats: &mut Stats) {
        let counts = &self.counts;
        stats.hits += counts.hits.get();
        stats.misses += counts.misses.get();
        stats.purged += counts.purged.get();
        stats.invalidated += counts.invalidated.get();
        stats.discarded += counts.discarded.get();
        stats.evicted += counts.evicted.get();
        stats.expired += counts.expired.get();
        stats.entries += self.state().len;
        stats.methods += 1;
    }

    pub(super) fn weight(&self) -> u64 {
        self.state().weight
    }
}

impl<H: Held, A: Eq, V> State<H, A, V> {
    fn entry(&self, at: u32) -> &Entry<H, A, V> {
        self.nodes[at as usize]
            .entry
            .as_ref()
            .expect("a linked node holds an entry")
    }

    /// The entry of `key`: same hash, the same owners by address (each alive, since the
    /// caller holds it and the entry's `Weak` kept its address from reuse), and
    /// arguments `Eq` finds equal.
    #[inline]
    fn find<Q: Lookup<A>>(&self, key: Key<H::Addrs>, args: &Q) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(key.hash, |&at| {
                let entry = nodes[at as usize].entry.as_ref().expect("indexed");
                entry.hash == key.hash
                    && entry.owner.addrs() == key.addrs
                    && args.matches(&entry.args)
            })
            .copied()
    }

    fn clock(&self) -> Option<Clock> {
        (self.ttl != NO_TTL).then(|| Clock::read(self.ttl, self.since))
    }

    fn is_expired(&self, at: u32, clock: Option<Clock>) -> bool {
        clock.is_some_and(|clock| clock.expired(self.entry(at).born))
    }

    /// Why the entry at `at` should go whatever the bound, if there is an entry there.
    fn cause(&self, at: u32, clock: Option<Clock>) -> Option<RemovalCause> {
        let entry = self.nodes.get(at as usize)?.entry.as_ref()?;
        if entry.owner.is_dead() {
            Some(RemovalCause::Collected)
        } else if self.is_expired(at, clock) {
            Some(RemovalCause::Expired)
        } else {
            None
        }
    }

    fn unlink(&mut self, at: u32) {
        let (prev, next) = (self.nodes[at as usize].prev, self.nodes[at as usize].next);
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next as usize].prev = prev,
        }
    }

    fn push_front(&mut self, at: u32) {
        let head = self.head;
        self.nodes[at as usize].prev = NIL;
        self.nodes[at as usize].next = head;
        match head {
            NIL => self.tail = at,
            head => self.nodes[head as usize].prev = at,
        }
        self.head = at;
    }

    /// Marks the entry as just used.
    fn touch(&mut self, at: u32) {
        if self.head != at {
            self.unlink(at);
            self.push_front(at);
        }
    }

    fn insert(&mut self, entry: Entry<H, A, V>) {
        let hash = entry.hash;
        self.weight += u64::from(entry.weight);
        self.len += 1;
        let at = if self.free == NIL {
            self.nodes.push(Node {
                entry: Some(entry),
                prev: NIL,
                next: NIL,
            });
            u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 entries")
        } else {
            let at = self.free;
            self.free = self.nodes[at as usize].next;
            self.nodes[at as usize].entry = Some(entry);
            at
        };
        let nodes = &self.nodes;
        self.index.insert_unique(hash, at, |&at| {
            nodes[at as usize].entry.as_ref().expect("indexed").hash
        });
        self.push_front(at);
    }

    /// Takes the entry at `at` out of the index, the list and the books.
    fn take(&mut self, at: u32, cause: RemovalCause) -> (RemovalCause, A, V) {
        let hash = self.entry(at).hash;
        self.index
            .find_entry(hash, |&other| other == at)
            .expect("every entry is indexed")
            .remove();
        self.unlink(at);
        let node = &mut self.nodes[at as usize];
        let entry = node.entry.take().expect("a linked node holds an entry");
        node.next = self.free;
        self.free = at;
        self.len -= 1;
        self.weight -= u64::from(entry.weight);
        (cause, entry.args, entry.value)
    }
}
