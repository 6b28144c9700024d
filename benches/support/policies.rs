//! Eviction policies weakmemo could implement, simulated on keys alone (no values, no
//! locks), for `benches/hit_ratio.rs`.
//!
//! Each policy sees a request as a key and its 64-bit hash, computed once by the caller,
//! as weakmemo hashes `(owner address, args)` once: the top bits pick a shard, the low
//! bits a bucket. The caller asks [`Policy::get`] and, on a miss, [`Policy::insert`],
//! telling it whether the budget is reached; a full policy makes room by evicting one
//! entry, or refuses the newcomer (admission).
//!
//! - [`Clock`]: a hand over a hashbrown-like table in bucket order, which is hash
//!   order: an entry lands at its hash's bucket (linear probing), so a newcomer sits at a
//!   random place relative to the hand, unlike textbook CLOCK where it sits just behind
//!   it. Per entry a saturating counter (1 bit: `max_count` 1, 2 bits: 3), set on a hit:
//!   the only state weakmemo's hit path could touch. Optionally TinyLFU admission with a
//!   count-min [`Sketch`], fed by every request ([`Feed::All`], as TinyLFU does) or by
//!   misses alone ([`Feed::Misses`], which keeps the sketch off the hit path). Ways to
//!   forget faster, for the bench to compare: another halving period
//!   ([`Sketch::with_period`]), a doorkeeper ([`Sketch::with_doorkeeper`]), admission on
//!   ties ([`Clock::admit_ties`]).
//! - [`S3Fifo`]: small FIFO (10%), main FIFO, ghost FIFO of evicted keys, 2-bit counters;
//!   the reference of the class (Yang et al., SOSP 2023).
//! - [`Sieve`]: one visited bit, a hand moving through insertion order, survivors stay in
//!   place (Zhang et al., NSDI 2024). Needs a list in insertion order with removal in the
//!   middle.
//! - [`Sharded`]: any policy split into shards by the hash's top bits, with a budget per
//!   shard or one shared budget whose overflow is evicted from the shard being written.
//! - [`Windowed`]: an LRU admission window in front of a [`Clock`] with TinyLFU (issue
//!   16), of a fixed share, hill-climbing, or with ghosts of the keys it refused, and a
//!   [`Judge`] that lets recency overrule the sketch.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use hashbrown::HashMap;

/// A cache policy over keys.
pub trait Policy {
    /// Looks `key` up; a hit updates the policy's per-entry state.
    fn get(&mut self, key: u64, hash: u64) -> bool;
    /// Stores `key` after a miss. With `full`, the budget is reached: evict one entry
    /// first, or refuse `key`. Without it, just store.
    fn insert(&mut self, key: u64, hash: u64, full: bool);
    /// Entries held.
    fn len(&self) -> usize;
}

/// A 64-bit mixer (splitmix64's finalizer).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Number of buckets hashbrown gives a table asked to hold `cap` entries.
pub fn buckets_for(cap: usize) -> usize {
    if cap < 4 {
        4
    } else if cap < 8 {
        8
    } else {
        (cap * 8).div_ceil(7).next_power_of_two()
    }
}

/// hashbrown's usable capacity for `buckets` buckets (7/8 load factor).
fn capacity_of(buckets: usize) -> usize {
    if buckets < 8 {
        buckets - 1
    } else {
        buckets / 8 * 7
    }
}

/// A count-min sketch: 4 rows of counters saturating at 15 (4 bits, as in Caffeine), all
/// halved every `period` additions so that it forgets; optionally behind a doorkeeper.
#[derive(Debug)]
pub struct Sketch {
    rows: [Vec<u8>; 4],
    mask: usize,
    additions: usize,
    period: usize,
    /// A Bloom filter (two bits per key) that takes a key's first addition since the last
    /// halving instead of the counters, and adds 1 to its estimate; cleared at halving.
    doorkeeper: Option<Vec<u64>>,
}

impl Sketch {
    /// Sized as Caffeine's for `capacity` entries (16 counters per entry: 4 rows of
    /// 4 × capacity), but at least 1,024 per row, and halved every 10 × capacity
    /// additions (Caffeine's sample size; at least 2,560), as weakmemo's `Sketch`.
    pub fn new(capacity: usize) -> Self {
        Self::with_period(capacity, 10 * capacity.max(256))
    }

    /// The same, halved every `period` additions.
    pub fn with_period(capacity: usize, period: usize) -> Self {
        let width = Self::width(capacity);
        Sketch {
            rows: std::array::from_fn(|_| vec![0; width]),
            mask: width - 1,
            additions: 0,
            period: period.max(1),
            doorkeeper: None,
        }
    }

    /// Counters per row for `capacity` entries.
    pub fn width(capacity: usize) -> usize {
        (capacity.next_power_of_two() * 4).max(1024)
    }

