//! Real multithreaded servers recorded under a bounded client load on
//! 127.0.0.1 and replayed with no client present: memcached,
//! redis-server, lighttpd, nginx (a master and two worker processes) and a
//! small epoll server written for the tests
//! (tests/programs/epoll_server.c).
//!
//! rrc-replay compares every byte a server sends — to its clients
//! (write, send, sendmsg, writev, sendfile) as well as to stdout and
//! stderr — with the recording, and exits 0 only when all of it matched:
//! a replay's exit 0 is the byte-for-byte check of the server's replies.
//! The last test proves those bytes really are compared, by replaying a
//! trace whose recorded reply was tampered with.
//!
//! memcached, redis-server, redis-benchmark, lighttpd and nginx must be
//! installed (scripts/install-deps.sh): a test fails, never skips, when
//! one is missing.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rrc_tests::*;
use rrc_trace::{SyscallExtra, TraceReader, TraceRecord, TraceWriter};

/// Longest a client load may take before the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a client waits for any one reply.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The servers are recorded and replayed one at a time: on two cores,
/// two traced servers and their clients at once only make each slower.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set_read_timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("set_write_timeout");
    stream.set_nodelay(true).expect("set_nodelay");
    stream
}

/// Runs `clients` client threads, each calling `client(index)`, and fails
/// the test with every client's error if any failed.
fn run_clients<F>(clients: usize, client: F)
where
    F: Fn(usize) -> Result<(), String> + Sync,
{
    let errors: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let client = &client;
                s.spawn(move || client(i))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("client {i}: {e}")),
                Err(_) => Some(format!("client {i} panicked")),
            })
            .collect()
    });
    assert!(
        errors.is_empty(),
        "client load failed:\n{}",
        errors.join("\n")
    );
}

fn check_deadline(deadline: Instant, what: &str) -> Result<(), String> {
    if Instant::now() > deadline {
        Err(format!(
            "{what}: the load did not finish within {} s",
            LOAD_TIMEOUT.as_secs()
        ))
    } else {
        Ok(())
    }
}

fn read_line(r: &mut impl BufRead, what: &str) -> Result<String, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Err(format!("{what}: connection closed instead of a reply")),
        Ok(_) => Ok(line),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn expect_eof(r: &mut impl Read, what: &str) -> Result<(), String> {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!(
            "{what}: unexpected bytes before the server closed: {:?}",
            String::from_utf8_lossy(&rest)
        )),
        Err(e) => Err(format!("{what}: waiting for the server to close: {e}")),
    }
}

/// The checks every recorded server shares: rrc-record exited with the
/// server's status 0, and the trace is complete and has no unknown
/// syscalls. With `handler`, the server takes SIGTERM with a signal
/// handler, so the signal is in the trace (a signalfd consumes it as
/// data instead).
fn check_stopped_by_sigterm(rec: &Recording, handler: bool) -> Value {
    rec.assert_exit_code(0);
    let json = inspect_json(&rec.trace);
    assert_eq!(json["complete"], true, "{}: complete trace", rec.describe());
    assert!(
        !handler || count(&json, "signals", "SIGTERM") >= 1,
        "{}: the SIGTERM that stopped the server is recorded: {}",
        rec.describe(),
        json["signals"]
    );
    assert!(
        is_empty_value(&json["unknown_syscalls"]),
        "{}: the server made syscalls rrc does not know: {}",
        rec.describe(),
        json["unknown_syscalls"]
    );
    json
}

// ---------------------------------------------------------------------
// memcached
// ---------------------------------------------------------------------

fn memcached_args(port: u16) -> Vec<String> {
    let mut args = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // memcached refuses to run as root without -u.
        args.extend(["-u".to_string(), "root".to_string()]);
    }
    args.extend(
        [
            "-t",
            "4",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-l",
            "127.0.0.1",
            // Default options otherwise: the LRU maintainer and crawler
            // threads run too, and read item refcounts and the clock
            // global without locks (the event order covers those races).
        ]
        .map(str::to_string),
    );
    args
}

const MEMCACHED_CLIENTS: usize = 4;
const MEMCACHED_PAIRS: usize = 300;

