//! What the recorder knows about signal dispositions, to decide where an
//! interrupted syscall goes: restarted after the handler, or returning
//! EINTR to the program. Kept per process from the program's own
//! rt_sigaction calls.

use std::collections::HashMap;

use rrc_trace::ProcessId;

const NSIG: usize = 65;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disposition {
    #[default]
    Default,
    Ignore,
    Handler {
        restart: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Dispositions {
    table: [Disposition; NSIG],
}

impl Default for Dispositions {
    fn default() -> Self {
        Dispositions {
            table: [Disposition::Default; NSIG],
        }
    }
}

impl Dispositions {
    pub fn set(&mut self, sig: i32, handler: u64, flags: u64) {
        let Some(slot) = self.table.get_mut(sig as usize) else {
            return;
        };
        *slot = match handler {
            0 => Disposition::Default,
            1 => Disposition::Ignore,
            _ => Disposition::Handler {
                restart: flags & libc::SA_RESTART as u64 != 0,
            },
        };
    }

    pub fn get(&self, sig: i32) -> Disposition {
        self.table.get(sig as usize).copied().unwrap_or_default()
    }

    /// exec keeps ignored signals and resets handlers to the default.
    pub fn after_exec(&mut self) {
        for d in self.table.iter_mut() {
            if matches!(d, Disposition::Handler { .. }) {
                *d = Disposition::Default;
            }
        }
    }
}

/// Whether a syscall interrupted with kernel code `code` (512..=516) by
/// `sig` is restarted after the signal (true) or returns EINTR (false), as
/// the kernel's signal delivery decides it.
pub fn restarts(code: i64, disposition: Disposition) -> bool {
    let handled = matches!(disposition, Disposition::Handler { .. });
    match -code {
        513 => true, // ERESTARTNOINTR
        512 => match disposition {
            Disposition::Handler { restart } => restart, // ERESTARTSYS
            _ => true,
        },
        _ => !handled, // ERESTARTNOHAND, ERESTART_RESTARTBLOCK
    }
}

pub type ProcessDispositions = HashMap<ProcessId, Dispositions>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_rules_follow_the_kernel() {
        let with_restart = Disposition::Handler { restart: true };
        let without = Disposition::Handler { restart: false };
        assert!(restarts(-512, with_restart));
        assert!(!restarts(-512, without));
        assert!(restarts(-512, Disposition::Default));
        assert!(restarts(-513, without));
        assert!(!restarts(-514, with_restart));
        assert!(restarts(-514, Disposition::Ignore));
        assert!(!restarts(-516, without));
    }

    #[test]
    fn exec_resets_handlers_only() {
        let mut d = Dispositions::default();
        d.set(libc::SIGINT, 1, 0);
        d.set(libc::SIGTERM, 0x1234, libc::SA_RESTART as u64);
        d.after_exec();
        assert_eq!(d.get(libc::SIGINT), Disposition::Ignore);
        assert_eq!(d.get(libc::SIGTERM), Disposition::Default);
    }
}
