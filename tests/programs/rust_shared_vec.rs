// Four threads push onto one Vec behind a std::sync::Mutex and print the
// length they saw; the order of their (mostly uncontended) lock
// acquisitions, which no syscall shows, decides every printed length.
use std::sync::{Arc, Mutex};
use std::thread;

fn main() {
    let shared = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let shared = shared.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let mut v = shared.lock().unwrap();
                    v.push(t * 1000 + i);
                    let len = v.len();
                    drop(v);
                    if i % 20 == 0 {
                        println!("thread {t} pushed {i}, length {len}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let v = shared.lock().unwrap();
    let owners: String = v.iter().take(60).map(|x| (x / 1000).to_string()).collect();
    println!("first owners {owners}");
}