/// One client: `pairs` set/get pairs on one connection, every response
/// checked (STORED; VALUE key flags len, the data, END).
fn memcached_client(port: u16, client: usize, pairs: usize) -> Result<(), String> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    for i in 0..pairs {
        check_deadline(deadline, "memcached")?;
        let key = format!("rrc:{client}:{i}");
        let flags = (client * 1000 + i) % 65536;
        let value = format!("value-{client}-{i}-{}", "x".repeat((i * 7) % 300));
        let what = format!("set {key}");
        write!(writer, "set {key} {flags} 0 {}\r\n{value}\r\n", value.len())
            .map_err(|e| format!("{what}: {e}"))?;
        let reply = read_line(&mut reader, &what)?;
        if reply != "STORED\r\n" {
            return Err(format!("{what}: expected STORED, got {reply:?}"));
        }

        let what = format!("get {key}");
        write!(writer, "get {key}\r\n").map_err(|e| format!("{what}: {e}"))?;
        let header = read_line(&mut reader, &what)?;
        let expected = format!("VALUE {key} {flags} {}\r\n", value.len());
        if header != expected {
            return Err(format!("{what}: expected {expected:?}, got {header:?}"));
        }
        let mut data = vec![0u8; value.len() + 2];
        reader
            .read_exact(&mut data)
            .map_err(|e| format!("{what}: reading the value: {e}"))?;
        if data[..value.len()] != *value.as_bytes() || &data[value.len()..] != b"\r\n" {
            return Err(format!(
                "{what}: value {:?} is not the {:?} stored",
                String::from_utf8_lossy(&data),
                value
            ));
        }
        let end = read_line(&mut reader, &what)?;
        if end != "END\r\n" {
            return Err(format!("{what}: expected END, got {end:?}"));
        }
    }
    Ok(())
}

