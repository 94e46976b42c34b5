#!/usr/bin/env python3
"""Hot calls from 4 threads, natively and recorded (issue 13's sysmix).

    scripts/sysmix-bench.py [--rounds N] [--bin DIR] [--calls ROUNDS]

Compiles bench/programs/sysmix.c (4 threads x ROUNDS rounds, default 5000,
of clock_gettime, a 64-byte write to /dev/null, getppid and a mutex
lock/unlock) and, in interleaved rounds, times it natively, recorded
(rrc-record, the fast path on) and recorded with 0 rounds (rrc-record's
fixed cost: spawn, exec, the loader's trapped calls, the shim's set-up, the
writer, the trace's end), plus /bin/true recorded. Wall time runs from
spawning to the exit being reaped. Prints every round, then medians and the
worst round of recorded / native. The first recording is replayed once to
check it (exit 0 and the same output).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"sysmix-bench: {cmd} failed ({p.returncode}): {p.stderr.decode()[-500:]}")
    return dt, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release"))
    args = ap.parse_args()
    bindir = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="rrc-sysmix-")
    prog = os.path.join(tmp, "sysmix")
    subprocess.run(["gcc", "-O2", "-pthread", "-o", prog,
                    os.path.join(HERE, "..", "bench", "programs", "sysmix.c")], check=True)
    rec = os.path.join(bindir, "rrc-record")
    trace = os.path.join(tmp, "t.rrc")
    rows = {"native": [], "recorded": [], "fixed": [], "true": []}
    for r in range(args.rounds):
        rows["native"].append(timed([prog, str(args.calls)])[0])
        dt, out = timed([rec, "-o", trace, "--", prog, str(args.calls)])
        rows["recorded"].append(dt)
        if r == 0:
            rep = subprocess.run([os.path.join(bindir, "rrc-replay"), trace],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ok = rep.returncode == 0 and rep.stdout == out
            print(f"replay of the first recording: {'faithful' if ok else 'FAILED'}"
                  f" {rep.stderr.decode()[-300:] if not ok else ''}", flush=True)
            size = os.path.getsize(trace)
        rows["fixed"].append(timed([rec, "-o", trace, "--", prog, "0"])[0])
        rows["true"].append(timed([rec, "-o", trace, "--", "/bin/true"])[0])
        print(f"round {r + 1}: native {rows['native'][-1] * 1e3:.1f} ms, recorded"
              f" {rows['recorded'][-1] * 1e3:.1f} ms"
              f" ({rows['recorded'][-1] / rows['native'][-1]:.1f}x), 0 rounds recorded"
              f" {rows['fixed'][-1] * 1e3:.1f} ms, /bin/true recorded"
              f" {rows['true'][-1] * 1e3:.1f} ms", flush=True)
    ratios = [rc / n for rc, n in zip(rows["recorded"], rows["native"])]
    med = {k: statistics.median(v) * 1e3 for k, v in rows.items()}
    print(f"sysmix: native {med['native']:.1f} ms, recorded {med['recorded']:.1f} ms;"
          f" recorded/native median {statistics.median(ratios):.1f}x, worst {max(ratios):.1f}x;"
          f" fixed cost (0 rounds) {med['fixed']:.1f} ms, /bin/true {med['true']:.1f} ms;"
          f" trace {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
