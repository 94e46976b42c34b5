// Workers on a std::sync::Mutex/Condvar queue, println! from each: which
// worker takes which job depends on races in Rust's own locks, which make
// no pthread call rrc could see.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let state = Arc::new((Mutex::new((VecDeque::new(), false)), Condvar::new()));
    let mut handles = Vec::new();
    for w in 0..4 {
        let state = state.clone();
        handles.push(thread::spawn(move || {
            let mut sum = 0u64;
            loop {
                let job = {
                    let (lock, cv) = &*state;
                    let mut g = lock.lock().unwrap();
                    while g.0.is_empty() && !g.1 {
                        g = cv.wait(g).unwrap();
                    }
                    match g.0.pop_front() {
                        Some(j) => j,
                        None => break,
                    }
                };
                sum += job;
                let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_micros();
                println!("worker {w} took job {job} at {}", t % 1000);
            }
            println!("worker {w} sum {sum}");
        }));
    }
    for i in 0..300u64 {
        {
            let (lock, cv) = &*state;
            lock.lock().unwrap().0.push_back(i);
            cv.notify_one();
        }
        if i % 37 == 0 {
            thread::sleep(Duration::from_micros(200));
        }
    }
    {
        let (lock, cv) = &*state;
        lock.lock().unwrap().1 = true;
        cv.notify_all();
    }
    for h in handles {
        h.join().unwrap();
    }
    println!("all done");
}
