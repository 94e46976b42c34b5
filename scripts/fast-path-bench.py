#!/usr/bin/env python3
"""Servers under their real load generators: native, recorded with the fast
path on, recorded with it off (RRC_FAST_PATH=0), in interleaved rounds.

    scripts/fast-path-bench.py [--rounds N] [--only memcached|redis] [--bin DIR]
                               [--no-off] [--no-replay] [--compare DIR]

memcached -t 4 under `memcaslap -t 4s -T 2 -c 8` (Debian's libmemcached-tools)
and redis-server under `redis-benchmark -t set,get -n 50000 -c 8`. For each
round and mode it prints the throughput and its ratio to the native run of
the same round; at the end, medians and the worst round. For recordings it
also reports trace bytes and buffered/trapped calls per request (from
rrc-inspect --json) and replays the trace with --no-intervals, timing it
against the recording's own duration. Every replay must be faithful (exit 0);
a failed replay is reported as such (--no-replay skips the replays and
--no-off the fast-path-off runs, for quicker comparisons; --compare DIR
adds recordings with the fast path on by the rrc in DIR, e.g. a build
before a change, in the same rounds). Ratios, not absolute figures, are the
result: run it on a quiet machine.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def start(mode, argv, bindir, trace):
    env = dict(os.environ)
    if mode == "native":
        cmd = argv
    else:
        env["RRC_FAST_PATH"] = "0" if mode == "off" else "1"
        cmd = [os.path.join(bindir, "rrc-record"), "-o", trace, "--"] + argv
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memcached_load(port):
    out = subprocess.run(
        ["memcaslap", "-s", f"127.0.0.1:{port}", "-t", "4s", "-T", "2", "-c", "8"],
        capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"Run time: [\d.]+s Ops: (\d+) TPS: (\d+)", out)
    if not m:
        raise RuntimeError("memcaslap printed no TPS line:\n" + out[-2000:])
    return float(m.group(2)), int(m.group(1))


def redis_load(port):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", "50000", "-c", "8", "-q"],
        capture_output=True, text=True, timeout=600).stdout.replace("\r", "\n")
    rates = [float(x) for x in re.findall(r"^(?:SET|GET): ([\d.]+) requests per second", out, re.M)]
    if len(rates) != 2:
        raise RuntimeError("redis-benchmark printed no rates:\n" + out[-2000:])
    return statistics.mean(rates), 100000


SERVERS = {
    "memcached": (lambda port: ["memcached", "-t", "4", "-p", str(port), "-U", "0", "-l",
                                "127.0.0.1"] + (["-u", "root"] if os.geteuid() == 0 else []),
                  memcached_load, "ops/s"),
    "redis": (lambda port: ["redis-server", "--port", str(port), "--save", "",
                            "--appendonly", "no"],
              redis_load, "req/s"),
}


# Extra rrc-replay flags (--replay-flag), e.g. --in-process.
REPLAY_FLAGS = []


def trace_facts(bindir, trace, requests, replay=True):
    js = json.loads(subprocess.run([os.path.join(bindir, "rrc-inspect"), trace, "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    calls = sum(js["syscalls"].values())
    buffered = js.get("buffered_syscalls", 0)
    replay_s, ok, first = 0.0, True, ""
    if replay:
        t0 = time.time()
        rep = subprocess.run([os.path.join(bindir, "rrc-replay"), "--no-intervals"]
                             + REPLAY_FLAGS + [trace],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             timeout=1800)
        replay_s = time.time() - t0
        ok = rep.returncode == 0
        first = next((l for l in rep.stderr.splitlines() if l.startswith("divergence:")), "")
        first = first or rep.stderr.strip()[-200:]
    return {
        "bytes_per_req": js["trace_bytes"] / requests,
        "buffered_per_req": buffered / requests,
        "trapped_per_req": (calls - buffered) / requests,
        "record_s": (js.get("duration_ns") or 0) / 1e9,
        "replay_s": replay_s,
        "replay_ok": ok,
        "replay_error": first,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replay-flag", action="append", default=[],
                    help="an extra rrc-replay flag for the replays (e.g. --in-process); repeatable")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=sorted(SERVERS))
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release"))
    ap.add_argument("--no-off", action="store_true", help="skip the fast-path-off runs")
    ap.add_argument("--no-replay", action="store_true", help="skip the replays")
    ap.add_argument("--compare", help="also record with the rrc in this directory")
    args = ap.parse_args()
    REPLAY_FLAGS.extend(args.replay_flag)
    modes = ("fast",) if args.no_off else ("fast", "off")
    if args.compare:
        modes += ("compare",)
    bindirs = {m: os.path.abspath(args.bin) for m in modes}
    if args.compare:
        bindirs["compare"] = os.path.abspath(args.compare)
    bindir = os.path.abspath(args.bin)
    for tool in ("memcaslap", "redis-benchmark", "memcached", "redis-server"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"fast-path-bench: {tool} is missing (scripts/install-deps.sh installs it)")
    names = [args.only] if args.only else sorted(SERVERS)
    tmp = tempfile.mkdtemp(prefix="rrc-fpbench-")
    for name in names:
        argv_of, load, unit = SERVERS[name]
        ratios = {m: [] for m in modes}
        facts = {m: [] for m in modes}
        print(f"== {name} ({unit}), {args.rounds} rounds: native, fast path on, fast path off")
        for r in range(1, args.rounds + 1):
            row = {}
            for mode in ("native",) + modes:
                port = free_port()
                trace = os.path.join(tmp, f"{name}-{mode}-{r}.rrc")
                proc = start(mode, argv_of(port), bindirs.get(mode, bindir), trace)
                try:
                    wait_port(port, proc)
                    rate, requests = load(port)
                finally:
                    stop(proc)
                row[mode] = rate
                if mode != "native":
                    facts[mode].append(trace_facts(bindirs[mode], trace, requests,
                                                   replay=not args.no_replay))
                    os.unlink(trace)
            line = f"round {r}: native {row['native']:.0f}"
            for mode in modes:
                ratio = row[mode] / row["native"]
                ratios[mode].append(ratio)
                f = facts[mode][-1]
                ok = "faithful" if f["replay_ok"] else "REPLAY FAILED: " + f["replay_error"]
                ok = ok if not args.no_replay else "not replayed"
                line += (f" | {mode} {row[mode]:.0f} ({ratio:.2f}x), {f['bytes_per_req']:.0f} B/req,"
                         f" {f['buffered_per_req']:.2f} buffered + {f['trapped_per_req']:.2f} trapped/req,"
                         f" replay {f['replay_s']:.1f}s vs record {f['record_s']:.1f}s, {ok}")
            print(line, flush=True)
        for mode in modes:
            rs = ratios[mode]
            fs = facts[mode]
            speed = [f["record_s"] / f["replay_s"] for f in fs if f["replay_s"] > 0] or [0.0]
            replays = ("not replayed" if args.no_replay else
                       f"replay --no-intervals {statistics.median(speed):.2f}x the recording's speed;"
                       f" {sum(f['replay_ok'] for f in fs)}/{len(fs)} replays faithful")
            print(f"{name} {mode}: median {statistics.median(rs):.2f}x native, worst {min(rs):.2f}x;"
                  f" {replays};"
                  f" {statistics.median(f['bytes_per_req'] for f in fs):.0f} trace bytes/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
