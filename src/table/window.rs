//! A bounded method's admission window, and the ghosts of the keys it could not keep
//! (the policy is in [`super::bound`]).
//!
//! - **The window** is the newest 1% of the bound (at least one entry): every value
//!   just computed is stored there, whatever admission thinks of it, so that the next
//!   call finds it. Window entries live in the shards like any other, marked by a bit of
//!   their hash word, so a hit costs what it did; only their order is kept here, as a
//!   queue of hashes under the CLOCK hand's lock.
//! - When the window is over its share, its oldest entry leaves it. If the bound has
//!   room, the entry simply joins the main region; if not, TinyLFU judges it against the
//!   CLOCK hand's victim, and the loser is evicted.
//! - **Ghosts** remember the hash of each key that lost there, and when it was first
//!   missed, in requests (hits and misses). A key missed again within as many requests
//!   as the method holds entries is one that an LRU cache of the same size would still
//!   have held: it is stored in the main region directly, over the hand's victim, if the
//!   sketch has seen it at least as often (where a window entry must be seen more
//!   often), and in the window again if not. Every eighth of the held entries' worth of
//!   such returns halves the sketch: they show that what it remembers is no longer what
//!   is asked.
//! - **The judge** weighs what refusing costs against what evicting costs. The victims
//!   evicted for a newcomer the sketch preferred are ghosts too, marked as such, and
//!   each ghost is counted once, as it returns in time or passes the horizon. While the
//!   keys refused lately come back more than twice as often as the victims (and more
//!   than one in ten), the sketch is turning away a working set that LRU would have
//!   hit: the working set moved or shifted (its old victims stop coming back), or the
//!   cache is new and has seen nothing yet. The judge then overrules the sketch: the
//!   key goes in over the victim all the same. Every 32nd is still turned away, so that
//!   the judge keeps seeing whether they come back.
//! - A key that returns only after a longer stretch, as in a loop over more keys than
//!   the bound holds, or a one-off scan's, is judged by frequency alone, like a window
//!   entry, and counts as gone for the judge: that is what keeps loops and scans from
//!   flushing the cache.
//!
//! The queue and the ghosts hold hashes only. A hash of the queue whose entry is gone
//! (invalidated, purged, expired) is skipped when it comes up, and the queue is kept to
//! twice the window's share plus 64, so such hashes never pile up. Two keys sharing a
//! 64-bit hash only misorder the window or admit a key directly: the books (the
//! window's weight is counted by the entries' bit, in
//! [`Bound::window_held`](super::bound::Bound::window_held)) never depend on it.

use std::collections::VecDeque;

use hashbrown::HashMap;

/// The window's order, the ghosts and the judge, kept under the CLOCK hand's lock.
#[derive(Default)]
pub(crate) struct Window {
    /// The window entries' hashes, oldest first, with the request count at which each
    /// key was missed.
    pub(super) queue: VecDeque<(u64, u64)>,
    ghosts: Ghosts,
    judge: Judge,
}

/// Keys that lost to the main region's victim, by hash, with the request count at which
/// they were missed; and the victims the sketch chose over a newcomer, with the request
/// count at which they were evicted, marked by [`VICTIM`].
#[derive(Default)]
struct Ghosts {
    missed_at: HashMap<u64, u64>,
    /// The same in the order they were remembered, so that each is forgotten as it
    /// passes the horizon; an item whose ghost returned, or was remembered again since,
    /// is skipped then.
    order: VecDeque<(u64, u64)>,
    /// Returns in time since the sketch was last halved by them.
    returns: usize,
}

/// The bit of a ghost's stamp that marks an evicted victim (request counts never reach
/// it).
const VICTIM: u64 = 1 << 63;

/// Whether recency overrules the sketch. Each ghost is resolved once, back within the
/// horizon or gone past it: a refused key back is one LRU would have hit, a victim back
/// one the sketch should have kept. While refused keys come back more than twice as
/// often as victims (and more than one in 10), turning newcomers away costs more than
/// evicting for them, as when the working set moves or shifts, and recency overrules
/// the sketch.
#[derive(Default)]
struct Judge {
    refused: Tally,
    victims: Tally,
    /// Overrulings so far; every [`Judge::EXPLORE`]th is not, so that the sketch keeps
    /// turning some keys away and the judge keeps seeing whether they come back.
    overruled: u32,
}

