//! The tracer and the thread that traps most on one processor, while it
//! traps often.
//!
//! A trapped call costs two stops, and each stop wakes the other side: the
//! tracer when the thread stops, the thread when the tracer resumes it. In
//! a VM, waking a processor that went idle between the two goes through
//! the host, and a trapped call that costs about 10 µs with both on one
//! processor costs 60–90 µs across two (BENCHMARKS.md: 20,000 `close`
//! calls). [`startup_pin`](crate::startup_pin) covers the program's start;
//! this covers the rest of its life: a thread that makes most of the
//! trapped calls (a one-threaded program, nginx's or lighttpd's worker, a
//! server without the fast path) runs on the tracer's processor, and the
//! tracer stays there, until another thread traps as much, the calls thin
//! out, or the thread makes a call that would see or spread the pin.
//!
//! Only that thread is pinned; every other thread keeps the program's own
//! mask. A call that reads or sets a mask or processor, creates a task
//! (which would inherit the pin) or opens a file under `/proc` or `/sys`
//! (where masks show) ends the pin before it runs, so the program sees the
//! mask it was started with. `RRC_NO_COLOCATE` turns this off.

use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// Seccomp stops per look at who traps.
const WINDOW_STOPS: u32 = 128;
/// A window of stops that took longer than this is too sparse to be worth
/// a pin (under 2,000 stops a second).
const BUSY_SPAN: Duration = Duration::from_millis(64);

/// What the driver keeps about the pin between stops.
pub(crate) struct Colocation {
    enabled: bool,
    /// The tracer's mask from before any pin (the program's own), read
    /// once the start pin is over.
    original: Option<libc::cpu_set_t>,
    /// The pinned thread.
    pinned: Option<Pid>,
    window_start: Instant,
    stops: u32,
    /// Stops per thread in this window; few threads trap at once.
    counts: Vec<(Pid, u32)>,
}

impl Default for Colocation {
    fn default() -> Self {
        Colocation {
            enabled: std::env::var_os("RRC_NO_COLOCATE").is_none(),
            original: None,
            pinned: None,
            window_start: Instant::now(),
            stops: 0,
            counts: Vec::new(),
        }
    }
}