    /// Puts a doorkeeper of `bits` bits in front of the counters.
    pub fn with_doorkeeper(mut self, bits: usize) -> Self {
        self.doorkeeper = Some(vec![0; bits.div_ceil(64)]);
        self
    }

    fn door_bits(&self, hash: u64) -> [usize; 2] {
        let bits = self.doorkeeper.as_ref().map_or(1, |d| d.len() * 64);
        let h = mix(hash ^ 0x5851_f42d_4c95_7f2d);
        [h as usize % bits, (h >> 32) as usize % bits]
    }

    fn in_door(&self, hash: u64) -> bool {
        match &self.doorkeeper {
            None => false,
            Some(door) => self
                .door_bits(hash)
                .iter()
                .all(|&b| door[b / 64] >> (b % 64) & 1 == 1),
        }
    }

    fn index(&self, hash: u64, row: usize) -> usize {
        (mix(hash.wrapping_add(0x9e37_79b9_7f4a_7c15 * (row as u64 + 1))) as usize) & self.mask
    }

    pub fn add(&mut self, hash: u64) {
        let (bits, seen) = (self.door_bits(hash), self.in_door(hash));
        match &mut self.doorkeeper {
            Some(door) if !seen => bits.iter().for_each(|&b| door[b / 64] |= 1 << (b % 64)),
            _ => {
                for row in 0..4 {
                    let i = self.index(hash, row);
                    let cell = &mut self.rows[row][i];
                    *cell = (*cell + 1).min(15);
                }
            }
        }
        self.additions += 1;
        if self.additions >= self.period {
            self.halve();
        }
    }

    pub fn halve(&mut self) {
        self.additions = 0;
        for row in &mut self.rows {
            row.iter_mut().for_each(|c| *c /= 2);
        }
        if let Some(door) = &mut self.doorkeeper {
            door.fill(0);
        }
    }

    pub fn estimate(&self, hash: u64) -> u8 {
        let counted = (0..4)
            .map(|row| self.rows[row][self.index(hash, row)])
            .min()
            .unwrap_or(0);
        counted + u8::from(self.in_door(hash))
    }
}

/// What feeds a [`Clock`]'s admission sketch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// No admission: every miss is stored.
    None,
    /// Every request, hit or miss (TinyLFU; a shared write on weakmemo's hit path).
    All,
    /// Misses only (written under the shard's write lock, beside the insert).
    Misses,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    hash: u64,
    count: u8,
}

/// CLOCK over a hashbrown-like table in bucket order (see the module docs).
#[derive(Debug)]
pub struct Clock {
    slots: Vec<Option<Slot>>,
    index: HashMap<u64, usize>,
    len: usize,
    hand: usize,
    max_count: u8,
    feed: Feed,
    sketch: Option<Rc<RefCell<Sketch>>>,
    /// Admits a newcomer whose estimate equals the victim's too (weakmemo does not).
    pub admit_ties: bool,
    /// The hand clears a counter it passes instead of lowering it by one.
    pub clears: bool,
}

impl Clock {
    /// `cap`: entries the table is sized for (it grows past them like hashbrown's).
    pub fn new(cap: usize, max_count: u8, feed: Feed) -> Self {
        let sketch = (feed != Feed::None).then(|| Rc::new(RefCell::new(Sketch::new(cap))));
        Self::with_sketch(cap, max_count, feed, sketch)
    }

