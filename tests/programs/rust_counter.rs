// Threads bump one counter behind a std::sync::Mutex and print the value
// each one saw: the order in which they took the lock, uncontended a
// compare-and-swap rrc does not see, is in the output.
use std::sync::{Arc, Mutex};
use std::thread;

fn main() {
    let counter = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for t in 0..5 {
        let counter = Arc::clone(&counter);
        threads.push(thread::spawn(move || {
            for step in 0..30 {
                let seen = {
                    let mut c = counter.lock().unwrap();
                    *c += 1;
                    *c
                };
                println!("thread {t} step {step} saw {seen}");
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    println!("final {}", *counter.lock().unwrap());
}
