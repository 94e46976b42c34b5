// A thread prints lines as fast as it can while main, after a moment,
// ends the process with a signal it causes itself: abort() or a fault
// (Rust's own SIGSEGV handler sees it is no stack overflow and lets it
// kill). The printer is killed wherever it is, often inside a write
// whose bytes are out; how many lines come out differs from run to run.
//
// usage: rust_killed_mid_print abort|segv
use std::thread;
use std::time::Duration;

fn main() {
    let how = std::env::args().nth(1).unwrap_or_default();
    thread::spawn(|| {
        for i in 0u64.. {
            println!("line {i}");
        }
    });
    thread::sleep(Duration::from_millis(3));
    if how == "segv" {
        let nowhere = std::hint::black_box(8usize) as *mut u64;
        // SAFETY: none; the fault is the point.
        unsafe { std::ptr::write_volatile(nowhere, 1) };
    }
    std::process::abort();
}
