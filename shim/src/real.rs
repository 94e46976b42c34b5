//! The real (libc) definitions of the functions the shim interposes,
//! looked up on first use and cached: a function may be called before any
//! constructor of this library has run. The constructor looks them all up
//! (`resolve_all`), so that no later call needs the dynamic linker's lock:
//! a vfork child whose parent dies, or a signal handler that interrupted
//! a `dlopen`, could find it held for ever.

use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t,
    pthread_spinlock_t, sem_t, timespec,
};

use crate::session::ErrnoGuard;

/// Version of the condition-variable functions that programs built against
/// any current glibc use. A plain `dlsym` may find the old 2.2.5 ones.
const COND_VERSION: &CStr = c"GLIBC_2.3.2";

/// One symbol from the objects loaded after this one, resolved lazily.
struct NextSymbol {
    name: &'static CStr,
    version: Option<&'static CStr>,
    address: AtomicPtr<c_void>,
}

impl NextSymbol {
    const fn new(name: &'static CStr, version: Option<&'static CStr>) -> Self {
        NextSymbol {
            name,
            version,
            address: AtomicPtr::new(ptr::null_mut()),
        }
    }

    #[inline]
    fn address(&self) -> Option<*mut c_void> {
        let cached = self.address.load(Ordering::Acquire);
        if cached.is_null() {
            self.resolve()
        } else {
            Some(cached)
        }
    }

    /// Racing resolvers all find the same address, so a plain store is enough.
    #[cold]
    fn resolve(&self) -> Option<*mut c_void> {
        // A failed lookup may leave errno set; the program must not see it.
        let _errno = ErrnoGuard::save();
        let mut found = ptr::null_mut();
        if let Some(version) = self.version {
            // SAFETY: both strings are NUL-terminated and 'static; dlvsym
            // takes only the dynamic linker's own locks, never ours.
            found = unsafe { libc::dlvsym(libc::RTLD_NEXT, self.name.as_ptr(), version.as_ptr()) };
        }
        if found.is_null() {
            // SAFETY: as above, for dlsym.
            found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        }
        if found.is_null() {
            return None;
        }
        self.address.store(found, Ordering::Release);
        Some(found)
    }
}

/// Defines one accessor per real function, returning it as a typed
/// function pointer (None when libc does not define it), and a function
/// `$group` that looks them all up now (a new group goes in `resolve_all`).
macro_rules! real_functions {
    ($group:ident: $( $getter:ident = $name:literal $(@ $version:expr)? => fn($($arg:ty),*) -> $ret:ty; )*) => {
        $(
        #[inline]
        pub fn $getter() -> Option<unsafe extern "C" fn($($arg),*) -> $ret> {
            static SYMBOL: NextSymbol = NextSymbol::new($name, real_functions!(@version $($version)?));
            let address = SYMBOL.address()?;
            // SAFETY: `address` is the dynamic linker's definition of this
            // C function, whose prototype is exactly this signature.
            Some(unsafe {
                std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) -> $ret>(address)
            })
        }
        )*
        fn $group() {
            $( let _ = $getter(); )*
        }
    };
    (@version) => { None };
    (@version $version:expr) => { Some($version) };
}