/// Ghosts resolved lately and those back in time, halved every [`Judge::PERIOD`]
/// resolved so that they follow the traffic.
#[derive(Default)]
struct Tally {
    resolved: u32,
    back: u32,
}

impl Tally {
    fn resolve(&mut self, back: bool) {
        self.resolved += 1;
        self.back += u32::from(back);
        if self.resolved >= Judge::PERIOD {
            self.resolved /= 2;
            self.back /= 2;
        }
    }
}

impl Judge {
    const PERIOD: u32 = 1024;
    const EXPLORE: u32 = 32;

    /// Whether refused keys come back more than twice as often as victims, and more
    /// than one in 10 (where neither comes back, refusing costs nothing). Before any
    /// refused key is resolved they are taken to: a cache starts from recency.
    fn favors_recency(&self) -> bool {
        let (r, v) = (&self.refused, &self.victims);
        if r.resolved == 0 {
            return true;
        }
        // r.back / r.resolved > 2 × v.back / (v.resolved + 1) + 1/10, in integers.
        let (r_back, r_all) = (u64::from(r.back), u64::from(r.resolved));
        let (v_back, v_all) = (u64::from(v.back), u64::from(v.resolved) + 1);
        10 * r_back * v_all > 20 * v_back * r_all + r_all * v_all
    }

    /// A ghost of `stamp` came back in time, or is gone.
    fn resolve(&mut self, stamp: u64, back: bool) {
        let tally = if stamp & VICTIM != 0 {
            &mut self.victims
        } else {
            &mut self.refused
        };
        tally.resolve(back);
    }

    /// Whether the key the sketch just turned away goes in all the same.
    fn overrules(&mut self) -> bool {
        if !self.favors_recency() {
            return false;
        }
        self.overruled = self.overruled.wrapping_add(1);
        self.overruled % Self::EXPLORE != 0
    }
}

/// What a ghost said of a key just missed: by default, nothing.
#[derive(Default)]
pub(super) struct Return {
    /// The key lost lately and was asked for again within the horizon: it may go to the
    /// main region directly, winning ties.
    pub(super) direct: bool,
    /// Enough keys have returned so lately: halve the sketch.
    pub(super) age: bool,
}

impl Window {
    /// Remembers that the key of `hash`, missed at request `missed_at`, lost to the
    /// main region's victim. `horizon` is the number of entries held (see
    /// [`Self::returned`]).
    pub(super) fn lost(&mut self, hash: u64, missed_at: u64, now: u64, horizon: u64) {
        self.remember(hash, missed_at, now, horizon);
    }

    /// Remembers that the entry of `hash` was evicted at request `now` for a newcomer
    /// the sketch preferred: the judge watches whether it comes back.
    pub(super) fn evicted(&mut self, hash: u64, now: u64, horizon: u64) {
        self.remember(hash, now | VICTIM, now, horizon);
    }

    fn remember(&mut self, hash: u64, stamp: u64, now: u64, horizon: u64) {
        self.forget_past(now, horizon);
        self.ghosts.missed_at.insert(hash, stamp);
        self.ghosts.order.push_back((hash, stamp));
    }

    /// Whether the key of `hash`, missed at request `now`, lost lately and returns
    /// within `horizon` requests of its last miss.
    #[inline]
    pub(super) fn returned(&mut self, hash: u64, now: u64, horizon: u64) -> Return {
        if self.ghosts.missed_at.is_empty() {
            // Nothing lost yet (a bound with room): no probe.
            return Return::default();
        }
        self.forget_past(now, horizon);
        let Some(stamp) = self.ghosts.missed_at.remove(&hash) else {
            return Return::default();
        };
        let in_time = now.saturating_sub(stamp & !VICTIM) <= horizon;
        self.judge.resolve(stamp, in_time);
        if stamp & VICTIM != 0 {
            // A victim back is a newcomer like any other.
            return Return::default();
        }
        let mut age = false;
        if in_time {
            self.ghosts.returns += 1;
            if self.ghosts.returns as u64 >= (horizon / 8).max(1) {
                self.ghosts.returns = 0;
                age = true;
            }
        }
        Return {
            direct: in_time,
            age,
        }
    }