impl Colocation {
    /// A seccomp stop of `pid` for call `nr` with `args` (`path`: an
    /// open's, as the driver read it; the start pin is over).
    pub(crate) fn at_seccomp_stop(
        &mut self,
        pid: Pid,
        nr: i64,
        args: &[u64; 6],
        path: Option<&[u8]>,
    ) {
        if !self.enabled {
            return;
        }
        if self.pinned.is_some()
            && (crate::startup_pin::ends_pin(nr, args)
                || crate::startup_pin::opens_kernel_view(pid, nr, args, path))
        {
            self.release();
            // A new window starts after the call: a window that closed at
            // this stop, or at the reads of the file it opens, would pin
            // the thread again before it looks.
            self.new_window();
            return;
        }
        match self.counts.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((pid, 1)),
        }
        self.stops += 1;
        if self.stops >= WINDOW_STOPS {
            self.look_at_window();
        }
    }

    /// Keeps `pid` pinned with the tracer, as the start pin left them
    /// (`original`: the mask from before it), until one of its calls or a
    /// window of stops ends it, as for a pin of its own.
    pub(crate) fn adopt(&mut self, pid: Pid, original: libc::cpu_set_t) {
        self.original = Some(original);
        if !self.enabled {
            let size = std::mem::size_of::<libc::cpu_set_t>();
            // SAFETY: `original` is a valid mask read by
            // sched_getaffinity; a thread that ended makes it fail.
            unsafe {
                libc::sched_setaffinity(pid.as_raw(), size, &original);
                libc::sched_setaffinity(0, size, &original);
            }
            return;
        }
        self.pinned = Some(pid);
        self.new_window();
    }

    /// Starts counting stops afresh.
    fn new_window(&mut self) {
        self.stops = 0;
        self.counts.clear();
        self.window_start = Instant::now();
    }

    /// `pid` ended: a pin for it is over.
    pub(crate) fn ended(&mut self, pid: Pid) {
        if self.pinned == Some(pid) {
            self.release();
        }
        self.counts.retain(|(p, _)| *p != pid);
    }

    /// Pins the thread that made three quarters of a busy window's stops;
    /// ends the pin otherwise.
    fn look_at_window(&mut self) {
        let busy = self.window_start.elapsed() <= BUSY_SPAN;
        let top = self.counts.iter().copied().max_by_key(|&(_, n)| n);
        let choice = top
            .filter(|&(_, n)| busy && n * 4 >= self.stops * 3)
            .map(|(pid, _)| pid);
        if choice != self.pinned {
            self.release();
            if let Some(pid) = choice {
                self.pin(pid);
            }
        }
        self.new_window();
    }

    /// Pins the tracer to the processor it runs on, and `pid` with it.
    fn pin(&mut self, pid: Pid) {
        if self.original.is_none() {
            self.original = crate::startup_pin::own_mask();
            if self.original.is_none() {
                self.enabled = false;
                return;
            }
        }
        let Some(original) = self.original else {
            return;
        };
        let Some(one) = crate::startup_pin::this_processor(&original) else {
            return;
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: sched_setaffinity reads valid masks of their size. A
        // thread that ended makes its call fail with ESRCH, which leaves
        // nothing pinned.
        unsafe {
            if libc::sched_setaffinity(pid.as_raw(), size, &one) != 0 {
                return;
            }
            if libc::sched_setaffinity(0, size, &one) != 0 {
                libc::sched_setaffinity(pid.as_raw(), size, &original);
                return;
            }
        }
        self.pinned = Some(pid);
    }

    /// Gives the pinned thread and the tracer their mask back.
    fn release(&mut self) {
        let (Some(pid), Some(original)) = (self.pinned.take(), self.original) else {
            return;
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `original` is a valid mask read by sched_getaffinity; a
        // thread that ended makes its call fail, which is harmless.
        unsafe {
            libc::sched_setaffinity(pid.as_raw(), size, &original);
            libc::sched_setaffinity(0, size, &original);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off() -> Colocation {
        Colocation {
            enabled: true,
            original: None,
            pinned: None,
            window_start: Instant::now(),
            stops: 0,
            counts: Vec::new(),
        }
    }

    #[test]
    fn a_window_is_counted_per_thread_and_forgets_a_thread_that_ended() {
        let mut c = off();
        let (a, b) = (Pid::from_raw(1_000_001), Pid::from_raw(1_000_002));
        for _ in 0..5 {
            c.at_seccomp_stop(a, libc::SYS_close, &[0; 6], None);
        }
        c.at_seccomp_stop(b, libc::SYS_close, &[0; 6], None);
        assert_eq!(c.counts, vec![(a, 5), (b, 1)]);
        c.ended(a);
        assert_eq!(c.counts, vec![(b, 1)]);
    }

    #[test]
    fn a_pin_handed_over_from_the_start_is_kept_until_a_window_says_otherwise() {
        let (a, b) = (Pid::from_raw(1_000_005), Pid::from_raw(1_000_006));
        let mut c = off();
        c.stops = 7;
        // SAFETY: cpu_set_t is plain data.
        let mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        c.adopt(a, mask);
        assert_eq!(c.pinned, Some(a));
        assert_eq!(c.stops, 0, "a new window starts at the hand-over");
        c.at_seccomp_stop(a, libc::SYS_close, &[0; 6], None);
        assert_eq!(c.pinned, Some(a), "its calls keep it");
        // A window where another thread makes the calls moves the pin off
        // (the pids are not real: the unpinning fails harmlessly).
        for _ in 0..WINDOW_STOPS {
            c.at_seccomp_stop(b, libc::SYS_close, &[0; 6], None);
        }
        assert_ne!(c.pinned, Some(a));
    }

    #[test]
    fn a_call_that_ends_the_pin_starts_a_new_window_so_it_cannot_be_pinned_again_before_it_runs() {
        let a = Pid::from_raw(1_000_007);
        let mut c = off();
        // SAFETY: cpu_set_t is plain data.
        let mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        c.adopt(a, mask);
        for _ in 0..100 {
            c.at_seccomp_stop(a, libc::SYS_close, &[0; 6], None);
        }
        c.at_seccomp_stop(a, libc::SYS_sched_getaffinity, &[0; 6], None);
        assert_eq!(c.pinned, None);
        assert_eq!(c.stops, 0, "the window restarts after the call");
        assert!(c.counts.is_empty());
    }

    #[test]
    fn a_sparse_or_shared_window_pins_nobody() {
        let (a, b) = (Pid::from_raw(1_000_003), Pid::from_raw(1_000_004));
        // Shared: half each, however fast.
        let mut c = off();
        for i in 0..WINDOW_STOPS {
            c.at_seccomp_stop(
                if i % 2 == 0 { a } else { b },
                libc::SYS_close,
                &[0; 6],
                None,
            );
        }
        assert_eq!(c.pinned, None);
        assert_eq!(c.stops, 0, "the window was looked at and restarted");
        // Sparse: one thread, but slower than the busy rate.
        let mut c = off();
        c.window_start = Instant::now() - 2 * BUSY_SPAN;
        for _ in 0..WINDOW_STOPS {
            c.at_seccomp_stop(a, libc::SYS_close, &[0; 6], None);
        }
        assert_eq!(c.pinned, None);
    }
}