real_functions! { sync_functions:
    mutex_lock = c"pthread_mutex_lock" => fn(*mut pthread_mutex_t) -> c_int;
    mutex_trylock = c"pthread_mutex_trylock" => fn(*mut pthread_mutex_t) -> c_int;
    mutex_timedlock = c"pthread_mutex_timedlock"
        => fn(*mut pthread_mutex_t, *const timespec) -> c_int;
    mutex_clocklock = c"pthread_mutex_clocklock"
        => fn(*mut pthread_mutex_t, clockid_t, *const timespec) -> c_int;
    mutex_unlock = c"pthread_mutex_unlock" => fn(*mut pthread_mutex_t) -> c_int;

    cond_wait = c"pthread_cond_wait" @ COND_VERSION
        => fn(*mut pthread_cond_t, *mut pthread_mutex_t) -> c_int;
    cond_timedwait = c"pthread_cond_timedwait" @ COND_VERSION
        => fn(*mut pthread_cond_t, *mut pthread_mutex_t, *const timespec) -> c_int;
    // Added in glibc 2.30 with a single version: plain dlsym finds it.
    cond_clockwait = c"pthread_cond_clockwait"
        => fn(*mut pthread_cond_t, *mut pthread_mutex_t, clockid_t, *const timespec) -> c_int;
    cond_signal = c"pthread_cond_signal" @ COND_VERSION => fn(*mut pthread_cond_t) -> c_int;
    cond_broadcast = c"pthread_cond_broadcast" @ COND_VERSION => fn(*mut pthread_cond_t) -> c_int;

    rwlock_rdlock = c"pthread_rwlock_rdlock" => fn(*mut pthread_rwlock_t) -> c_int;
    rwlock_wrlock = c"pthread_rwlock_wrlock" => fn(*mut pthread_rwlock_t) -> c_int;
    rwlock_tryrdlock = c"pthread_rwlock_tryrdlock" => fn(*mut pthread_rwlock_t) -> c_int;
    rwlock_trywrlock = c"pthread_rwlock_trywrlock" => fn(*mut pthread_rwlock_t) -> c_int;
    rwlock_timedrdlock = c"pthread_rwlock_timedrdlock"
        => fn(*mut pthread_rwlock_t, *const timespec) -> c_int;
    rwlock_timedwrlock = c"pthread_rwlock_timedwrlock"
        => fn(*mut pthread_rwlock_t, *const timespec) -> c_int;
    rwlock_clockrdlock = c"pthread_rwlock_clockrdlock"
        => fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int;
    rwlock_clockwrlock = c"pthread_rwlock_clockwrlock"
        => fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int;
    rwlock_unlock = c"pthread_rwlock_unlock" => fn(*mut pthread_rwlock_t) -> c_int;

    sem_wait = c"sem_wait" => fn(*mut sem_t) -> c_int;
    sem_trywait = c"sem_trywait" => fn(*mut sem_t) -> c_int;
    sem_timedwait = c"sem_timedwait" => fn(*mut sem_t, *const timespec) -> c_int;
    sem_clockwait = c"sem_clockwait" => fn(*mut sem_t, clockid_t, *const timespec) -> c_int;
    sem_post = c"sem_post" => fn(*mut sem_t) -> c_int;

    spin_lock = c"pthread_spin_lock" => fn(*mut pthread_spinlock_t) -> c_int;
    spin_trylock = c"pthread_spin_trylock" => fn(*mut pthread_spinlock_t) -> c_int;
    spin_unlock = c"pthread_spin_unlock" => fn(*mut pthread_spinlock_t) -> c_int;

    barrier_wait = c"pthread_barrier_wait" => fn(*mut pthread_barrier_t) -> c_int;

    pthread_cancel = c"pthread_cancel" => fn(libc::pthread_t) -> c_int;
    pthread_join = c"pthread_join" => fn(libc::pthread_t, *mut *mut c_void) -> c_int;
    sched_yield = c"sched_yield" => fn() -> c_int;
    pthread_create = c"pthread_create" => fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C" fn(*mut c_void) -> *mut c_void,
        *mut c_void
    ) -> c_int;

    random_device_init =
        c"_ZNSt13random_device7_M_initERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
        @ c"GLIBCXX_3.4.21"
        => fn(*mut c_void, *const crate::random::CxxString) -> ();

    flockfile = c"flockfile" => fn(*mut c_void) -> ();
    funlockfile = c"funlockfile" => fn(*mut c_void) -> ();
    ftrylockfile = c"ftrylockfile" => fn(*mut c_void) -> c_int;

    gomp_critical_start = c"GOMP_critical_start" => fn() -> ();
    gomp_critical_name_start = c"GOMP_critical_name_start" => fn(*mut *mut c_void) -> ();
    gomp_atomic_start = c"GOMP_atomic_start" => fn() -> ();
    omp_set_lock = c"omp_set_lock" => fn(*mut c_void) -> ();
    omp_test_lock = c"omp_test_lock" => fn(*mut c_void) -> c_int;
    omp_set_nest_lock = c"omp_set_nest_lock" => fn(*mut c_void) -> ();
}

