//! Thread ids the kernel writes into the program's memory when it
//! creates a thread or process (`CLONE_PARENT_SETTID`,
//! `CLONE_CHILD_SETTID`): the live ids of replay, which replay overwrites
//! with the recorded ones so the program sees what it saw when recorded.

use libc::c_long;

use crate::{Result, TraceeMemory};

/// Where clone or clone3 made the kernel write the new thread's id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TidWrites {
    /// In the caller's memory, before clone returns (`CLONE_PARENT_SETTID`).
    pub parent: Option<u64>,
    /// In the new thread's memory, before it runs (`CLONE_CHILD_SETTID`).
    pub child: Option<u64>,
}

/// The first fields of clone3's `struct clone_args` (flags, pidfd,
/// child_tid, parent_tid), each a u64.
const CLONE_ARGS_HEAD: usize = 32;

/// Where the kernel wrote the new thread's id for this clone or clone3
/// (nothing for any other call). clone3's arguments are read from `mem`.
pub fn clone_tid_writes(nr: c_long, args: &[u64; 6], mem: &impl TraceeMemory) -> Result<TidWrites> {
    let (flags, parent, child) = match nr {
        libc::SYS_clone => (args[0], args[2], args[3]),
        libc::SYS_clone3 if args[1] as usize >= CLONE_ARGS_HEAD => {
            let head = mem.read(args[0], CLONE_ARGS_HEAD)?;
            let field = |i: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&head[i * 8..i * 8 + 8]);
                u64::from_le_bytes(a)
            };
            (field(0), field(3), field(2))
        }
        _ => return Ok(TidWrites::default()),
    };
    let has = |f: libc::c_int| flags & f as u64 != 0;
    if has(libc::CLONE_SETTLS) || has(libc::CLONE_CHILD_CLEARTID) {
        // A thread library's thread or fork (glibc's pthread_create and
        // fork): the id lands in the new thread's control block, where the
        // kernel's live id must stay, since priority-inheritance and
        // robust futexes name their owner by it (the program reads its
        // recorded id through gettid, which replay answers).
        return Ok(TidWrites::default());
    }
    Ok(TidWrites {
        parent: (has(libc::CLONE_PARENT_SETTID) && parent != 0).then_some(parent),
        // In a new pid namespace the child sees itself as another id than
        // the one recorded in the parent's: leave the kernel's.
        child: (has(libc::CLONE_CHILD_SETTID) && !has(libc::CLONE_NEWPID) && child != 0)
            .then_some(child),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::FakeMemory;

    /// A raw clone, as programs that read the ids back make it.
    const RAW: u64 = (libc::CLONE_VM | libc::CLONE_PARENT_SETTID | libc::CLONE_CHILD_SETTID) as u64;

    #[test]
    fn clone_names_its_addresses_in_registers() {
        let mem = FakeMemory::default();
        let args = [RAW, 0x7000, 0x1000, 0x2000, 0, 0];
        let w = clone_tid_writes(libc::SYS_clone, &args, &mem).expect("no memory read");
        assert_eq!(
            w,
            TidWrites {
                parent: Some(0x1000),
                child: Some(0x2000)
            }
        );
        let only_parent = [
            RAW & !(libc::CLONE_CHILD_SETTID as u64),
            0x7000,
            0x1000,
            0x2000,
            0,
            0,
        ];
        let w = clone_tid_writes(libc::SYS_clone, &only_parent, &mem).expect("no memory read");
        assert_eq!(w.child, None);
    }

    #[test]
    fn a_thread_librarys_threads_and_forks_keep_the_kernels_id() {
        // glibc's pthread_create (CLONE_SETTLS, CLONE_PARENT_SETTID into
        // the thread's control block) and fork (CLONE_CHILD_SETTID and
        // CLONE_CHILD_CLEARTID on the same word): PI and robust futexes
        // need the live id there.
        let mem = FakeMemory::default();
        let pthread = (libc::CLONE_VM
            | libc::CLONE_THREAD
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        let w = clone_tid_writes(
            libc::SYS_clone,
            &[pthread, 0x7000, 0x1000, 0x1000, 0x9000, 0],
            &mem,
        )
        .expect("no memory read");
        assert_eq!(w, TidWrites::default());
        let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64 | 17;
        let w = clone_tid_writes(libc::SYS_clone, &[fork, 0, 0, 0x2000, 0, 0], &mem)
            .expect("no memory read");
        assert_eq!(w, TidWrites::default());
    }

    #[test]
    fn clone3_names_them_in_its_argument_struct() {
        let mem = FakeMemory::default();
        mem.put_u64(0x100, RAW);
        mem.put_u64(0x108, 0);
        mem.put_u64(0x110, 0x2000);
        mem.put_u64(0x118, 0x3000);
        let args = [0x100, 88, 0, 0, 0, 0];
        let w = clone_tid_writes(libc::SYS_clone3, &args, &mem).expect("readable");
        assert_eq!(
            w,
            TidWrites {
                parent: Some(0x3000),
                child: Some(0x2000)
            }
        );
        let short = [0x100, 16, 0, 0, 0, 0];
        let w = clone_tid_writes(libc::SYS_clone3, &short, &mem).expect("not read");
        assert_eq!(w, TidWrites::default(), "the kernel refuses a short struct");
    }

    #[test]
    fn a_child_in_a_new_pid_namespace_keeps_the_kernels_id() {
        let mem = FakeMemory::default();
        let flags = (libc::CLONE_CHILD_SETTID | libc::CLONE_NEWPID) as u64;
        let w = clone_tid_writes(libc::SYS_clone, &[flags, 0, 0, 0x2000, 0, 0], &mem)
            .expect("no memory read");
        assert_eq!(w.child, None);
        let w = clone_tid_writes(libc::SYS_fork, &[0; 6], &mem).expect("no memory read");
        assert_eq!(w, TidWrites::default());
    }
}