#[test]
fn memcached_replays_multithreaded_get_set_load() {
    let memcached = require_installed("memcached");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let port = free_port();
        let args = memcached_args(port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut live = start_recording(&memcached, &args);
        live.wait_for_port(port);
        let started = Instant::now();
        run_clients(MEMCACHED_CLIENTS, |c| {
            memcached_client(port, c, MEMCACHED_PAIRS)
        });
        let load = started.elapsed();
        let rec = live.stop(libc::SIGTERM);

        let json = check_stopped_by_sigterm(&rec, true);
        let ctx = rec.describe();
        let nthreads = threads(&json).len();
        assert!(
            nthreads >= 5,
            "{ctx}: memcached -t 4 runs at least 5 threads (4 workers and the \
             dispatcher), the trace has {nthreads}"
        );
        assert!(
            syscall_count(&json, "epoll_wait") > 0,
            "{ctx}: epoll_wait: {}",
            json["syscalls"]
        );
        let sent = syscall_count(&json, "sendmsg") + syscall_count(&json, "write");
        assert!(
            sent >= (MEMCACHED_CLIENTS * MEMCACHED_PAIRS) as u64,
            "{ctx}: every reply was sent with sendmsg or write: {}",
            json["syscalls"]
        );
        assert!(
            syscall_count(&json, "read") >= (MEMCACHED_CLIENTS * MEMCACHED_PAIRS) as u64,
            "{ctx}: every request was read: {}",
            json["syscalls"]
        );

        let replay_started = Instant::now();
        assert_server_replay(
            &rec,
            &format!("memcached-round{round}"),
            &format!("round {round}: memcached replay"),
        );
        let replay_took = replay_started.elapsed();
        // A backup catching up: the order regrouped, every byte still sent.
        let caught_up = replay(&rec.trace, &["--no-intervals", "--catch-up", "--stats"]);
        let err = String::from_utf8_lossy(&caught_up.stderr);
        assert!(
            caught_up.status.success(),
            "{ctx}: catch-up replay failed ({}):\n{err}",
            caught_up.status
        );
        let (recorded, regrouped) = catch_up_handoffs(&caught_up);
        assert!(
            regrouped < recorded,
            "{ctx}: memcached's workers interleave, and catch-up hands the order on less: \
             {regrouped} against {recorded}"
        );
        eprintln!(
            "memcached round {round}: load {:.1} s, replay {:.1} s, {nthreads} threads",
            load.as_secs_f64(),
            replay_took.as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------
// redis
// ---------------------------------------------------------------------

/// How long redis-benchmark may take against the recorded server: its
/// 100,000 requests record at about 1,200 a second (a ptrace stop per
/// read and write; the in-process fast path is not built yet).
const REDIS_LOAD_LIMIT: Duration = Duration::from_secs(400);

/// The tests redis-benchmark (7.0) runs by default, as `-q` names them.
const REDIS_BENCHMARK_TESTS: [&str; 20] = [
    "PING_INLINE",
    "PING_MBULK",
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)",
    "LRANGE_600 (first 600 elements)",
    "MSET (10 keys)",
];

#[test]
fn redis_replays_redis_benchmark_load() {
    let redis_server = require_installed("redis-server");
    let redis_benchmark = require_installed("redis-benchmark");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let port = free_port();
        let port_arg = port.to_string();
        let mut live = start_recording(
            &redis_server,
            &[
                "--port",
                &port_arg,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        );
        live.wait_for_port(port);
        // Every test redis-benchmark runs by default (PING, SET, GET,
        // INCR, lists, sets, hashes, sorted sets, LRANGE, MSET), 5000
        // requests each from 8 clients.
        let started = Instant::now();
        let bench = run_within(
            Command::new(&redis_benchmark).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port_arg,
                "-n",
                "5000",
                "-c",
                "8",
                "-q",
            ]),
            None,
            "redis-benchmark",
            REDIS_LOAD_LIMIT,
        );
        let load = started.elapsed();
        let report = String::from_utf8_lossy(&bench.stdout).into_owned();
        assert!(
            bench.status.success(),
            "redis-benchmark failed ({}):\n{report}\n{}",
            bench.status,
            String::from_utf8_lossy(&bench.stderr)
        );
        for cmd in REDIS_BENCHMARK_TESTS {
            assert!(
                report.contains(&format!("{cmd}: ")) && report.contains("requests per second"),
                "redis-benchmark did not report {cmd}:\n{report}"
            );
        }
        let rec = live.stop(libc::SIGTERM);
        let json = check_stopped_by_sigterm(&rec, true);
        let ctx = rec.describe();
        assert!(
            syscall_count(&json, "epoll_wait") > 0,
            "{ctx}: epoll_wait: {}",
            json["syscalls"]
        );
        // Replies go out one write per request (MSET and LRANGE too), or,
        // when a client's reply has several parts queued, one writev.
        let requests = REDIS_BENCHMARK_TESTS.len() as u64 * 5000;
        assert!(
            syscall_count(&json, "write") + syscall_count(&json, "writev") >= requests,
            "{ctx}: a reply to each of the {requests} requests: {}",
            json["syscalls"]
        );

        let replay_started = Instant::now();
        assert_server_replay(
            &rec,
            &format!("redis-round{round}"),
            &format!("round {round}: redis-server replay"),
        );
        eprintln!(
            "redis round {round}: load {:.1} s, replay {:.1} s",
            load.as_secs_f64(),
            replay_started.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------
// lighttpd
// ---------------------------------------------------------------------

const DOC_SIZES: [usize; 20] = [
    0, 1, 17, 100, 511, 1024, 1500, 4095, 4096, 4097, 8192, 12345, 32768, 65535, 65536, 65537,
    100_000, 150_000, 262_144, 300_001,
];

/// Deterministic contents for document `i`: text for even, binary for
/// odd indices.
fn doc_body(i: usize, size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..size)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i.is_multiple_of(2) {
                if k % 64 == 63 {
                    b'\n'
                } else {
                    b' ' + (x % 95) as u8
                }
            } else {
                x as u8
            }
        })
        .collect()
}

fn doc_name(i: usize, size: usize) -> String {
    let ext = match i % 4 {
        0 => "txt",
        2 => "html",
        _ => "bin",
    };
    format!("doc{i:02}-{size}.{ext}")
}

