//! The program's output to rrc-replay's own stdout and stderr, in the
//! recorded order, without holding any thread for it: a replayed write is
//! checked against its thread's record and returns at once; its recorded
//! bytes wait here, by their output rank, until every earlier output has
//! been replayed. A write that is never replayed stops the flush there
//! (no thread waits for it); at the end of the replay, or at a divergence,
//! what was replayed is written out in the recorded order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Replayer;

/// Recorded outputs replayed ahead of their turn, by output rank.
#[derive(Debug, Default)]
pub(crate) struct OutputOrder {
    /// The output rank written next.
    next: u64,
    pending: BTreeMap<u64, (i32, Vec<u8>)>,
}

impl OutputOrder {
    /// An order whose first `printed` outputs were printed by an earlier
    /// try (`search.rs`): they are not printed again.
    pub fn after(printed: u64) -> OutputOrder {
        OutputOrder {
            next: printed,
            pending: BTreeMap::new(),
        }
    }

    /// How many outputs, from the first, have been printed.
    pub fn printed(&self) -> u64 {
        self.next
    }

    /// The output at `rank` (to descriptor `fd`) was replayed: returns
    /// what may be written now, in order.
    pub fn put(&mut self, rank: u64, fd: i32, data: Vec<u8>) -> Vec<(i32, Vec<u8>)> {
        if rank >= self.next {
            self.pending.insert(rank, (fd, data));
        }
        let mut ready = Vec::new();
        while let Some(out) = self.pending.remove(&self.next) {
            ready.push(out);
            self.next += 1;
        }
        ready
    }

    /// Everything replayed and not yet written, in the recorded order
    /// (outputs never replayed are left out).
    pub fn drain(&mut self) -> Vec<(i32, Vec<u8>)> {
        if let Some((&last, _)) = self.pending.last_key_value() {
            self.next = last + 1;
        }
        std::mem::take(&mut self.pending).into_values().collect()
    }

    /// How many outputs are held back for an earlier one.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

impl Replayer {
    /// A replayed write to stdout/stderr (`fd`), at output `rank`:
    /// printed now if every earlier output has been, else later.
    pub(super) fn put_output(&mut self, rank: Option<u64>, fd: i32, data: Vec<u8>) {
        let ready = match rank {
            Some(rank) => self.output.put(rank, fd, data),
            None => vec![(fd, data)],
        };
        for (fd, data) in ready {
            write_all(fd, &data);
        }
    }

    /// Prints every replayed output still held back, in the recorded
    /// order (at the end, or at a divergence no other try follows).
    pub fn flush_output(&mut self) {
        for (fd, data) in self.output.drain() {
            write_all(fd, &data);
        }
    }
}

/// Whether the program's output to our stderr so far ends mid-line.
static STDERR_MID_LINE: AtomicBool = AtomicBool::new(false);

/// Whether the program's output to our stderr ends mid-line: a report
/// printed after it must start a line of its own.
pub(crate) fn stderr_mid_line() -> bool {
    STDERR_MID_LINE.load(Ordering::Relaxed)
}

/// Writes `data` to our own descriptor `fd`, all of it.
pub(crate) fn write_all(fd: i32, mut data: &[u8]) {
    if let (2, Some(last)) = (fd, data.last()) {
        STDERR_MID_LINE.store(*last != b'\n', Ordering::Relaxed);
    }
    while !data.is_empty() {
        // SAFETY: writing from a valid slice to a descriptor we own.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        data = &data[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(outs: Vec<(i32, Vec<u8>)>) -> Vec<u8> {
        outs.into_iter().flat_map(|(_, d)| d).collect()
    }

    #[test]
    fn outputs_come_out_in_rank_order_whatever_order_they_were_replayed_in() {
        let mut o = OutputOrder::default();
        assert!(o.put(2, 1, b"c".to_vec()).is_empty());
        assert!(o.put(1, 2, b"b".to_vec()).is_empty());
        assert_eq!(o.waiting(), 2);
        assert_eq!(bytes(o.put(0, 1, b"a".to_vec())), b"abc");
        assert_eq!(o.waiting(), 0);
        assert_eq!(o.put(3, 1, b"d".to_vec()), vec![(1, b"d".to_vec())]);
    }

    #[test]
    fn an_output_never_replayed_stops_the_flush_until_the_end() {
        let mut o = OutputOrder::default();
        assert_eq!(bytes(o.put(0, 1, b"a".to_vec())), b"a");
        assert!(o.put(2, 1, b"c".to_vec()).is_empty());
        assert!(o.put(3, 1, b"d".to_vec()).is_empty());
        assert_eq!(bytes(o.drain()), b"cd", "rank 1 never came");
        assert!(o.drain().is_empty());
        assert!(o.put(1, 1, b"late".to_vec()).is_empty(), "its turn is gone");
    }

    #[test]
    fn a_later_try_prints_only_what_the_earlier_ones_did_not() {
        let mut first = OutputOrder::default();
        assert_eq!(bytes(first.put(0, 1, b"a".to_vec())), b"a");
        assert!(first.put(2, 1, b"c".to_vec()).is_empty());
        assert_eq!(first.printed(), 1, "rank 2 waits for rank 1, unprinted");
        let mut again = OutputOrder::after(first.printed());
        assert!(again.put(0, 1, b"a".to_vec()).is_empty(), "printed already");
        assert_eq!(bytes(again.put(1, 1, b"b".to_vec())), b"b");
        assert_eq!(bytes(again.put(2, 1, b"c".to_vec())), b"c");
    }
}