// libgomp's loop schedules whose chunks an atomic hands out (`openmp`).
real_functions! { gomp_loops:
    gomp_loop_dynamic_start = c"GOMP_loop_dynamic_start" => fn(
        libc::c_long, libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_dynamic_next = c"GOMP_loop_dynamic_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
    gomp_loop_nonmonotonic_dynamic_start = c"GOMP_loop_nonmonotonic_dynamic_start" => fn(
        libc::c_long, libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_nonmonotonic_dynamic_next = c"GOMP_loop_nonmonotonic_dynamic_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
    gomp_loop_guided_start = c"GOMP_loop_guided_start" => fn(
        libc::c_long, libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_guided_next = c"GOMP_loop_guided_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
    gomp_loop_nonmonotonic_guided_start = c"GOMP_loop_nonmonotonic_guided_start" => fn(
        libc::c_long, libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_nonmonotonic_guided_next = c"GOMP_loop_nonmonotonic_guided_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
    gomp_loop_runtime_start = c"GOMP_loop_runtime_start" => fn(
        libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_maybe_nonmonotonic_runtime_start = c"GOMP_loop_maybe_nonmonotonic_runtime_start"
        => fn(
        libc::c_long, libc::c_long, libc::c_long, *mut libc::c_long, *mut libc::c_long
    ) -> bool;
    gomp_loop_runtime_next = c"GOMP_loop_runtime_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
    gomp_loop_maybe_nonmonotonic_runtime_next = c"GOMP_loop_maybe_nonmonotonic_runtime_next"
        => fn(*mut libc::c_long, *mut libc::c_long) -> bool;
}

// The calls the fast path buffers (`fast_calls`), for when it does not.
real_functions! { fast_calls:
    read = c"read" => fn(c_int, *mut c_void, libc::size_t) -> libc::ssize_t;
    splice = c"splice" => fn(
        c_int, *mut libc::loff_t, c_int, *mut libc::loff_t, libc::size_t, libc::c_uint
    ) -> libc::ssize_t;
    write = c"write" => fn(c_int, *const c_void, libc::size_t) -> libc::ssize_t;
    pread64 = c"pread64" => fn(c_int, *mut c_void, libc::size_t, i64) -> libc::ssize_t;
    pwrite64 = c"pwrite64" => fn(c_int, *const c_void, libc::size_t, i64) -> libc::ssize_t;
    readv = c"readv" => fn(c_int, *const libc::iovec, c_int) -> libc::ssize_t;
    writev = c"writev" => fn(c_int, *const libc::iovec, c_int) -> libc::ssize_t;
    recv = c"recv" => fn(c_int, *mut c_void, libc::size_t, c_int) -> libc::ssize_t;
    recvfrom = c"recvfrom" => fn(
        c_int, *mut c_void, libc::size_t, c_int, *mut libc::sockaddr, *mut libc::socklen_t
    ) -> libc::ssize_t;
    send = c"send" => fn(c_int, *const c_void, libc::size_t, c_int) -> libc::ssize_t;
    sendto = c"sendto" => fn(
        c_int, *const c_void, libc::size_t, c_int, *const libc::sockaddr, libc::socklen_t
    ) -> libc::ssize_t;
    sendmsg = c"sendmsg" => fn(c_int, *const libc::msghdr, c_int) -> libc::ssize_t;
    epoll_wait = c"epoll_wait" => fn(c_int, *mut libc::epoll_event, c_int, c_int) -> c_int;
    epoll_pwait = c"epoll_pwait"
        => fn(c_int, *mut libc::epoll_event, c_int, c_int, *const libc::sigset_t) -> c_int;
    poll = c"poll" => fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;
    clock_gettime = c"clock_gettime" => fn(clockid_t, *mut timespec) -> c_int;
    gettimeofday = c"gettimeofday" => fn(*mut libc::timeval, *mut c_void) -> c_int;
    time = c"time" => fn(*mut libc::time_t) -> libc::time_t;
    getpid = c"getpid" => fn() -> libc::pid_t;
    getppid = c"getppid" => fn() -> libc::pid_t;
}

// Descriptor copies (`std_dups`): which are copies of stdout and stderr.
real_functions! { dup_functions:
    dup = c"dup" => fn(c_int) -> c_int;
    dup2 = c"dup2" => fn(c_int, c_int) -> c_int;
    dup3 = c"dup3" => fn(c_int, c_int, c_int) -> c_int;
    // Variadic in C; the third argument, when there is one, is an integer
    // or a pointer, passed in the same register either way.
    fcntl = c"fcntl" => fn(c_int, c_int, libc::c_ulong) -> c_int;
    fcntl64 = c"fcntl64" => fn(c_int, c_int, libc::c_ulong) -> c_int;
}

real_functions! { once_guards:
    pthread_once = c"pthread_once"
        => fn(*mut libc::pthread_once_t, Option<unsafe extern "C" fn()>) -> c_int;
    // libstdc++'s, for C++ function-local statics (`static_init`).
    cxa_guard_acquire = c"__cxa_guard_acquire" => fn(*mut u64) -> c_int;
}

// The fortified entry points (`fortify`), for a call that fails their check.
real_functions! { fortified:
    read_chk = c"__read_chk" => fn(c_int, *mut c_void, libc::size_t, libc::size_t) -> libc::ssize_t;
    pread64_chk = c"__pread64_chk"
        => fn(c_int, *mut c_void, libc::size_t, i64, libc::size_t) -> libc::ssize_t;
    recv_chk = c"__recv_chk"
        => fn(c_int, *mut c_void, libc::size_t, libc::size_t, c_int) -> libc::ssize_t;
    recvfrom_chk = c"__recvfrom_chk" => fn(
        c_int, *mut c_void, libc::size_t, libc::size_t, c_int, *mut libc::sockaddr,
        *mut libc::socklen_t
    ) -> libc::ssize_t;
    poll_chk = c"__poll_chk" => fn(*mut libc::pollfd, libc::nfds_t, c_int, libc::size_t) -> c_int;
}

real_functions! { rand_functions:
    rand = c"rand" => fn() -> c_int;
    random = c"random" => fn() -> libc::c_long;
    srand = c"srand" => fn(libc::c_uint) -> ();
    srandom = c"srandom" => fn(libc::c_uint) -> ();
    initstate = c"initstate" => fn(libc::c_uint, *mut libc::c_char, libc::size_t) -> *mut libc::c_char;
    setstate = c"setstate" => fn(*mut libc::c_char) -> *mut libc::c_char;
    drand48 = c"drand48" => fn() -> libc::c_double;
    lrand48 = c"lrand48" => fn() -> libc::c_long;
    mrand48 = c"mrand48" => fn() -> libc::c_long;
    srand48 = c"srand48" => fn(libc::c_long) -> ();
}

// glibc's lazily loaded state: name services and the time zone
// (`libc_lazy`).
real_functions! { lazy_state:
    getpwuid = c"getpwuid" => fn(libc::uid_t) -> *mut libc::passwd;
    getpwuid_r = c"getpwuid_r" => fn(
        libc::uid_t, *mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd
    ) -> c_int;
    getpwnam = c"getpwnam" => fn(*const libc::c_char) -> *mut libc::passwd;
    getpwnam_r = c"getpwnam_r" => fn(
        *const libc::c_char, *mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd
    ) -> c_int;
    getgrgid = c"getgrgid" => fn(libc::gid_t) -> *mut libc::group;
    getgrgid_r = c"getgrgid_r" => fn(
        libc::gid_t, *mut libc::group, *mut libc::c_char, usize, *mut *mut libc::group
    ) -> c_int;
    getgrnam = c"getgrnam" => fn(*const libc::c_char) -> *mut libc::group;
    getgrnam_r = c"getgrnam_r" => fn(
        *const libc::c_char, *mut libc::group, *mut libc::c_char, usize, *mut *mut libc::group
    ) -> c_int;
    getaddrinfo = c"getaddrinfo" => fn(
        *const libc::c_char, *const libc::c_char, *const libc::addrinfo, *mut *mut libc::addrinfo
    ) -> c_int;
    getnameinfo = c"getnameinfo" => fn(
        *const libc::sockaddr, libc::socklen_t, *mut libc::c_char, libc::socklen_t,
        *mut libc::c_char, libc::socklen_t, c_int
    ) -> c_int;
    gethostbyname = c"gethostbyname" => fn(*const libc::c_char) -> *mut libc::hostent;
    gethostbyname_r = c"gethostbyname_r" => fn(
        *const libc::c_char, *mut libc::hostent, *mut libc::c_char, usize,
        *mut *mut libc::hostent, *mut c_int
    ) -> c_int;
    localtime = c"localtime" => fn(*const libc::time_t) -> *mut libc::tm;
    localtime_r = c"localtime_r" => fn(*const libc::time_t, *mut libc::tm) -> *mut libc::tm;
    mktime = c"mktime" => fn(*mut libc::tm) -> libc::time_t;
    tzset = c"tzset" => fn() -> ();
    ctime = c"ctime" => fn(*const libc::time_t) -> *mut libc::c_char;
    ctime_r = c"ctime_r" => fn(*const libc::time_t, *mut libc::c_char) -> *mut libc::c_char;
    strerror = c"strerror" => fn(c_int) -> *mut libc::c_char;
    strerror_r = c"strerror_r" => fn(c_int, *mut libc::c_char, usize) -> *mut libc::c_char;
    xpg_strerror_r = c"__xpg_strerror_r" => fn(c_int, *mut libc::c_char, usize) -> c_int;
    strsignal = c"strsignal" => fn(c_int) -> *mut libc::c_char;
    perror = c"perror" => fn(*const libc::c_char) -> ();
}

/// Looks up every real function now, at load time, while nothing else can
/// hold the dynamic linker's lock. A vfork child runs on its parent's
/// thread: if the parent is killed, the kernel zeroes the thread id that
/// lock is owned by, and a lookup the child made then would never unlock
/// it. Functions of libraries not loaded yet are looked up again on use.
pub fn resolve_all() {
    sync_functions();
    gomp_loops();
    fast_calls();
    dup_functions();
    once_guards();
    fortified();
    rand_functions();
    lazy_state();
}
