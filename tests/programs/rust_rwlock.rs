// Three readers take a std::sync::RwLock's read lock, total a shared
// table and print what they saw, while two writers update it (each
// update stamped with the wall clock). std's RwLock is futex based: its
// uncontended paths make no call rrc sees, so which updates a reader saw
// is a race rrc records only with `rrc-record --serialize`.
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::SystemTime;

const SLOTS: usize = 13;

fn main() {
    let table = Arc::new(RwLock::new(vec![(0u32, 0u32); SLOTS]));
    let mut threads = Vec::new();
    for reader in 1..=3 {
        let table = Arc::clone(&table);
        threads.push(thread::spawn(move || {
            // Prints each change it sees, the first dozen.
            let (mut last, mut printed) = (u32::MAX, 0);
            for look in 0..20_000 {
                let t = table.read().unwrap();
                let owners: u32 = t.iter().map(|slot| slot.0).sum();
                if owners != last && printed < 12 {
                    println!("reader {reader} look {look}: owners total {owners}");
                    last = owners;
                    printed += 1;
                }
            }
        }));
    }
    for writer in 1..=2u32 {
        let table = Arc::clone(&table);
        threads.push(thread::spawn(move || {
            for step in 0..600usize {
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let mut t = table.write().unwrap();
                t[step % SLOTS] = (writer, nanos % 1000);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let t = table.read().unwrap();
    let owners: Vec<u32> = t.iter().map(|slot| slot.0).collect();
    println!("final owners {owners:?}");
}
