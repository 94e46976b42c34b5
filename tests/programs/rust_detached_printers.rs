// Detached threads print as fast as they can while main, after a few
// milliseconds, prints its own line and returns: the process ends with
// the printers wherever they are, mid-line or waiting for stdout's lock
// (which they take without a syscall when it is free). How many lines
// each printed differs from run to run.
use std::thread;
use std::time::Duration;

fn main() {
    for t in 0..3 {
        thread::spawn(move || {
            let mut i = 0u64;
            loop {
                println!("printer {t} line {i}");
                i += 1;
            }
        });
    }
    thread::sleep(Duration::from_millis(3));
    println!("main returning");
}
