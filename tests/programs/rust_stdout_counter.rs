// Threads print lines numbered from one counter they bump while they hold
// stdout's lock: the order in which they took the lock (a Rust Mutex,
// contended: its waits and wakes are futex calls, its other takes a
// compare-and-swap no call shows) is in every line.
//
// usage: rust_stdout_counter [LINES_PER_THREAD]
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn main() {
    let lines: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(150);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..lines {
                    let mut out = std::io::stdout().lock();
                    let n = NEXT.fetch_add(1, Ordering::Relaxed);
                    writeln!(out, "thread {t} line {i} is number {n}").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
