// Workers compute results and send them to the main thread over one
// std::sync::mpsc channel; main prints each in the order it arrives. The
// channel is lock-free: which result comes first is decided by when each
// worker finishes, which no syscall shows.
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn main() {
    let (tx, rx) = mpsc::channel();
    for w in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for k in 0..8u64 {
                let mut x = w * 31 + k;
                for _ in 0..20_000 {
                    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
                }
                tx.send((w, k, x)).unwrap();
                if k % 3 == 0 {
                    thread::sleep(Duration::from_micros(100));
                }
            }
        });
    }
    drop(tx);
    let mut n = 0;
    for (w, k, x) in rx {
        n += 1;
        println!("#{n}: worker {w} item {k} value {x}");
    }
    println!("received {n}");
}
