// Threads that each start a child and kill it at once, as a timeout
// around `Command` does: the child is killed wherever it has got to
// (still in posix_spawn's exec, loading, or printing), so whether it
// printed "started" differs from run to run.
use std::process::{Command, Stdio};
use std::thread;

fn main() {
    let workers: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut child = Command::new("sh")
                    .arg("-c")
                    .arg(format!("echo started {i}; sleep 1"))
                    .stdout(Stdio::inherit())
                    .spawn()
                    .expect("spawn sh");
                child.kill().expect("kill");
                let status = child.wait().expect("wait");
                (i, status.to_string())
            })
        })
        .collect();
    let mut sleeper = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
    sleeper.kill().expect("kill sleep");
    println!("sleep: {}", sleeper.wait().expect("wait sleep"));
    for w in workers {
        let (i, status) = w.join().expect("worker");
        println!("child {i}: {status}");
    }
}