    /// The same with a given sketch, which shards can share (one per method).
    pub fn with_sketch(
        cap: usize,
        max_count: u8,
        feed: Feed,
        sketch: Option<Rc<RefCell<Sketch>>>,
    ) -> Self {
        Clock {
            slots: vec![None; buckets_for(cap)],
            index: HashMap::with_capacity(cap),
            len: 0,
            hand: 0,
            max_count,
            feed,
            sketch,
            admit_ties: false,
            clears: false,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn place(&mut self, slot: Slot) {
        let mut i = slot.hash as usize & self.mask();
        while self.slots[i].is_some() {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = Some(slot);
        self.index.insert(slot.key, i);
    }

    /// Doubles the table, as hashbrown does when it is full: every entry moves to its
    /// bucket in the larger table, and the hand keeps its relative place.
    fn grow(&mut self) {
        let doubled = vec![None; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.index.clear();
        for slot in old.into_iter().flatten() {
            self.place(slot);
        }
        self.hand *= 2;
    }

    /// Evicts the hand's next victim, with no newcomer (a window taking room from main),
    /// and returns its key.
    fn evict_one(&mut self) -> u64 {
        let victim = self.sweep();
        let slot = self.slots[victim].take().unwrap();
        self.index.remove(&slot.key);
        self.len -= 1;
        self.hand = (self.hand + 1) & self.mask();
        slot.key
    }

    /// Moves the hand to an entry whose counter is 0, decrementing the others on the way.
    fn sweep(&mut self) -> usize {
        loop {
            if let Some(slot) = &mut self.slots[self.hand] {
                if slot.count == 0 {
                    return self.hand;
                }
                slot.count = if self.clears { 0 } else { slot.count - 1 };
            }
            self.hand = (self.hand + 1) & self.mask();
        }
    }
}

impl Policy for Clock {
    fn get(&mut self, key: u64, hash: u64) -> bool {
        if self.feed == Feed::All {
            self.sketch.as_ref().unwrap().borrow_mut().add(hash);
        }
        match self.index.get(&key) {
            Some(&i) => {
                let slot = self.slots[i].as_mut().unwrap();
                slot.count = (slot.count + 1).min(self.max_count);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64, hash: u64, full: bool) {
        self.insert_reporting(key, hash, full);
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// What [`Clock::insert_reporting`] did with a newcomer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Stored,
    /// Stored, evicting this key.
    Evicted(u64),
    Refused,
}

impl Clock {
    /// [`Policy::insert`], telling what became of the newcomer.
    pub fn insert_reporting(&mut self, key: u64, hash: u64, full: bool) -> Outcome {
        let ties = self.admit_ties;
        self.insert_judged(key, hash, full, |new, old| new > old || new == old && ties)
    }

    /// The same, with `wins(newcomer's estimate, victim's)` judging admission.
    pub fn insert_judged(
        &mut self,
        key: u64,
        hash: u64,
        full: bool,
        wins: impl Fn(u8, u8) -> bool,
    ) -> Outcome {
        if self.feed == Feed::Misses {
            self.sketch.as_ref().unwrap().borrow_mut().add(hash);
        }
        let mut outcome = Outcome::Stored;
        if full {
            if self.len == 0 {
                return Outcome::Refused;
            }
            let victim = self.sweep();
            let victim_slot = self.slots[victim].unwrap();
            if let Some(sketch) = &self.sketch {
                let sketch = sketch.borrow();
                // The hand stays on the victim, which meets the next candidate too.
                let (new, old) = (sketch.estimate(hash), sketch.estimate(victim_slot.hash));
                if !wins(new, old) {
                    return Outcome::Refused;
                }
            }
            self.slots[victim] = None;
            self.index.remove(&victim_slot.key);
            self.len -= 1;
            self.hand = (self.hand + 1) & self.mask();
            outcome = Outcome::Evicted(victim_slot.key);
        }
        self.place_new(key, hash, 0);
        outcome
    }

    /// Stores a key known to be absent, with `count`, without admission.
    fn place_new(&mut self, key: u64, hash: u64, count: u8) {
        if self.len + 1 > capacity_of(self.slots.len()) {
            self.grow();
        }
        self.place(Slot { key, hash, count });
        self.len += 1;
    }
}

#[derive(Debug)]
struct S3Entry {
    freq: u8,
}

/// S3-FIFO: a small FIFO of new entries (10% of the capacity), a main FIFO, and a ghost
/// FIFO of keys evicted from the small one (as many as the capacity).
#[derive(Debug)]
pub struct S3Fifo {
    entries: HashMap<u64, S3Entry>,
    small: VecDeque<u64>,
    main: VecDeque<u64>,
    small_target: usize,
    ghost: HashMap<u64, u64>,
    ghost_queue: VecDeque<(u64, u64)>,
    ghost_cap: usize,
    ghost_seq: u64,
}

impl S3Fifo {
    pub fn new(cap: usize) -> Self {
        S3Fifo {
            entries: HashMap::with_capacity(cap),
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_target: (cap / 10).max(1),
            ghost: HashMap::new(),
            ghost_queue: VecDeque::new(),
            ghost_cap: cap.max(1),
            ghost_seq: 0,
        }
    }

    fn remember_evicted(&mut self, key: u64) {
        self.ghost_seq += 1;
        self.ghost.insert(key, self.ghost_seq);
        self.ghost_queue.push_back((key, self.ghost_seq));
        while self.ghost_queue.len() > self.ghost_cap {
            let (old, seq) = self.ghost_queue.pop_front().unwrap();
            if self.ghost.get(&old) == Some(&seq) {
                self.ghost.remove(&old);
            }
        }
    }

    /// Evicts exactly one entry.
    fn evict(&mut self) {
        loop {
            if self.small.len() >= self.small_target || self.main.is_empty() {
                let key = self.small.pop_front().unwrap();
                let entry = self.entries.get_mut(&key).unwrap();
                if entry.freq > 0 {
                    entry.freq = 0;
                    self.main.push_back(key);
                } else {
                    self.entries.remove(&key);
                    self.remember_evicted(key);
                    return;
                }
            } else {
                let key = self.main.pop_front().unwrap();
                let entry = self.entries.get_mut(&key).unwrap();
                if entry.freq > 0 {
                    entry.freq -= 1;
                    self.main.push_back(key);
                } else {
                    self.entries.remove(&key);
                    return;
                }
            }
        }
    }
}

impl Policy for S3Fifo {
    fn get(&mut self, key: u64, _hash: u64) -> bool {
        match self.entries.get_mut(&key) {
            Some(entry) => {
                entry.freq = (entry.freq + 1).min(3);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64, _hash: u64, full: bool) {
        if full {
            if self.entries.is_empty() {
                return;
            }
            self.evict();
        }
        self.entries.insert(key, S3Entry { freq: 0 });
        if self.ghost.remove(&key).is_some() {
            self.main.push_back(key);
        } else {
            self.small.push_back(key);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node {
    key: u64,
    visited: bool,
    /// Toward the newest entry.
    newer: usize,
    /// Toward the oldest entry.
    older: usize,
}

/// SIEVE: a list in insertion order (newest at the head), one visited bit per entry, and
/// a hand that moves from the oldest toward the newest, clearing bits, and evicts the
/// first unvisited entry where it stands.
#[derive(Debug)]
pub struct Sieve {
    nodes: Vec<Node>,
    free: Vec<usize>,
    index: HashMap<u64, usize>,
    head: usize,
    tail: usize,
    hand: usize,
}

impl Sieve {
    pub fn new(cap: usize) -> Self {
        Sieve {
            nodes: Vec::with_capacity(cap),
            free: Vec::new(),
            index: HashMap::with_capacity(cap),
            head: NIL,
            tail: NIL,
            hand: NIL,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (newer, older) = (self.nodes[i].newer, self.nodes[i].older);
        if newer == NIL {
            self.head = older;
        } else {
            self.nodes[newer].older = older;
        }
        if older == NIL {
            self.tail = newer;
        } else {
            self.nodes[older].newer = newer;
        }
    }

    fn evict(&mut self) {
        let mut i = if self.hand == NIL {
            self.tail
        } else {
            self.hand
        };
        while self.nodes[i].visited {
            self.nodes[i].visited = false;
            i = match self.nodes[i].newer {
                NIL => self.tail,
                newer => newer,
            };
        }
        self.hand = self.nodes[i].newer;
        self.unlink(i);
        self.index.remove(&self.nodes[i].key);
        self.free.push(i);
    }
}

impl Policy for Sieve {
    fn get(&mut self, key: u64, _hash: u64) -> bool {
        match self.index.get(&key) {
            Some(&i) => {
                self.nodes[i].visited = true;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64, _hash: u64, full: bool) {
        if full {
            if self.index.is_empty() {
                return;
            }
            self.evict();
        }
        let node = Node {
            key,
            visited: false,
            newer: NIL,
            older: self.head,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        if self.head == NIL {
            self.tail = i;
        } else {
            self.nodes[self.head].newer = i;
        }
        self.head = i;
        self.index.insert(key, i);
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// How a [`Sharded`] policy bounds its shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Each shard holds at most its share of the capacity (the remainder spread over the
    /// first shards).
    PerShard,
    /// One count for the whole cache; when it is reached, the shard being written evicts
    /// one of its own entries (an empty shard refuses the newcomer).
    Shared,
}

/// A policy split into `2^bits` shards by the hash's top bits, as weakmemo splits a
/// method's table.
#[derive(Debug)]
pub struct Sharded<P> {
    shards: Vec<P>,
    caps: Vec<usize>,
    bits: u32,
    budget: Budget,
    cap: usize,
    len: usize,
}

impl<P: Policy> Sharded<P> {
    /// `make` builds a shard for the capacity given (its share of `cap`).
    pub fn new(cap: usize, bits: u32, budget: Budget, make: impl Fn(usize) -> P) -> Self {
        let n = 1usize << bits;
        let caps: Vec<usize> = (0..n).map(|i| cap / n + usize::from(i < cap % n)).collect();
        Sharded {
            shards: caps.iter().map(|&c| make(c.max(1))).collect(),
            caps,
            bits,
            budget,
            cap,
            len: 0,
        }
    }

    fn shard(&self, hash: u64) -> usize {
        hash.checked_shr(64 - self.bits).unwrap_or(0) as usize
    }
}

impl<P: Policy> Policy for Sharded<P> {
    fn get(&mut self, key: u64, hash: u64) -> bool {
        let s = self.shard(hash);
        self.shards[s].get(key, hash)
    }

    fn insert(&mut self, key: u64, hash: u64, _full: bool) {
        let s = self.shard(hash);
        let shard = &mut self.shards[s];
        let before = shard.len();
        let full = match self.budget {
            Budget::PerShard => {
                if self.caps[s] == 0 {
                    return;
                }
                before >= self.caps[s]
            }
            Budget::Shared => self.len >= self.cap,
        };
        shard.insert(key, hash, full);
        self.len = self.len + shard.len() - before;
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// W-TinyLFU over `clock2`: a window of the newest entries, in LRU order, that always
/// admits, in front of a main CLOCK region whose TinyLFU admission (fed by misses) judges
/// each entry the window pushes out against the main region's victim (issue 16).
pub struct Windowed {
    /// With `Some`, the window's size climbs toward what pays (Caffeine's hill climber).
    climber: Option<Climber>,
    /// With `Some`, the window's size (or admission) follows ghosts of what left.
    ghosts: Option<Ghosts>,
    window_cap: usize,
    /// The window: key → its last use, and uses in order (oldest first).
    window: HashMap<u64, (u64, u64)>,
    order: std::collections::BTreeMap<u64, u64>,
    tick: u64,
    main: Clock,
    main_cap: usize,
    sketch: Rc<RefCell<Sketch>>,
}

impl Windowed {
    /// `window_percent` of `cap` (at least one entry) in the window, the rest in main.
    pub fn new(cap: usize, window_percent: usize) -> Self {
        let window_cap = (cap * window_percent / 100).max(1).min(cap);
        let main_cap = cap - window_cap;
        let sketch = Rc::new(RefCell::new(Sketch::new(cap)));
        Windowed {
            climber: None,
            ghosts: None,
            window_cap,
            window: HashMap::new(),
            order: std::collections::BTreeMap::new(),
            tick: 0,
            main: Clock::with_sketch(main_cap.max(1), 3, Feed::None, Some(sketch.clone())),
            main_cap,
            sketch,
        }
    }
}

/// Caffeine's hill climber: every sample of `10 × capacity` requests, the window moves
/// by `step` entries, reversing when the hit rate fell; the step decays by 2% a sample and
/// restarts at 6.25% of the capacity when the hit rate moves by more than 5 points.
struct Climber {
    cap: usize,
    sample: usize,
    requests: usize,
    hits: usize,
    previous: f64,
    step: f64,
}

impl Windowed {
    /// The same, starting at 1%, with the window's size adapting.
    pub fn climbing(cap: usize) -> Self {
        let mut windowed = Self::new(cap, 1);
        windowed.climber = Some(Climber {
            cap,
            sample: 10 * cap,
            requests: 0,
            hits: 0,
            previous: 0.0,
            step: cap as f64 * 0.0625,
        });
        windowed
    }

    fn count(&mut self, hit: bool) {
        let Some(climber) = &mut self.climber else {
            return;
        };
        climber.requests += 1;
        climber.hits += usize::from(hit);
        if climber.requests < climber.sample {
            return;
        }
        let rate = climber.hits as f64 / climber.requests as f64;
        let change = rate - climber.previous;
        if change < 0.0 {
            climber.step = -climber.step;
        }
        let restart = change.abs() >= 0.05;
        climber.previous = rate;
        (climber.requests, climber.hits) = (0, 0);
        let target = (self.window_cap as f64 + climber.step).round();
        let target = (target.max(1.0) as usize).min(climber.cap.saturating_sub(1).max(1));
        climber.step = if restart {
            climber.step.signum() * climber.cap as f64 * 0.0625
        } else {
            climber.step * 0.98
        };
        self.resize(target);
    }

    /// Gives the window `window_cap` entries and main the rest, moving entries across:
    /// a shrinking window hands its oldest to main's admission, a growing one takes
    /// room by evicting main's victims.
    fn resize(&mut self, window_cap: usize) {
        let cap = self.window_cap + self.main_cap;
        self.window_cap = window_cap;
        self.main_cap = cap - window_cap;
        while self.window.len() > self.window_cap {
            self.spill();
        }
        while self.main.len() > self.main_cap {
            let key = self.main.evict_one();
            self.remember(key, Ghost::Evicted);
        }
    }

    /// Moves the window's oldest entry to main, through main's admission.
    fn spill(&mut self) {
        let (_, oldest) = self.order.pop_first().unwrap();
        let (_, oldest_hash) = self.window.remove(&oldest).unwrap();
        if self.main_cap == 0 {
            return;
        }
        let main_full = self.main.len() >= self.main_cap;
        let recency = self
            .ghosts
            .as_ref()
            .and_then(|g| g.judge.as_ref())
            .is_some_and(Judge::favors);
        self.main.clears = recency;
        match self.admit_to_main(oldest, oldest_hash, main_full, false) {
            Outcome::Stored | Outcome::Evicted(_) => {
                if recency {
                    self.main.get(oldest, oldest_hash);
                }
            }
            Outcome::Refused => {
                if let Some(ghosts) = &mut self.ghosts {
                    let entered = ghosts.entered.remove(&oldest).unwrap_or(ghosts.now);
                    ghosts.keys.insert(oldest, (entered, Ghost::Refused));
                    if ghosts.judge.is_some() {
                        ghosts.fifo.push_back((oldest, entered));
                    }
                }
            }
        }
    }
}

impl Policy for Windowed {
    fn get(&mut self, key: u64, hash: u64) -> bool {
        let hit = self.lookup(key, hash);
        self.count(hit);
        self.follow_ghosts(key, hit);
        hit
    }

    fn insert(&mut self, key: u64, hash: u64, _full: bool) {
        if let Some(ties) = self
            .ghosts
            .as_ref()
            .filter(|g| g.direct == Some(key))
            .map(|g| g.ties)
        {
            // A refused key back within the horizon: into main past admission, with a
            // visit; or, with `ties`, if seen at least as often as main's victim, and
            // into the window if not (weakmemo's rule).
            self.sketch.borrow_mut().add(hash);
            if !ties {
                if self.main.len() >= self.main_cap {
                    let evicted = self.main.evict_one();
                    self.remember(evicted, Ghost::Evicted);
                }
                self.main.place_new(key, hash, 1);
                return;
            }
            let full = self.main.len() >= self.main_cap;
            if self.admit_to_main(key, hash, full, true) == Outcome::Refused {
                self.enter_window(key, hash);
            }
            return;
        }
        self.sketch.borrow_mut().add(hash);
        self.enter_window(key, hash);
    }

    fn len(&self) -> usize {
        self.window.len() + self.main.len()
    }
}

impl Windowed {
    /// Stores a newcomer in the window (its miss counted already).
    fn enter_window(&mut self, key: u64, hash: u64) {
        if let Some(ghosts) = &mut self.ghosts {
            ghosts.entered.insert(key, ghosts.now);
        }
        self.tick += 1;
        self.window.insert(key, (self.tick, hash));
        self.order.insert(self.tick, key);
        if self.window.len() > self.window_cap {
            self.spill();
        }
    }
}

impl Windowed {
    /// [`Self::ghosted`] with aging, a returning key admitted to main only if seen at
    /// least as often as main's victim, and to the window if not: weakmemo's policy.
    pub fn ghosted_ties(cap: usize) -> Self {
        let mut windowed = Self::ghosted(cap, true, 8);
        windowed.ghosts.as_mut().unwrap().ties = true;
        windowed
    }

    /// [`Self::ghosted_ties`] with the window starting at `start_percent` of `cap` and
    /// Caffeine's hill climber moving it every `sample` requests.
    pub fn ties_climbing(cap: usize, sample: usize, start_percent: usize) -> Self {
        let mut windowed = Self::ghosted_ties(cap);
        let start = (cap * start_percent / 100).max(1).min(cap - 1);
        windowed.resize(start);
        windowed.climber = Some(Climber {
            cap,
            sample,
            requests: 0,
            hits: 0,
            previous: 0.0,
            step: cap as f64 * 0.0625,
        });
        windowed
    }

    fn lookup(&mut self, key: u64, hash: u64) -> bool {
        if let Some((used, _)) = self.window.get_mut(&key) {
            self.order.remove(used);
            self.tick += 1;
            *used = self.tick;
            self.order.insert(self.tick, key);
            return true;
        }
        self.main.get(key, hash)
    }
}

/// Keys that left a [`Windowed`] lately, by how: refused by main's admission, or
/// evicted from main. One back within `horizon` requests is one that an LRU of the
/// capacity would still have held.
struct Ghosts {
    horizon: u64,
    now: u64,
    keys: HashMap<u64, (u64, Ghost)>,
    /// When each key in the window was last missed.
    entered: HashMap<u64, u64>,
    /// Direct mode: a refused key back in time goes to main past admission, and the
    /// window keeps its size; this is the key being inserted so.
    direct: Option<u64>,
    direct_mode: bool,
    /// Halve the sketch after this many refused keys came back in time.
    age_after: Option<usize>,
    returned: usize,
    /// A returning key is admitted only if seen at least as often as main's victim.
    ties: bool,
    judge: Option<Judge>,
    /// With a judge, refused keys in the order they were missed, so that each is
    /// resolved as gone the request it passes the horizon.
    fifo: VecDeque<(u64, u64)>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ghost {
    Refused,
    Evicted,
    /// Evicted for a newcomer the sketch would have refused, on the judge's word.
    Overridden,
}

/// When the sketch refuses a newcomer that recency (LRU) would keep, whether to admit
/// it all the same: weakmemo's rule ([`JudgeRule::Versus`], `src/table/window.rs`) and
/// rejected ones.
pub struct Judge {
    rule: JudgeRule,
    /// Refused keys resolved lately (back in time, or gone past the horizon) and those
    /// back, halved every [`Judge::PERIOD`].
    resolved: f64,
    back: f64,
    /// Regrets: decisions each way, and their losers back in time.
    refused: f64,
    refused_back: f64,
    overridden: f64,
    overridden_back: f64,
    decisions: u32,
    /// Versus: victims evicted on the sketch's word, resolved and back, halved alike.
    victims: (f64, f64),
}

#[derive(Clone, Copy)]
pub enum JudgeRule {
    /// Recency while more than half of the refused keys resolved lately came back in
    /// time (weakmemo's first rule). Every 32nd key recency would admit is refused all
    /// the same, to keep measuring.
    Half,
    /// LeCaR's idea on one decision: the rule whose losers come back less often per
    /// decision (refused newcomers for the sketch, victims evicted on the judge's word
    /// for recency); every 16th decision goes the other way, to keep both rates current.
    Regrets,
    /// Recency while refused keys come back in time more than `margin` × as often as
    /// the victims that newcomers the sketch preferred evicted (no exploration: those
    /// evictions happen anyway), + `floor`; before any refused key is resolved, recency
    /// (weakmemo's rule, with 2 and 0.1). Explores as [`JudgeRule::Half`].
    Versus { margin: f64, floor: f64 },
}

impl Judge {
    const PERIOD: f64 = 1024.0;

    pub fn new(rule: JudgeRule) -> Self {
        Judge {
            rule,
            resolved: 0.0,
            back: 0.0,
            refused: 0.0,
            refused_back: 0.0,
            overridden: 0.0,
            overridden_back: 0.0,
            decisions: 0,
            victims: (0.0, 0.0),
        }
    }

    /// Whether the judge favors recency now.
    fn favors(&self) -> bool {
        match self.rule {
            JudgeRule::Half => (self.back + 1.0) / (self.resolved + 1.0) > 0.5,
            JudgeRule::Regrets => {
                (self.refused_back + 1.0) / (self.refused + 1.0)
                    > self.overridden_back / (self.overridden + 1.0)
            }
            JudgeRule::Versus { margin, floor } => {
                if self.resolved == 0.0 {
                    return true;
                }
                let refused = self.back / self.resolved;
                let victims = self.victims.1 / (self.victims.0 + 1.0);
                refused > margin * victims + floor
            }
        }
    }

    /// A refused key is back within the horizon (`true`) or gone past it.
    fn resolved(&mut self, back: bool) {
        let back = f64::from(u8::from(back));
        self.resolved += 1.0;
        self.back += back;
        if self.resolved >= Self::PERIOD {
            self.resolved /= 2.0;
            self.back /= 2.0;
        }
        self.refused_back += back;
    }

    /// A victim the sketch chose is back within the horizon (`true`) or gone past it.
    fn victim(&mut self, back: bool) {
        self.victims.0 += 1.0;
        self.victims.1 += f64::from(u8::from(back));
        if self.victims.0 >= Self::PERIOD {
            self.victims.0 /= 2.0;
            self.victims.1 /= 2.0;
        }
    }

    /// The sketch refuses a newcomer: whether to admit it anyway.
    fn overrides(&mut self) -> bool {
        self.decisions += 1;
        let favors = self.favors();
        match self.rule {
            JudgeRule::Half | JudgeRule::Versus { .. } => favors && self.decisions % 32 != 0,
            JudgeRule::Regrets => {
                let admit = favors != (self.decisions % 16 == 0);
                if admit {
                    self.overridden += 1.0;
                } else {
                    self.refused += 1.0;
                }
                if self.refused + self.overridden >= Self::PERIOD {
                    self.refused /= 2.0;
                    self.refused_back /= 2.0;
                    self.overridden /= 2.0;
                    self.overridden_back /= 2.0;
                }
                admit
            }
        }
    }
}

impl Windowed {
    /// Main's admission of `key` (`ties`: a tie with the victim wins), with the judge's
    /// word when the sketch refuses; the victim, if any, is remembered.
    fn admit_to_main(&mut self, key: u64, hash: u64, full: bool, ties: bool) -> Outcome {
        let judge = self.ghosts.as_mut().and_then(|g| g.judge.take());
        let judge = RefCell::new(judge);
        let overridden = std::cell::Cell::new(false);
        let outcome = self.main.insert_judged(key, hash, full, |new, old| {
            if new > old || ties && new == old {
                return true;
            }
            let admit = judge.borrow_mut().as_mut().is_some_and(Judge::overrides);
            overridden.set(admit);
            admit
        });
        if let Some(ghosts) = &mut self.ghosts {
            ghosts.judge = judge.into_inner();
        }
        if let Outcome::Evicted(evicted) = outcome {
            let how = if overridden.get() {
                Ghost::Overridden
            } else {
                Ghost::Evicted
            };
            self.remember(evicted, how);
        }
        outcome
    }

    /// [`Self::ghosted_ties`] with a [`Judge`], and weakmemo's changes to the CLOCK
    /// hand while the judge favors recency: it clears the counters it passes instead
    /// of lowering them by one, and an entry joining main from the window gets one
    /// visit, as if stored behind the hand.
    pub fn judged(cap: usize, rule: JudgeRule) -> Self {
        let mut windowed = Self::ghosted_ties(cap);
        windowed.ghosts.as_mut().unwrap().judge = Some(Judge::new(rule));
        windowed
    }
}

impl Windowed {
    /// A 1% window and ghosts of the keys that left it, each stamped with the request
    /// at which it was missed. Without `direct`, the window's size follows the ghosts
    /// (ARC's rule): a refused key back within the capacity's worth of requests grows it
    /// by one, a key evicted from main and back so soon shrinks it. With `direct` (what
    /// weakmemo does), the window keeps its size and such a refused key enters main past
    /// admission, over main's victim; and with `age_divisor` d, every capacity ÷ d such
    /// returns halve the sketch.
    pub fn ghosted(cap: usize, direct: bool, age_divisor: usize) -> Self {
        let mut windowed = Self::new(cap, 1);
        windowed.ghosts = Some(Ghosts {
            age_after: (age_divisor > 0).then(|| (cap / age_divisor).max(1)),
            returned: 0,
            ties: false,
            horizon: cap as u64,
            now: 0,
            keys: HashMap::new(),
            entered: HashMap::new(),
            direct: None,
            direct_mode: direct,
            judge: None,
            fifo: VecDeque::new(),
        });
        windowed
    }

    fn remember(&mut self, key: u64, how: Ghost) {
        if let Some(ghosts) = &mut self.ghosts {
            ghosts.keys.insert(key, (ghosts.now, how));
            if how == Ghost::Evicted && ghosts.judge.is_some() {
                ghosts.fifo.push_back((key, ghosts.now));
            }
        }
    }

    fn follow_ghosts(&mut self, key: u64, hit: bool) {
        let Some(ghosts) = &mut self.ghosts else {
            return;
        };
        ghosts.now += 1;
        ghosts.direct = None;
        if let Some(judge) = &mut ghosts.judge {
            while let Some(&(key, at)) = ghosts.fifo.front() {
                if ghosts.now - at <= ghosts.horizon {
                    break;
                }
                ghosts.fifo.pop_front();
                if ghosts.keys.get(&key) == Some(&(at, Ghost::Refused)) {
                    ghosts.keys.remove(&key);
                    judge.resolved(false);
                } else if ghosts.keys.get(&key) == Some(&(at, Ghost::Evicted)) {
                    ghosts.keys.remove(&key);
                    judge.victim(false);
                }
            }
        }
        if ghosts.now % ghosts.horizon == 0 {
            let (now, horizon) = (ghosts.now, ghosts.horizon);
            let mut gone = 0;
            ghosts.keys.retain(|_, (at, how)| {
                let keep = now - *at <= horizon;
                gone += usize::from(!keep && *how == Ghost::Refused);
                keep
            });
            if let Some(judge) = &mut ghosts.judge {
                (0..gone).for_each(|_| judge.resolved(false));
            }
        }
        if hit {
            return;
        }
        let Some((at, how)) = ghosts.keys.remove(&key) else {
            return;
        };
        if ghosts.now - at > ghosts.horizon {
            if let Some(judge) = &mut ghosts.judge {
                match how {
                    Ghost::Refused => judge.resolved(false),
                    Ghost::Evicted => judge.victim(false),
                    Ghost::Overridden => {}
                }
            }
            return;
        }
        if let Some(judge) = &mut ghosts.judge {
            match how {
                Ghost::Refused => judge.resolved(true),
                Ghost::Overridden => judge.overridden_back += 1.0,
                Ghost::Evicted => judge.victim(true),
            }
        }
        if how == Ghost::Refused
            && let Some(after) = ghosts.age_after
        {
            ghosts.returned += 1;
            if ghosts.returned >= after {
                ghosts.returned = 0;
                self.sketch.borrow_mut().halve();
            }
        }
        let cap = self.window_cap + self.main_cap;
        match (how, ghosts.direct_mode) {
            (Ghost::Refused, true) => ghosts.direct = Some(key),
            (Ghost::Evicted | Ghost::Overridden, true) => {}
            (Ghost::Refused, false) => {
                if self.window_cap + 1 < cap {
                    self.resize(self.window_cap + 1);
                }
            }
            (Ghost::Evicted | Ghost::Overridden, false) => {
                if self.window_cap > 1 {
                    self.resize(self.window_cap - 1);
                }
            }
        }
    }
}