/// A docroot with the twenty documents and a lighttpd.conf next to it.
/// Without `server.errorlog`, lighttpd -D logs to its stderr (descriptor
/// 2), which replay reproduces and compares like stdout. (With
/// `server.errorlog = "/dev/stderr"` it logs through a descriptor of its
/// own: replay still compares those bytes, but shows them nowhere.)
fn lighttpd_site(dir: &Path, port: u16) -> (Vec<(String, Vec<u8>)>, std::path::PathBuf) {
    let docroot = dir.join("htdocs");
    fs::create_dir(&docroot).expect("create the docroot");
    let docs: Vec<(String, Vec<u8>)> = DOC_SIZES
        .iter()
        .enumerate()
        .map(|(i, &size)| (doc_name(i, size), doc_body(i, size)))
        .collect();
    for (name, body) in &docs {
        fs::write(docroot.join(name), body).expect("write a document");
    }
    let conf = dir.join("lighttpd.conf");
    fs::write(
        &conf,
        format!(
            "server.document-root = \"{}\"\n\
             server.port = {port}\n\
             server.bind = \"127.0.0.1\"\n\
             mimetype.assign = (\n  \".txt\" => \"text/plain\",\n  \
             \".html\" => \"text/html\",\n  \".bin\" => \"application/octet-stream\"\n)\n",
            docroot.display()
        ),
    )
    .expect("write lighttpd.conf");
    (docs, conf)
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a Content-Length body.
fn read_response(r: &mut impl BufRead, what: &str) -> Result<HttpResponse, String> {
    let status_line = read_line(r, what)?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, what)?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("{what}: bad header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{what}: response without Content-Length"))?;
    resp.body = vec![0; len];
    r.read_exact(&mut resp.body)
        .map_err(|e| format!("{what}: reading the {len}-byte body: {e}"))?;
    Ok(resp)
}

fn check_document(resp: &HttpResponse, name: &str, body: &[u8], what: &str) -> Result<(), String> {
    if resp.status != 200 {
        return Err(format!("{what}: status {} for {name}", resp.status));
    }
    if resp.body != body {
        return Err(format!(
            "{what}: body of {name} differs from the file ({} bytes served, {} on disk)",
            resp.body.len(),
            body.len()
        ));
    }
    let mime = if name.ends_with(".txt") {
        "text/plain"
    } else if name.ends_with(".html") {
        "text/html"
    } else {
        "application/octet-stream"
    };
    match resp.header("Content-Type") {
        Some(t) if t.starts_with(mime) => Ok(()),
        other => Err(format!(
            "{what}: Content-Type {other:?} for {name}, expected {mime}"
        )),
    }
}

