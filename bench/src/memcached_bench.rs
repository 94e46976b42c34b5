//! `memcached`: `memcached -t 4` on 127.0.0.1 driven by 4 client threads
//! in this process, each doing K set+get pairs on one persistent
//! connection, natively and under rrc-record; then the recorded trace is
//! replayed with `--no-intervals` (no clients needed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::one_shot::remove_trace;
use crate::report::{BenchmarkResult, Metric, Samples, Status};
use crate::rrc_tools::{find_on_path, ReplayFailures};
use crate::server_runs::{push_server_figures, replay_server, serve_load, ServerMode};
use crate::BenchContext;

pub const NAME: &str = "memcached";

const CLIENTS: usize = 4;
const SERVER_THREADS: &str = "4";
const VALUE_BYTES: usize = 64;
/// Longest a client waits for one reply.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the whole load may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

const REPLAY_FLAGS: [&str; 1] = ["--no-intervals"];

/// Set+get pairs per client: about 1 s natively on the 2-core VM.
fn pairs_per_client(quick: bool) -> usize {
    if quick {
        200
    } else {
        8_000
    }
}

fn memcached_args(port: u16) -> Vec<String> {
    let mut args = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // memcached refuses to run as root without -u.
        args.extend(["-u".to_string(), "root".to_string()]);
    }
    let port = port.to_string();
    args.extend(
        [
            "-t",
            SERVER_THREADS,
            "-p",
            &port,
            "-U",
            "0",
            "-l",
            "127.0.0.1",
        ]
        .map(str::to_string),
    );
    args
}

fn read_reply_line(reader: &mut impl BufRead, line: &mut String, what: &str) -> Result<()> {
    line.clear();
    let read = reader
        .read_line(line)
        .with_context(|| format!("{what}: reading the reply"))?;
    if read == 0 {
        bail!("{what}: the server closed the connection");
    }
    Ok(())
}

/// One client: `pairs` set+get pairs on one connection, every reply checked.
fn memcached_client(port: u16, client: usize, pairs: usize, deadline: Instant) -> Result<()> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
    stream.set_nodelay(true).context("set_nodelay")?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .context("set_read_timeout")?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .context("set_write_timeout")?;
    let mut reader = BufReader::new(stream.try_clone().context("cannot clone the socket")?);
    let mut writer = stream;
    let mut line = String::new();
    let mut value_and_crlf = vec![0u8; VALUE_BYTES + 2];
    for i in 0..pairs {
        if Instant::now() > deadline {
            bail!(
                "the load did not finish within {} s",
                LOAD_TIMEOUT.as_secs()
            );
        }
        let key = format!("bench:{client}:{i}");
        let value = format!("{:x<width$}", format!("{client}-{i}-"), width = VALUE_BYTES);

        let what = format!("set {key}");
        let command = format!("set {key} 0 0 {VALUE_BYTES}\r\n{value}\r\n");
        writer
            .write_all(command.as_bytes())
            .with_context(|| format!("{what}: sending"))?;
        read_reply_line(&mut reader, &mut line, &what)?;
        if line != "STORED\r\n" {
            bail!("{what}: expected STORED, got {line:?}");
        }

        let what = format!("get {key}");
        writer
            .write_all(format!("get {key}\r\n").as_bytes())
            .with_context(|| format!("{what}: sending"))?;
        read_reply_line(&mut reader, &mut line, &what)?;
        let expected_header = format!("VALUE {key} 0 {VALUE_BYTES}\r\n");
        if line != expected_header {
            bail!("{what}: expected {expected_header:?}, got {line:?}");
        }
        reader
            .read_exact(&mut value_and_crlf)
            .with_context(|| format!("{what}: reading the value"))?;
        if &value_and_crlf[..VALUE_BYTES] != value.as_bytes()
            || &value_and_crlf[VALUE_BYTES..] != b"\r\n"
        {
            bail!(
                "{what}: wrong value {:?}",
                String::from_utf8_lossy(&value_and_crlf)
            );
        }
        read_reply_line(&mut reader, &mut line, &what)?;
        if line != "END\r\n" {
            bail!("{what}: expected END, got {line:?}");
        }
    }
    Ok(())
}

