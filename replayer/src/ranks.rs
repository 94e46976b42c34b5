//! Dense ranks over the event-order stamps, kept compact: replay holds
//! these for the whole trace (a few bytes per event), while the events
//! themselves are read through a bounded window (`window.rs`).
//!
//! The shim and the tracer count ranks, so a stamp lost with a killed
//! thread must not leave a gap that nothing would fill: every stamp's
//! rank is the number of recorded stamps below it.

use anyhow::{bail, Result};
use rrc_trace::{ThreadId, NO_ORDER};

/// Replaces `rank` with `new[rank]`; a value out of `new`'s range
/// (`NO_ORDER`, `NO_ARRIVAL`) stays.
pub fn renumber(rank: &mut u64, new: &[u64]) {
    if let Some(n) = usize::try_from(*rank).ok().and_then(|i| new.get(i)) {
        *rank = *n;
    }
}

/// Per thread, a value for each event index (`NO_ORDER` for none): what
/// the engine looks up by `(thread, event index)`.
#[derive(Debug, Default)]
pub struct EventRanks {
    per_thread: Vec<Vec<u64>>,
}

impl EventRanks {
    pub fn new(per_thread: Vec<Vec<u64>>) -> Self {
        EventRanks { per_thread }
    }

    /// The rank of a thread's event, if it has one.
    pub fn get(&self, &(thread, index): &(ThreadId, u64)) -> Option<&u64> {
        self.per_thread
            .get(thread as usize)?
            .get(usize::try_from(index).ok()?)
            .filter(|r| **r != NO_ORDER)
    }