/// GET over a fresh connection that the server closes afterwards.
fn http_get_once(port: u16, name: &str, body: &[u8]) -> Result<(), String> {
    let what = format!("GET /{name}");
    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    write!(
        writer,
        "GET /{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let resp = read_response(&mut reader, &what)?;
    check_document(&resp, name, body, &what)?;
    expect_eof(&mut reader, &what)
}

/// Several requests on one keep-alive connection, a 404 among them.
fn http_keep_alive(port: u16, docs: &[(String, Vec<u8>)]) -> Result<(), String> {
    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    for (k, i) in [3, 15, 0, 19, 8, 16, 1, 12].into_iter().enumerate() {
        let (name, body) = &docs[i];
        let what = format!("keep-alive request {k}: GET /{name}");
        write!(
            writer,
            "GET /{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )
        .map_err(|e| format!("{what}: {e}"))?;
        let resp = read_response(&mut reader, &what)?;
        check_document(&resp, name, body, &what)?;
        if k == 3 {
            let what = "keep-alive request: GET /missing.txt";
            write!(
                writer,
                "GET /missing.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
            )
            .map_err(|e| format!("{what}: {e}"))?;
            let resp = read_response(&mut reader, what)?;
            if resp.status != 404 {
                return Err(format!("{what}: status {}, expected 404", resp.status));
            }
        }
    }
    let what = "keep-alive: last request";
    write!(
        writer,
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
        docs[14].0
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let resp = read_response(&mut reader, what)?;
    check_document(&resp, &docs[14].0, &docs[14].1, what)?;
    expect_eof(&mut reader, what)
}

#[test]
fn lighttpd_replays_static_file_load() {
    let lighttpd = require_installed("lighttpd");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let site = TempDir::new().expect("temporary directory");
        let port = free_port();
        let (docs, conf) = lighttpd_site(site.path(), port);
        let conf_arg = conf.to_str().expect("UTF-8 temp path");
        let mut live = start_recording(&lighttpd, &["-D", "-f", conf_arg]);
        live.wait_for_port(port);
        let started = Instant::now();
        let deadline = started + LOAD_TIMEOUT;
        // Three rounds of twenty GETs, each over a fresh connection, two
        // clients at a time, and a keep-alive connection alongside.
        for _ in 0..3 {
            run_clients(3, |c| {
                if c == 2 {
                    return http_keep_alive(port, &docs);
                }
                for (i, (name, body)) in docs.iter().enumerate() {
                    if i % 2 == c {
                        check_deadline(deadline, "lighttpd")?;
                        http_get_once(port, name, body)?;
                    }
                }
                Ok(())
            });
        }
        let load = started.elapsed();
        // lighttpd exits 1 when SIGTERM finds a connection still open, and
        // after a `Connection: close` response it lingers until it reads
        // the client's close: wait until it holds only its listening socket.
        let sockets = live.wait_for_sockets(1, Duration::from_secs(10));
        assert_eq!(
            sockets,
            Some(1),
            "lighttpd should have closed every client connection"
        );
        let rec = live.stop(libc::SIGTERM);
        let json = check_stopped_by_sigterm(&rec, true);
        let ctx = rec.describe();
        let served: u64 = ["sendfile", "write", "writev", "sendmsg", "sendto"]
            .iter()
            .map(|n| syscall_count(&json, n))
            .sum();
        assert!(
            served >= 3 * 30,
            "{ctx}: the responses were sent: {}",
            json["syscalls"]
        );

        let replay_started = Instant::now();
        assert_server_replay(
            &rec,
            &format!("lighttpd-round{round}"),
            &format!("round {round}: lighttpd replay"),
        );
        eprintln!(
            "lighttpd round {round}: load {:.1} s, replay {:.1} s",
            load.as_secs_f64(),
            replay_started.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------
// nginx: a master process and two workers
// ---------------------------------------------------------------------

/// The twenty documents under `dir`/htdocs and an nginx.conf for a master
/// with two worker processes (the master passes each worker the others'
/// channel descriptors with SCM_RIGHTS), logging critical errors to stderr.
/// Not ordinary errors: each error line carries the connection's serial
/// number, which the workers take from one atomic counter in memory they
/// share, a race between processes that no syscall or lock orders (about
/// one replay in ten numbered a 404's line one off: README, "Not supported
/// yet"). Every byte sent to the clients is still compared.
fn nginx_site(dir: &Path, port: u16) -> (Vec<(String, Vec<u8>)>, std::path::PathBuf) {
    let (docs, _) = lighttpd_site(dir, port);
    let tmp = dir.join("tmp");
    fs::create_dir(&tmp).expect("create nginx's temp directory");
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        // Workers would otherwise switch to nobody, who cannot read the
        // private temporary docroot.
        "user root;"
    } else {
        ""
    };
    let conf = dir.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "{user}\ndaemon off;\nmaster_process on;\nworker_processes 2;\n\
             error_log stderr crit;\npid {pid};\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  \
             types {{ text/plain txt; text/html html; application/octet-stream bin; }}\n  \
             client_body_temp_path {t}/cb; proxy_temp_path {t}/px; \
             fastcgi_temp_path {t}/fc; uwsgi_temp_path {t}/uw; scgi_temp_path {t}/sc;\n  \
             server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            t = tmp.display(),
            root = dir.join("htdocs").display(),
        ),
    )
    .expect("write nginx.conf");
    (docs, conf)
}

#[test]
fn nginx_with_two_workers_replays_static_file_load() {
    let nginx = require_installed("nginx");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let site = TempDir::new().expect("temporary directory");
        let port = free_port();
        let (docs, conf) = nginx_site(site.path(), port);
        let conf_arg = conf.to_str().expect("UTF-8 temp path");
        let prefix = site.path().to_str().expect("UTF-8 temp path");
        let mut live = start_recording(&nginx, &["-p", prefix, "-c", conf_arg]);
        live.wait_for_port(port);
        let started = Instant::now();
        let deadline = started + LOAD_TIMEOUT;
        for _ in 0..2 {
            run_clients(3, |c| {
                if c == 2 {
                    return http_keep_alive(port, &docs);
                }
                for (i, (name, body)) in docs.iter().enumerate() {
                    if i % 2 == c {
                        check_deadline(deadline, "nginx")?;
                        http_get_once(port, name, body)?;
                    }
                }
                Ok(())
            });
        }
        let load = started.elapsed();
        let rec = live.stop(libc::SIGTERM);
        let json = check_stopped_by_sigterm(&rec, true);
        let ctx = rec.describe();
        assert!(
            process_count(&json) >= 3,
            "{ctx}: the master and its two workers: {}",
            json["threads"]
        );
        assert!(
            syscall_count(&json, "recvmsg") >= 1,
            "{ctx}: a worker received a channel from the master: {}",
            json["syscalls"]
        );
        let replay_started = Instant::now();
        assert_server_replay(
            &rec,
            &format!("nginx-round{round}"),
            &format!("round {round}: nginx replay"),
        );
        eprintln!(
            "nginx round {round}: load {:.1} s, replay {:.1} s",
            load.as_secs_f64(),
            replay_started.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------
// epoll_server (tests/programs/epoll_server.c)
// ---------------------------------------------------------------------

/// A connection to epoll_server that checks every reply.
struct LineClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    what: String,
    /// Commands sent (every line is one command to the server).
    commands: u64,
    last_stats: u64,
    last_time: f64,
}

impl LineClient {
    fn new(port: u16, what: String) -> Result<Self, String> {
        let stream = connect(port);
        Ok(LineClient {
            reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
            writer: stream,
            what,
            commands: 0,
            last_stats: 0,
            last_time: 0.0,
        })
    }

    /// Sends several command lines in one write (pipelined).
    fn send(&mut self, lines: &[String]) -> Result<(), String> {
        let mut batch = String::new();
        for l in lines {
            batch.push_str(l);
            batch.push('\n');
        }
        self.writer
            .write_all(batch.as_bytes())
            .map_err(|e| format!("{}: sending {lines:?}: {e}", self.what))?;
        self.commands += lines.len() as u64;
        Ok(())
    }

    fn reply(&mut self, cmd: &str) -> Result<String, String> {
        let what = format!("{}: reply to {cmd:?}", self.what);
        let line = read_line(&mut self.reader, &what)?;
        line.strip_suffix('\n')
            .map(str::to_string)
            .ok_or_else(|| format!("{what}: unterminated reply {line:?}"))
    }

    /// Reads and checks the reply to `cmd`.
    fn check(&mut self, cmd: &str) -> Result<(), String> {
        let reply = self.reply(cmd)?;
        let bad = |why: &str| Err(format!("{}: {cmd:?} -> {reply:?}: {why}", self.what));
        if let Some(text) = cmd.strip_prefix("ECHO ") {
            if reply != text {
                return bad("not echoed");
            }
        } else if cmd == "TIME" {
            let Some(t) = reply.strip_prefix("TIME ") else {
                return bad("expected TIME sec.nsec");
            };
            let (sec, nsec) = t.split_once('.').unwrap_or(("", ""));
            if nsec.len() != 9
                || !sec.bytes().all(|b| b.is_ascii_digit())
                || !nsec.bytes().all(|b| b.is_ascii_digit())
            {
                return bad("expected TIME sec.nsec");
            }
            let t: f64 = t.parse().map_err(|e| format!("{}: {e}", self.what))?;
            if t < self.last_time {
                return bad("the monotonic clock went backwards");
            }
            self.last_time = t;
        } else if cmd == "RAND" {
            let hex = reply.strip_prefix("RAND ").unwrap_or("");
            if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("expected 8 random bytes in hex");
            }
        } else if cmd == "STATS" {
            let n: u64 = match reply.strip_prefix("STATS ").map(str::parse) {
                Some(Ok(n)) => n,
                _ => return bad("expected STATS n"),
            };
            if n <= self.last_stats {
                return bad("the command counter did not grow");
            }
            self.last_stats = n;
        } else if cmd == "QUIT" {
            if reply != "BYE" {
                return bad("expected BYE");
            }
        } else if reply != "ERR unknown command" {
            return bad("expected ERR unknown command");
        }
        Ok(())
    }

    /// Sends `cmds` in one write and checks every reply, in order.
    fn exchange(&mut self, cmds: &[String]) -> Result<(), String> {
        self.send(cmds)?;
        for c in cmds {
            self.check(c)?;
        }
        Ok(())
    }

    fn expect_closed(&mut self) -> Result<(), String> {
        let what = format!("{}: after the last reply", self.what);
        expect_eof(&mut self.reader, &what)
    }
}

const EPOLL_CLIENTS: usize = 4;
const EPOLL_ROUNDS: usize = 40;

/// One client: EPOLL_ROUNDS rounds of commands, one at a time or
/// pipelined, then QUIT. Returns the number of commands sent.
fn epoll_client(port: u16, client: usize) -> Result<u64, String> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let mut c = LineClient::new(port, format!("epoll client {client}"))?;
    for round in 0..EPOLL_ROUNDS {
        check_deadline(deadline, "epoll_server")?;
        let echo = format!(
            "ECHO client {client} round {round} {}",
            "z".repeat(round % 7)
        );
        match round % 4 {
            0 => {
                for cmd in [echo, "TIME".into(), "RAND".into(), "STATS".into()] {
                    c.exchange(&[cmd])?;
                }
            }
            1 => c.exchange(&[
                echo,
                "RAND".into(),
                "TIME".into(),
                "STATS".into(),
                "NOPE".into(),
            ])?,
            2 => {
                // One command split over two writes.
                c.writer
                    .write_all(b"ECHO spl")
                    .map_err(|e| format!("epoll client {client}: {e}"))?;
                thread::sleep(Duration::from_millis(1));
                c.writer
                    .write_all(b"it\r\n")
                    .map_err(|e| format!("epoll client {client}: {e}"))?;
                c.commands += 1;
                c.check("ECHO split")?;
                c.exchange(&[echo])?;
            }
            _ => c.exchange(&[echo, "STATS".into()])?,
        }
    }
    c.exchange(&["QUIT".into()])?;
    c.expect_closed()?;
    Ok(c.commands)
}

/// A client that stops without QUIT: the server sees end-of-file.
fn epoll_client_hangs_up(port: u16) -> Result<u64, String> {
    let mut c = LineClient::new(port, "epoll client hanging up".into())?;
    c.exchange(&["ECHO bye without quit".into(), "RAND".into()])?;
    c.writer
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    c.expect_closed()?;
    Ok(c.commands)
}

/// epoll_server's summary line starting with `prefix`, as numbers.
fn summary_numbers(stdout: &str, prefix: &str) -> Vec<u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in epoll_server's output:\n{stdout}"));
    line[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("digits"))
        .collect()
}