/// Runs the clients together and returns how long the load took, from
/// their common start to the last one's end.
fn drive_load(port: u16, pairs: usize) -> Result<Duration> {
    let start_together = Barrier::new(CLIENTS + 1);
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let (started, outcomes) = thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let start_together = &start_together;
                scope.spawn(move || {
                    start_together.wait();
                    memcached_client(port, client, pairs, deadline)
                })
            })
            .collect();
        start_together.wait();
        let started = Instant::now();
        let outcomes: Vec<Result<()>> = handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow!("the client thread panicked")))
            })
            .collect();
        (started, outcomes)
    });
    let elapsed = started.elapsed();
    let errors: Vec<String> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(client, outcome)| outcome.err().map(|e| format!("client {client}: {e:#}")))
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(elapsed)
}

pub fn run(context: &BenchContext) -> Result<BenchmarkResult> {
    let Some(memcached) = find_on_path("memcached") else {
        return Ok(BenchmarkResult::not_ok(
            NAME,
            Status::Skipped,
            "memcached not installed (run scripts/install-deps.sh)".to_string(),
        ));
    };
    let pairs = pairs_per_client(context.quick);
    let requests = CLIENTS * pairs * 2;
    let work_dir = context.scratch_dir(NAME)?;
    let dir = work_dir.path();

    let mut throughput = Samples::default();
    let mut server_wall = Samples::default();
    let mut trace_bytes_per_request = Vec::new();
    let mut replay_failures = ReplayFailures::default();
    for repeat in 0..context.repeats {
        context.progress(NAME, &format!("run {}/{}", repeat + 1, context.repeats));
        let native = serve_load(
            context,
            dir,
            ServerMode::Native,
            &memcached,
            memcached_args,
            &format!("native memcached {repeat}"),
            |port| drive_load(port, pairs),
        )?;
        throughput
            .native
            .push(requests as f64 / native.load.as_secs_f64());
        server_wall.native.push(native.server_wall.as_secs_f64());

        let trace = dir.join(format!("memcached-{repeat}.trace"));
        let recorded = serve_load(
            context,
            dir,
            ServerMode::Recorded { trace: &trace },
            &memcached,
            memcached_args,
            &format!("recorded memcached {repeat}"),
            |port| drive_load(port, pairs),
        )?;
        throughput
            .recorded
            .push(requests as f64 / recorded.load.as_secs_f64());
        server_wall
            .recorded
            .push(recorded.server_wall.as_secs_f64());
        if let Some(bytes) = recorded.trace_bytes {
            trace_bytes_per_request.push(bytes as f64 / requests as f64);
        }

        let replay_wall = replay_failures.note(replay_server(
            context,
            dir,
            &REPLAY_FLAGS,
            &trace,
            &format!("replay memcached {repeat}"),
        ))?;
        if let Some(wall) = replay_wall {
            server_wall.replayed.push(wall.as_secs_f64());
        }
        remove_trace(&trace)?;
    }

    let mut result = BenchmarkResult::new(NAME);
    result.metrics.push(Metric::from_samples(
        "set+get throughput (4 clients)",
        "ops/s",
        true,
        throughput,
        None,
    ));
    push_server_figures(
        &mut result,
        server_wall,
        trace_bytes_per_request,
        &REPLAY_FLAGS,
    );
    result.parameter("clients", CLIENTS as u64);
    result.parameter("pairs_per_client", pairs as u64);
    result.parameter("requests", requests as u64);
    result.parameter("value_bytes", VALUE_BYTES as u64);
    result.parameter("server_threads", SERVER_THREADS);
    result.parameter("replay_flags", REPLAY_FLAGS.join(" "));
    replay_failures.mark(&mut result, context.repeats);
    Ok(result)
}
