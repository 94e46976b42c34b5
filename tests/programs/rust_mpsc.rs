// Four senders on one std::sync::mpsc channel, printing as they go; the
// receiver prints which message arrived when. The channel is lock-free:
// its order is decided by atomics rrc does not see.
use std::sync::mpsc;
use std::thread;

fn main() {
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..4 {
        let tx = tx.clone();
        handles.push(thread::spawn(move || {
            for i in 0..50 {
                tx.send((id, i)).unwrap();
                if i % 10 == 0 {
                    println!("sender {id} at {i}");
                }
            }
        }));
    }
    drop(tx);
    let mut n = 0;
    for (id, i) in rx {
        n += 1;
        if n % 7 == 0 {
            println!("got {id}:{i} as #{n}");
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    println!("total {n}");
}