/// Records epoll_server (3 workers; `worker_epoll`: each worker creates
/// its own epoll instance) under EPOLL_CLIENTS concurrent clients and two
/// that hang up without QUIT, stops it with SIGTERM, and replays it:
/// replies and the stdout summary byte for byte.
fn epoll_server_rounds(worker_epoll: bool, tag: &str) {
    let prog = program("epoll_server");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let port = free_port();
        let port_arg = port.to_string();
        let mut args = vec![port_arg.as_str(), "3"];
        if worker_epoll {
            args.push("worker-epoll");
        }
        let mut live = start_recording(&prog, &args);
        live.wait_for_port(port);
        let started = Instant::now();
        let sent = Mutex::new(0u64);
        run_clients(EPOLL_CLIENTS + 2, |i| {
            let n = if i < EPOLL_CLIENTS {
                epoll_client(port, i)?
            } else {
                epoll_client_hangs_up(port)?
            };
            *sent.lock().expect("counter") += n;
            Ok(())
        });
        let load = started.elapsed();
        let commands = sent.into_inner().expect("counter");
        let rec = live.stop(libc::SIGTERM);
        let json = check_stopped_by_sigterm(&rec, false);
        let ctx = rec.describe();

        let stdout = rec.stdout_str();
        assert!(
            stdout.starts_with(&format!(
                "epoll_server: listening on 127.0.0.1:{port} with 3 workers"
            )) && stdout.contains("epoll_server: stopped by SIGTERM after ")
                && stdout.ends_with("epoll_server: ticked: yes\n"),
            "{ctx}: summary on stdout:\n{stdout}"
        );
        // All client connections and the readiness probe.
        let connections = (EPOLL_CLIENTS + 2 + 1) as u64;
        let total = summary_numbers(&stdout, "epoll_server: total: ");
        assert_eq!(
            total[..3],
            [connections, connections, commands],
            "{ctx}: accepted, served and commands in the summary:\n{stdout}"
        );
        assert_eq!(
            threads(&json).len(),
            4,
            "{ctx}: the acceptor and three workers\n{}",
            json["threads"]
        );
        for name in [
            "epoll_wait",
            "accept4",
            "sendto",
            "getrandom",
            "clock_gettime",
        ] {
            assert!(
                syscall_count(&json, name) > 0,
                "{ctx}: {name} in {}",
                json["syscalls"]
            );
        }
        assert!(
            syscall_count(&json, "sendto") >= commands,
            "{ctx}: one send per reply at least: {}",
            json["syscalls"]
        );

        let replay_started = Instant::now();
        // stdout (the summary) must match byte for byte too.
        assert_server_replay(
            &rec,
            &format!("{tag}-round{round}"),
            &format!("round {round}: {tag} replay"),
        );
        eprintln!(
            "{tag} round {round}: load {:.1} s ({commands} commands), replay {:.1} s",
            load.as_secs_f64(),
            replay_started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn epoll_server_replays_concurrent_clients() {
    epoll_server_rounds(false, "epoll_server");
}

/// The same with every worker creating its epoll instance as it starts,
/// while the acceptor goes on creating descriptors: which thread gets
/// which descriptor number is up to the scheduler, and replay must give
/// each the number it had.
#[test]
fn epoll_server_with_worker_created_epoll_replays() {
    epoll_server_rounds(true, "epoll_server_worker_epoll");
}

// ---------------------------------------------------------------------
// Client bytes are really compared
// ---------------------------------------------------------------------

/// Rewrites `trace` into `out` with one byte of the first reply sent to a
/// client (sendto or sendmsg; epoll_server hands descriptors to its
/// workers with write() on pipes and answers clients with send()) flipped.
/// Returns the original bytes of that reply.
fn tamper_first_client_reply(trace: &Path, out: &Path) -> Vec<u8> {
    let outcome = TraceReader::open(trace)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", trace.display()))
        .read_all();
    assert!(
        outcome.is_complete(),
        "{}: trace damaged: {:?}",
        trace.display(),
        outcome.damage
    );
    let header = outcome.header;
    let mut records = outcome.records;

    // Re-encoding the records unchanged gives the same file: the rewrite
    // itself changes nothing but the flipped byte.
    let encode = |records: &[TraceRecord]| -> Vec<u8> {
        let mut w = TraceWriter::new(Vec::new(), &header).expect("trace header");
        for r in records {
            w.write(r).expect("encode a record");
        }
        w.into_inner()
    };
    let original = fs::read(trace).expect("read the trace");
    assert!(
        encode(&records) == original,
        "re-encoding {} unchanged must reproduce it byte for byte",
        trace.display()
    );

    let reply = records
        .iter_mut()
        .find_map(|r| match r {
            TraceRecord::Syscall(s)
                if (s.nr == libc::SYS_sendto as u32 || s.nr == libc::SYS_sendmsg as u32)
                    && !matches!(s.extra, SyscallExtra::StdStream(_))
                    && s.ret > 0
                    && s.inputs.first().is_some_and(|i| !i.is_empty()) =>
            {
                Some(&mut s.inputs[0])
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}: no reply to a client in the trace", trace.display()));
    let before = reply.clone();
    reply[0] ^= 0x20;
    fs::write(out, encode(&records)).expect("write the tampered trace");
    before
}

#[test]
fn tampered_client_reply_is_a_divergence() {
    let prog = program("epoll_server");
    let _serial = one_at_a_time();
    for round in 1..=repeat() {
        let port = free_port();
        let port_arg = port.to_string();
        let mut live = start_recording(&prog, &[&port_arg, "2"]);
        live.wait_for_port(port);
        // Let the worker close the readiness probe's connection before the
        // client connects (whose descriptor number depends on it): this
        // test is about the reply, epoll_server_replays_concurrent_clients
        // about the rest.
        thread::sleep(Duration::from_millis(100));
        run_clients(1, |_| {
            let mut c = LineClient::new(port, "tamper client".into())?;
            c.exchange(&["ECHO tamper me".into(), "STATS".into(), "QUIT".into()])?;
            c.expect_closed()
        });
        let rec = live.stop(libc::SIGTERM);
        rec.assert_exit_code(0);
        assert_server_replay(
            &rec,
            &format!("epoll_server_tamper-round{round}"),
            &format!("round {round}: untampered replay"),
        );

        let tampered = rec.dir.path().join("tampered.rrc");
        let original = tamper_first_client_reply(&rec.trace, &tampered);
        assert_eq!(
            original, b"tamper me\n",
            "the first reply sent to a client is the echo"
        );
        let out = replay(&tampered, &[]);
        let line = assert_divergence(
            &out,
            &format!(
                "round {round}: replay of a trace whose recorded reply to the client was \
                 changed in one byte (proof that the bytes sent to clients are compared)"
            ),
        );
        eprintln!("tampered reply, round {round}: {line}");
    }
}