    /// Every `((thread, event index), rank)`.
    pub fn iter(&self) -> impl Iterator<Item = ((ThreadId, u64), u64)> + '_ {
        self.per_thread.iter().enumerate().flat_map(|(t, ranks)| {
            ranks
                .iter()
                .enumerate()
                .filter(|(_, r)| **r != NO_ORDER)
                .map(move |(i, r)| ((t as ThreadId, i as u64), *r))
        })
    }

    /// Replaces each rank `r` with `new[r]` (`NO_ORDER` stays).
    pub fn renumber(&mut self, new: &[u64]) {
        for (_, v) in self.values_mut() {
            renumber(v, new);
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = (ThreadId, &mut u64)> {
        self.per_thread
            .iter_mut()
            .enumerate()
            .flat_map(|(t, v)| v.iter_mut().map(move |r| (t as ThreadId, r)))
    }
}

/// Per thread, `(event index, value)` for the few events that have one
/// (writes to stdout/stderr, accepts' entries), sorted by index.
#[derive(Debug, Default)]
pub struct SparseRanks {
    per_thread: Vec<Vec<(u64, u64)>>,
}

impl SparseRanks {
    /// Adds a thread's next entry; indexes must come in increasing order
    /// per thread (as the trace gives a thread's events).
    pub fn push(&mut self, thread: ThreadId, index: u64, value: u64) {
        let t = thread as usize;
        if self.per_thread.len() <= t {
            self.per_thread.resize_with(t + 1, Vec::new);
        }
        self.per_thread[t].push((index, value));
    }

    pub fn get(&self, &(thread, index): &(ThreadId, u64)) -> Option<&u64> {
        let v = self.per_thread.get(thread as usize)?;
        let at = v.binary_search_by_key(&index, |e| e.0).ok()?;
        Some(&v[at].1)
    }

    /// Every `((thread, event index), value)`.
    pub fn iter(&self) -> impl Iterator<Item = ((ThreadId, u64), u64)> + '_ {
        self.per_thread
            .iter()
            .enumerate()
            .flat_map(|(t, v)| v.iter().map(move |e| ((t as ThreadId, e.0), e.1)))
    }

    /// Replaces each value `v` with `new[v]` (values out of its range are
    /// left as they are).
    pub fn renumber(&mut self, new: &[u64]) {
        for (_, v) in self.values_mut() {
            renumber(v, new);
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = (ThreadId, &mut u64)> {
        self.per_thread
            .iter_mut()
            .enumerate()
            .flat_map(|(t, v)| v.iter_mut().map(move |e| (t as ThreadId, &mut e.1)))
    }
}

/// Outputs to rrc's stdout and stderr are numbered as the trace lists
/// them, and `stamps` holds each one's place in the event order: the
/// number each gets in the order they were made. The trace lists a
/// thread's buffered calls when its buffer is read, which for writes to a
/// dup of stdout from several threads is not the order they were made.
/// If any output has no stamp, the trace's own order stands.
pub fn outputs_in_recorded_order(stamps: &[u64]) -> Vec<u64> {
    if stamps.contains(&NO_ORDER) {
        return (0..stamps.len() as u64).collect();
    }
    let mut by_stamp: Vec<usize> = (0..stamps.len()).collect();
    by_stamp.sort_by_key(|&i| stamps[i]);
    let mut new = vec![0; stamps.len()];
    for (place, listed) in by_stamp.into_iter().enumerate() {
        new[listed] = place as u64;
    }
    new
}

/// The stamps of one thread's sync operations, as `(order, arrival)`
/// slots the ranking rewrites in place.
pub type SyncStamps<'a> = Vec<(ThreadId, &'a mut u64, &'a mut u64)>;

/// The event order over all threads, rank by rank.
#[derive(Debug, Default)]
pub struct RankTable {
    /// The thread whose event each rank is.
    pub owner: Vec<ThreadId>,
    /// Whether each rank is a thread's arrival at a sync operation.
    pub arrival: Vec<bool>,
}

/// Replaces every stamp (events' returns, accepts' entries, sync
/// operations' acquisitions and arrivals) by its dense rank, and says
/// whose each rank is and which are arrivals: a sync operation's, and
/// the returns in `arrived` (per thread, the indexes of events whose
/// return was stamped as the thread got there). `NO_ORDER` stays
/// `NO_ORDER`.
pub fn rank_stamps(
    returns: &mut EventRanks,
    entries: &mut SparseRanks,
    sync: SyncStamps<'_>,
    arrived: &[Vec<u64>],
) -> Result<RankTable> {
    let mut stamps: Vec<u64> = Vec::new();
    stamps.extend(returns.values_mut().map(|(_, s)| *s));
    stamps.extend(entries.values_mut().map(|(_, s)| *s));
    for (_, order, arrival) in &sync {
        stamps.push(**order);
        stamps.push(**arrival);
    }
    stamps.retain(|o| *o != NO_ORDER);
    let ranks = StampRanks::new(stamps)?;
    let mut table = RankTable {
        owner: vec![0; ranks.len()],
        arrival: vec![false; ranks.len()],
    };
    // Gives the stamp's rank to `thread`; false for a stamp with no rank.
    let mut claim = |thread: ThreadId, slot: &mut u64, arrival: bool| {
        let Some(rank) = ranks.rank_of(*slot) else {
            *slot = NO_ORDER;
            return;
        };
        *slot = rank as u64;
        table.owner[rank] = thread;
        table.arrival[rank] |= arrival;
    };
    for (thread, slot) in returns.values_mut() {
        claim(thread, slot, false);
    }
    // An entry's stamp is the thread's arrival at the call.
    for (thread, slot) in entries.values_mut() {
        claim(thread, slot, true);
    }
    for (thread, order, arrival) in sync {
        claim(thread, order, false);
        claim(thread, arrival, true);
    }
    for (thread, indexes) in arrived.iter().enumerate() {
        for &index in indexes {
            let rank = returns.get(&(thread as ThreadId, index)).copied();
            if let Some(a) = rank.and_then(|r| table.arrival.get_mut(r as usize)) {
                *a = true;
            }
        }
    }
    Ok(table)
}

/// Each stamp's rank among all the stamps. The recorder's stamps come from
/// one counter, so they are nearly dense: then a table indexed by stamp
/// gives the ranks without sorting (a server's trace has millions).
enum StampRanks {
    /// `rank[stamp]`, `u32::MAX` for a stamp no event has.
    Dense {
        rank: Vec<u32>,
        count: usize,
    },
    Sorted(Vec<u64>),
}

impl StampRanks {
    fn new(mut stamps: Vec<u64>) -> Result<StampRanks> {
        const ABSENT: u32 = u32::MAX;
        const PRESENT: u32 = u32::MAX - 1;
        let count = stamps.len();
        let max = stamps.iter().copied().max().unwrap_or(0);
        let dense =
            max < (count as u64).saturating_mul(4).saturating_add(1024) && count < PRESENT as usize;
        if dense {
            let mut rank = vec![ABSENT; max as usize + 1];
            for s in &stamps {
                let cell = &mut rank[*s as usize];
                if *cell == PRESENT {
                    bail!("trace is inconsistent: two events share a place in the event order");
                }
                *cell = PRESENT;
            }
            for (next, cell) in rank.iter_mut().filter(|c| **c == PRESENT).enumerate() {
                // Fewer than PRESENT stamps (checked above): fits.
                *cell = next as u32;
            }
            return Ok(StampRanks::Dense { rank, count });
        }
        stamps.sort_unstable();
        if stamps.windows(2).any(|w| w[0] == w[1]) {
            bail!("trace is inconsistent: two events share a place in the event order");
        }
        Ok(StampRanks::Sorted(stamps))
    }

    fn len(&self) -> usize {
        match self {
            StampRanks::Dense { count, .. } => *count,
            StampRanks::Sorted(s) => s.len(),
        }
    }

    fn rank_of(&self, stamp: u64) -> Option<usize> {
        match self {
            StampRanks::Dense { rank, .. } => {
                let r = *rank.get(usize::try_from(stamp).ok()?)?;
                (r != u32::MAX).then_some(r as usize)
            }
            StampRanks::Sorted(s) => s.binary_search(&stamp).ok(),
        }
    }
}

/// The rank a thread whose event at `rank` happened is kept until (a
/// late return): its next event's, when that is stamped as the thread got
/// there (`arrival`) and others' events come between. Only up to an
/// arrival: a syscall's return is stamped long after its entry when the
/// call blocks, and the code before it would run too late.
pub fn late_until(rank: u64, next_own: &NextOwnRanks, arrival: &[bool]) -> Option<u64> {
    let next = next_own.get(rank)?;
    (next > rank + 1 && arrival.get(next as usize) == Some(&true)).then_some(next)
}

/// For each rank, the rank of the same thread's next event in the order,
/// 4 bytes a rank: as the distance to it (0 for none).
#[derive(Debug, Default)]
pub struct NextOwnRanks {
    distance: Vec<u32>,
}

impl NextOwnRanks {
    pub fn new(rank_owner: &[ThreadId]) -> Self {
        let mut distance = vec![0; rank_owner.len()];
        let mut seen: Vec<usize> = Vec::new();
        for (rank, owner) in rank_owner.iter().enumerate().rev() {
            let o = *owner as usize;
            if seen.len() <= o {
                seen.resize(o + 1, usize::MAX);
            }
            let later = std::mem::replace(&mut seen[o], rank);
            // A distance past u32 is as good as none: the engine only
            // looks for the thread's next event close ahead.
            if later != usize::MAX {
                distance[rank] = u32::try_from(later - rank).unwrap_or(0);
            }
        }
        NextOwnRanks { distance }
    }

    /// `NO_ORDER` after the thread's last; `None` for no such rank.
    pub fn get(&self, rank: u64) -> Option<u64> {
        let d = *self.distance.get(usize::try_from(rank).ok()?)?;
        Some(if d == 0 {
            NO_ORDER
        } else {
            rank + u64::from(d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_printed_in_the_order_they_were_made_not_the_order_buffers_were_read() {
        // Thread 1's buffer read first: its outputs (stamps 5, 9) are
        // listed before thread 2's (stamps 3, 7).
        let new = outputs_in_recorded_order(&[5, 9, 3, 7]);
        assert_eq!(new, vec![1, 3, 0, 2]);
        let mut ranks = SparseRanks::default();
        for (seq, (t, i)) in [(1, 0), (1, 1), (2, 0), (2, 1)].into_iter().enumerate() {
            ranks.push(t, i, seq as u64);
        }
        ranks.renumber(&new);
        assert_eq!(ranks.get(&(2, 0)), Some(&0));
        assert_eq!(ranks.get(&(1, 1)), Some(&3));
        // Without a stamp for every output, the listed order stands.
        let unstamped = outputs_in_recorded_order(&[5, NO_ORDER, 3]);
        assert_eq!(unstamped, vec![0, 1, 2]);
    }

    #[test]
    fn sparse_stamps_rank_as_dense_ones_do() {
        let dense = StampRanks::new(vec![7, 3, 5, 11]).expect("dense");
        let far = 1u64 << 40;
        let sparse = StampRanks::new(vec![7, 3, far, 5, 11]).expect("sparse");
        assert!(matches!(dense, StampRanks::Dense { .. }));
        assert!(matches!(sparse, StampRanks::Sorted(_)));
        for (stamp, rank) in [(3, 0), (5, 1), (7, 2), (11, 3)] {
            assert_eq!(dense.rank_of(stamp), Some(rank), "dense {stamp}");
            assert_eq!(sparse.rank_of(stamp), Some(rank), "sparse {stamp}");
        }
        assert_eq!(sparse.rank_of(far), Some(4));
        assert_eq!(dense.rank_of(4), None);
        assert_eq!(dense.rank_of(far), None);
        assert_eq!((dense.len(), sparse.len()), (4, 5));
    }

    #[test]
    fn a_stamp_given_twice_is_refused_either_way() {
        assert!(StampRanks::new(vec![2, 9, 2]).is_err());
        assert!(StampRanks::new(vec![2, 1 << 40, 2]).is_err());
    }

    #[test]
    fn stamps_become_dense_ranks_with_gaps_closed() {
        // Thread 0: events stamped 10 and 40; thread 1: an event stamped
        // 25, one with no place, and an accept entered at 12. Thread 1's
        // sync op: arrival 30, acquisition 31. Stamps 11, 20... were lost.
        let mut returns = EventRanks::new(vec![vec![10, 40], vec![25, NO_ORDER, 50]]);
        let mut entries = SparseRanks::default();
        entries.push(1, 2, 12);
        let (mut order, mut arrival) = (31u64, 30u64);
        let sync = vec![(1, &mut order, &mut arrival)];
        let table = rank_stamps(&mut returns, &mut entries, sync, &[]).expect("ranks");
        // Sorted: 10 12 25 30 31 40 50.
        assert_eq!(returns.get(&(0, 0)), Some(&0));
        assert_eq!(returns.get(&(0, 1)), Some(&5));
        assert_eq!(returns.get(&(1, 0)), Some(&2));
        assert_eq!(returns.get(&(1, 1)), None, "no place in the order");
        assert_eq!(returns.get(&(1, 2)), Some(&6));
        assert_eq!(returns.get(&(2, 0)), None, "no such thread");
        assert_eq!(entries.get(&(1, 2)), Some(&1));
        assert_eq!(entries.get(&(1, 1)), None);
        assert_eq!((order, arrival), (4, 3));
        assert_eq!(table.owner, vec![0, 1, 1, 1, 1, 0, 1]);
        // The accept's entry and the sync op's arrival are arrivals.
        assert_eq!(
            table.arrival,
            vec![false, true, false, true, false, false, false]
        );
        let all: Vec<_> = returns.iter().collect();
        assert_eq!(
            all,
            vec![((0, 0), 0), ((0, 1), 5), ((1, 0), 2), ((1, 2), 6)]
        );
        let next = NextOwnRanks::new(&table.owner);
        let all: Vec<_> = (0..8).map(|r| next.get(r)).collect();
        let none = Some(NO_ORDER);
        assert_eq!(
            all,
            vec![
                Some(5),
                Some(2),
                Some(3),
                Some(4),
                Some(6),
                none,
                none,
                None
            ]
        );
    }

    #[test]
    fn a_stamp_used_twice_is_refused() {
        let mut returns = EventRanks::new(vec![vec![7], vec![7]]);
        let e = rank_stamps(&mut returns, &mut SparseRanks::default(), Vec::new(), &[])
            .expect_err("duplicate stamps");
        assert!(e.to_string().contains("share a place"), "{e}");
    }
}