    /// Whether recency overrules the sketch, which has just judged a candidate to be
    /// seen less often than the hand's victim (see [`Judge`]).
    pub(super) fn overrules(&mut self) -> bool {
        self.judge.overrules()
    }

    /// Whether the judge favors recency: then the CLOCK hand clears a hit entry's
    /// visits rather than counting them down, so that what is no longer asked for goes
    /// within one lap, as in LRU.
    #[inline]
    pub(super) fn favors_recency(&self) -> bool {
        self.judge.favors_recency()
    }

    /// Forgets the ghosts that can no longer return in time: each is counted as gone (a
    /// key the sketch was right to turn away, or to evict). So ghosts are the keys lost
    /// or evicted within the horizon, and a few more where racing misses stamped them
    /// out of order; the order is kept within four horizons (at least 256 items)
    /// whatever the stamps.
    fn forget_past(&mut self, now: u64, horizon: u64) {
        let limit = horizon.max(64).saturating_mul(4);
        let ghosts = &mut self.ghosts;
        while let Some(&(hash, stamp)) = ghosts.order.front() {
            let at = stamp & !VICTIM;
            if now.saturating_sub(at) <= horizon && (ghosts.order.len() as u64) < limit {
                break;
            }
            ghosts.order.pop_front();
            if ghosts.missed_at.get(&hash) == Some(&stamp) {
                ghosts.missed_at.remove(&hash);
                self.judge.resolve(stamp, false);
            }
        }
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use super::{Judge, VICTIM, Window};
    use crate::lock_scope::Scoped;
    use crate::owners::SharedHeld;
    use crate::table::MethodCache;
    use crate::{Registry, Weigher};

    /// The judge starts from recency, still lets every 32nd key be turned away, turns
    /// to the sketch once refused keys come back no more than twice as often as its
    /// victims, and back once they do; its counts stay within its period.
    #[test]
    fn the_judge_weighs_refused_keys_back_against_victims_back() {
        let (refused, victim) = (0, VICTIM);
        let mut judge = Judge::default();
        let overruled = (0..64).filter(|_| judge.overrules()).count();
        assert_eq!(overruled, 62, "recency, but for every 32nd");
        // Refused keys that never come back: the sketch is right.
        judge.resolve(refused, false);
        assert!(!judge.favors_recency());
        // No victim back yet: one refused key in 8 back is recency's case.
        (0..6).for_each(|_| judge.resolve(refused, false));
        judge.resolve(refused, true);
        assert!(judge.favors_recency());
        // A victim in 10 back, a refused key in 10 back: the sketch is right.
        for i in 0..10_000 {
            judge.resolve(victim, i % 10 == 0);
            judge.resolve(refused, i % 10 == 0);
            assert!(judge.refused.resolved < Judge::PERIOD);
            assert!(judge.victims.resolved < Judge::PERIOD);
        }
        assert!(!judge.favors_recency());
        assert!(!judge.overrules());
        // Refused keys back 4 in 10 against victims' 1: recency, within a period.
        let turns = (1..).find(|i| {
            judge.resolve(victim, i % 10 == 0);
            judge.resolve(refused, i % 10 < 4);
            judge.favors_recency()
        });
        assert!(
            matches!(turns, Some(1..=1024)),
            "{turns:?} resolutions to turn"
        );
        assert!(judge.overrules());
    }

    /// Each ghost is forgotten as it passes the horizon, and counted as gone; one back
    /// in time is counted as back, a refused key's or a victim's in its own tally, and
    /// only a refused key back goes in directly. The order keeps within its limit even
    /// when stamps run backwards.
    #[test]
    fn ghosts_are_resolved_back_in_time_or_gone() {
        let mut window = Window::default();
        let tallies = |w: &Window| {
            let (r, v) = (&w.judge.refused, &w.judge.victims);
            [(r.resolved, r.back), (v.resolved, v.back)]
        };
        for hash in 0..10 {
            window.lost(hash, hash, hash, 100);
        }
        window.evicted(50, 10, 100);
        window.evicted(51, 11, 100);
        assert!(window.returned(3, 50, 100).direct, "back in time");
        assert!(!window.returned(50, 60, 100).direct, "a victim back");
        window.lost(4, 60, 60, 100); // lost again: its first stamp is stale
        assert_eq!(tallies(&window), [(1, 1), (1, 1)]);
        // At 105, 0 to 4 are past the horizon: 0, 1 and 2 are gone; 3 returned, and 4's
        // ghost is now the one stamped 60.
        assert!(!window.returned(99, 105, 100).direct);
        assert_eq!(tallies(&window), [(4, 1), (1, 1)]);
        // At 161, 5 to 9, victim 51 and 4 (stamped 60) are gone too.
        assert!(!window.returned(4, 161, 100).direct, "4 is gone by 161");
        assert_eq!(tallies(&window), [(10, 1), (2, 1)]);
        assert!(window.ghosts.missed_at.is_empty());
        for hash in 100..2_000 {
            window.lost(hash, 5_000 - hash, 200, 10);
        }
        assert!(window.ghosts.order.len() <= 256, "order within its limit");
    }

    impl<H: SharedHeld, A, V> MethodCache<H, A, V> {
        /// The window's weight as counted and as the entries' bits add up; the same
        /// for the weight held, with no call under way.
        fn books(&self) -> [(usize, usize); 2] {
            let (mut window, mut all) = (0, 0);
            for shard in self.made_shards() {
                for entry in Scoped::lock(|| shard.tables.read()).ready.iter() {
                    all += entry.stamp.weight();
                    if entry.in_window() {
                        window += entry.stamp.weight();
                    }
                }
            }
            let counted = self.bound.get().map_or(0, |b| b.window_held.load(Relaxed));
            [(counted, window), (self.held.load(Relaxed), all)]
        }
    }

    thread_local! {
        /// xorshift state; `Eq` panics on a draw below `FAILS` (of 256).
        static DRAW: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
        static FAILS: Cell<u64> = const { Cell::new(0) };
    }

    fn draw() -> u64 {
        DRAW.with(|state| {
            let mut x = state.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.set(x);
            x
        })
    }

    /// An argument that every key hashes alike for, so that each store probes past
    /// every entry with `Eq`, which panics now and then.
    struct Arg(u64);

    impl Hash for Arg {
        fn hash<S: Hasher>(&self, state: &mut S) {
            0u8.hash(state);
        }
    }

    impl PartialEq for Arg {
        fn eq(&self, other: &Self) -> bool {
            if draw() % 256 < FAILS.with(Cell::get) {
                panic!("Eq fails on purpose");
            }
            self.0 == other.0
        }
    }

    impl Eq for Arg {}

    fn id(_: &Arc<u8>, arg: &Arg) -> u64 {
        arg.0
    }

    fn plain(_: &Arc<u8>, &k: &u64) -> u64 {
        k
    }

    /// Four threads calling, invalidating and changing the bound at once: once they
    /// are done, the window's weight and the weight held match the entries.
    #[test]
    fn the_windows_books_stay_exact_under_threads() {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        registry.method(plain).set_capacity(Some(64));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let owner = Arc::new(0);
                    let memo = registry.method(plain);
                    let mut x = t + 1;
                    for _ in 0..20_000 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let key = (x >> 33) % 200;
                        match (x >> 20) % 32 {
                            0 => drop(memo.invalidate(&owner, &key)),
                            1 => memo.set_capacity(Some(8 + (key as usize % 120))),
                            _ => assert_eq!(memo.call(&owner, key), key),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let [window, held] = registry.method(plain).table().books();
        assert_eq!(window.0, window.1, "the window's weight");
        assert_eq!(held.0, held.1, "the weight held");
    }

    /// A victim the sketch chose over a newcomer it has seen more often is remembered,
    /// and its return counted in the victims' tally; one evicted on the judge's word
    /// is not.
    #[test]
    fn the_sketchs_victims_are_watched() {
        let registry = Registry::new();
        let owner = Arc::new(0);
        let memo = registry.method(plain);
        memo.set_capacity(Some(2)); // a window of 1, a main region of 1
        let victims = || {
            let bound = memo.table().bound.get().unwrap();
            let hand = bound.hand.lock();
            (
                hand.window.judge.victims.resolved,
                hand.window.judge.victims.back,
            )
        };
        memo.call(&owner, 1); // into the window
        memo.call(&owner, 2); // 1 joins the main region, which has room
        memo.call(&owner, 3); // 2, seen as often as 1, goes in on the judge's word
        assert!(memo.invalidate(&owner, &3));
        memo.call(&owner, 3); // missed twice now: 3 goes in over 2 on the sketch's word
        memo.call(&owner, 4);
        assert_eq!(victims(), (0, 0));
        // Back within the horizon (the bound's 2 requests): counted as back.
        memo.call(&owner, 2);
        assert_eq!(victims(), (1, 1));
        memo.call(&owner, 1); // evicted on the judge's word: no ghost
        assert_eq!(victims(), (1, 1));
        assert_eq!(memo.stats().evicted, 4);
    }

    /// Window entries that never leave it by weight (removed first, or weighing 0)
    /// leave their hashes in the queue: it stays within its limit all the same.
    #[test]
    fn the_queue_stays_short_whatever_leaves_the_window() {
        let registry = Registry::new();
        let owner = Arc::new(0);
        let memo = registry.method(plain);
        memo.set_capacity(Some(100));
        let queued = || {
            let bound = memo.table().bound.get().unwrap();
            (bound.hand.lock().window.queue.len(), bound.queue_limit())
        };
        for k in 0..10_000 {
            memo.call(&owner, k);
            assert!(memo.invalidate(&owner, &k), "stored, in the window");
        }
        let (len, limit) = queued();
        assert_eq!(limit, 66);
        assert!(len <= limit + 1, "{len} hashes queued");
        memo.set_weigher(Some(Arc::new(|_: &u64, _: &u64| 0)));
        for k in 0..10_000 {
            memo.call(&owner, k);
        }
        let (len, limit) = queued();
        assert!(len <= limit + 1, "{len} hashes queued");
        assert_eq!(memo.stats().entries, 10_000, "weighing 0, all are kept");
    }

    /// Random calls, invalidations, bound and weigher changes, with `Eq` panicking in
    /// lookups, claims, stores and invalidations: the window's weight always equals
    /// what its entries' bits add up to, and the weight held what the entries weigh.
    #[test]
    fn the_windows_books_stay_exact_whatever_panics() {
        let registry = Registry::builder().purge_interval(3).build();
        let owner = Arc::new(0);
        let memo = registry.method(id);
        memo.set_capacity(Some(8));
        let heavy: Weigher<Arg, u64> = Arc::new(|arg: &Arg, _: &u64| (arg.0 % 3 + 1) as u32);
        // Quiet for the panics on purpose only, so that a failed assertion still shows.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"Eq fails on purpose") {
                default(info);
            }
        }));
        for step in 0..20_000 {
            let key = draw() % 24;
            FAILS.with(|fails| fails.set(if step % 7 == 0 { 64 } else { 0 }));
            let _ = catch_unwind(AssertUnwindSafe(|| match draw() % 16 {
                0 => drop(memo.invalidate(&owner, &Arg(key))),
                1 => memo.set_capacity(Some(1 + (draw() % 12) as usize)),
                2 => memo.set_weigher(Some(heavy.clone())),
                3 => memo.set_weigher(None),
                _ => assert_eq!(memo.call(&owner, Arg(key)), key),
            }));
            FAILS.with(|fails| fails.set(0));
            let [window, held] = memo.table().books();
            assert_eq!(window.0, window.1, "step {step}: the window's weight");
            assert_eq!(held.0, held.1, "step {step}: the weight held");
        }
        let _ = std::panic::take_hook();
    }
}
