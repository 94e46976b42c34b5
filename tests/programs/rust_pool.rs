// A thread pool as most Rust programs write one: workers take boxed jobs
// from an mpsc channel whose receiver they share behind a Mutex, and
// print as they go. Which worker takes which job is decided by Rust's
// own lock and the channel's atomics, which make no call rrc could see
// unless they are contended.
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

type Job = Box<dyn FnOnce() -> u64 + Send + 'static>;

fn main() {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::new();
    for id in 0..4 {
        let rx = Arc::clone(&rx);
        workers.push(thread::spawn(move || {
            let mut done = 0;
            loop {
                let job = rx.lock().unwrap().recv();
                match job {
                    Ok(job) => {
                        let r = job();
                        println!("worker {id} ran a job: {r}");
                        done += 1;
                    }
                    Err(_) => break,
                }
            }
            println!("worker {id} stops after {done} jobs");
        }));
    }
    for i in 0..60u64 {
        let job: Job = Box::new(move || {
            let mut x = i;
            for _ in 0..5000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            }
            i * 1000 + x % 1000
        });
        tx.send(job).unwrap();
    }
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
}
