//! A file-size limit (`ulimit -f`) counts a memfd's size too, and going
//! past it raises `SIGXFSZ`, which would end the tool making the sync log.

use std::io;

/// The soft file-size limit, lifted to the hard one until dropped.
pub(crate) struct LiftedFileSizeLimit(Option<libc::rlimit>);

impl LiftedFileSizeLimit {
    /// Lifts the limit so that a file of `size` bytes may be made, or
    /// says that even the hard limit is too small.
    pub(crate) fn to_hold(size: libc::off_t) -> io::Result<LiftedFileSizeLimit> {
        // SAFETY: getrlimit fills the struct it is given.
        let mut was: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `was` outlives the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut was) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let fits =
            |limit: libc::rlim_t| limit == libc::RLIM_INFINITY || limit >= size as libc::rlim_t;
        if fits(was.rlim_cur) {
            return Ok(LiftedFileSizeLimit(None));
        }
        if !fits(was.rlim_max) {
            return Err(io::Error::other(format!(
                "the file-size limit (ulimit -f) is under the {} MiB of rrc's shared memory: \
                 raise it",
                size >> 20
            )));
        }
        let lifted = libc::rlimit {
            rlim_cur: was.rlim_max,
            rlim_max: was.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lifted) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(LiftedFileSizeLimit(Some(was)))
    }
}

impl Drop for LiftedFileSizeLimit {
    fn drop(&mut self) {
        if let Some(was) = self.0 {
            // SAFETY: setrlimit reads the struct it is given; lowering the
            // soft limit back cannot fail for want of privilege.
            unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &was) };
        }
    }
}
