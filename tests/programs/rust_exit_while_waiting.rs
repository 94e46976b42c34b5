// A thread waits on a Condvar that is never notified (a wait with no
// loop around it: a spurious wake-up would print "never"); a worker
// prints with sleeps in between, then ends the process with
// process::exit while main waits to join it. How many clock reads the
// sleeps make, and when the worker's lines come out, differ from run to
// run; the waiting thread never wakes.
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiter = Arc::clone(&pair);
    thread::spawn(move || {
        let guard = waiter.0.lock().unwrap();
        let _guard = waiter.1.wait(guard).unwrap();
        println!("never");
    });
    let worker = thread::spawn(|| {
        let start = Instant::now();
        for i in 0..5 {
            println!("worker line {i} after {} us", start.elapsed().as_micros());
            thread::sleep(Duration::from_millis(1));
        }
        std::process::exit(3);
    });
    worker.join().unwrap();
}
