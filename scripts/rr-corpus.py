#!/usr/bin/env python3
"""rr's test programs as an external compatibility corpus for rrc.

Called by scripts/rr-corpus.sh (which finds the rrc binaries); see there.

Stages, each cached in OUT_DIR so that an interrupted run resumes:
  1. build   src/test/*.c -> OUT_DIR/bin/NAME      (log in OUT_DIR/build/NAME.log)
  2. native  run each binary (stdin /dev/null, fresh cwd, timeout)
                                                -> OUT_DIR/native/NAME.json
  3. rrc     record + replay, --runs times      -> OUT_DIR/results/NAME.json
             (files of failed runs kept in OUT_DIR/runs/NAME/N/)
  4. report  OUT_DIR/results.tsv, OUT_DIR/summary.md
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

NATIVE_TIMEOUT = 10
# Native runs made again when a recording hangs (see `native_hangs`).
NATIVE_RECHECKS = 3
RECORD_TIMEOUT = 30
REPLAY_TIMEOUT = 60
STALL_TIMEOUT = 10

# rr builds its tests with -DMQUEUE_H / -DFANOTIFY_H where the headers exist
DEFAULT_CFLAGS = ("-std=gnu11 -O2 -g -pthread -DDEBUG -UNDEBUG -DMQUEUE_H=1 "
                  "-DFANOTIFY_H=1 -w")
LIBS = ["-lrt", "-ldl", "-lm"]

print_lock = threading.Lock()


def log(msg):
    with print_lock:
        print(msg, flush=True)


# ---------------------------------------------------------------- processes

# Each run goes through this wrapper: it becomes a child subreaper, so the
# processes a program leaves behind (daemons, orphaned children, even those
# that made their own session) are reparented to it and not to init; when the
# program ends (or on SIGTERM, at a timeout) it kills those by pid and reaps
# them.  It writes the program's wait status to argv[1].
WRAPPER = r"""
import ctypes, os, signal, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
status_file, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.setpgid(0, 0)  # its own group: kill(0, sig) must not hit us
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
me = os.getpid()

def children():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open("/proc/%s/stat" % d).read()
                if int(st[st.rindex(")") + 2:].split()[1]) == me:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out

def end_all():
    for _ in range(200):
        kids = children()
        if not kids:
            break
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.02)

def on_term(signum, frame):
    end_all()
    os._exit(124)

signal.signal(signal.SIGTERM, on_term)
while True:
    try:
        p, st = os.waitpid(-1, 0)
    except ChildProcessError:
        os._exit(125)
    except InterruptedError:
        continue
    if p == pid:
        break
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(status_file, "w") as f:
    f.write("signal %d" % os.WTERMSIG(st) if os.WIFSIGNALED(st)
            else "exit %d" % os.WEXITSTATUS(st))
end_all()
"""


def run(argv, cwd, out_path, err_path, timeout, env=None):
    """Runs argv (under WRAPPER) in its own session with stdin /dev/null;
    stdout and stderr to files.  Returns (exit code, -signal, or None on
    timeout; seconds).  What the program leaves behind is killed, by pid, by
    the wrapper; at a timeout the wrapper is told to end it all, and then its
    process group is killed."""
    start = time.monotonic()
    status_file = out_path + ".status"
    try:
        os.unlink(status_file)
    except OSError:
        pass
    with open(out_path, "wb") as out, open(err_path, "wb") as err, \
            open(os.devnull, "rb") as devnull:
        p = subprocess.Popen([sys.executable, "-c", WRAPPER, status_file] + argv,
                             cwd=cwd, stdin=devnull, stdout=out, stderr=err,
                             env=env, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.returncode is None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
    st = text(read(status_file)).split()
    try:
        os.unlink(status_file)
    except OSError:
        pass
    if len(st) != 2:
        return None, time.monotonic() - start
    rc = int(st[1]) if st[0] == "exit" else -int(st[1])
    return rc, time.monotonic() - start


def read(path, limit=None):
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit)
        return data
    except OSError:
        return b""


def text(data):
    return data.decode("utf-8", "replace")


def has_token(token, data):
    """Whether data (bytes) has a line matching token, a grep basic regex as
    rr's test scripts use it (only '.' is special in rr's tokens)."""
    if not token:
        return True
    pattern = re.escape(token).replace(r"\.", ".")
    return re.search(pattern.encode(), data) is not None


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- rr's .run files

def analyse_run_file(name, rr):
    """What rr's NAME.run says: (token, skip_reason).  token is the string
    the test must print (None if the program has no .run file: then
    EXIT-SUCCESS if the source prints it).  skip_reason is set when the
    program needs arguments, another program, or interaction while it runs."""
    path = os.path.join(rr, "src", "test", name + ".run")
    if not os.path.exists(path):
        return None, None
    token = None
    skip = None
    self_names = {"$TESTNAME", name, name + "$bitness", "$TESTNAME$bitness"}
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("source "):
            continue
        s_noenv = re.sub(r"^(\w+=\S*\s+)+", "", s)
        try:
            words = shlex.split(s_noenv, comments=True)
        except ValueError:
            words = s_noenv.split()
        if not words:
            continue
        w0 = words[0].lstrip("(")
        if w0 in ("compare_test",):
            if len(words) > 1:
                token = words[1]
            if len(words) > 3 and words[3] not in self_names:
                skip = skip or "runs another program (%s)" % words[3]
        elif w0 in ("check", "check_record") and len(words) > 1:
            token = token or words[1]
        elif w0.startswith("token=") and len(w0) > 6:
            token = token or w0[6:]
        elif w0 == "record_async_signal":
            skip = skip or "needs an external signal while it runs"
        elif w0 in ("record", "just_record"):
            rest = [w for w in words[2:] if w not in (")", "&", "&&", "||")]
            rest = rest[:next((i for i, w in enumerate(rest)
                               if w in (">&", ">", "2>", "1>", ";", "||",
                                        "&&") or w.startswith(">")),
                              len(rest))]
            prog = words[1].rstrip(")") if len(words) > 1 else ""
            if s.rstrip().endswith("&"):
                skip = skip or "needs interaction while it runs"
            elif prog not in self_names and not prog.startswith("$exe") \
                    and not prog.startswith("./$exe"):
                skip = skip or "recorded as another program's child (%s)" % prog
            elif rest:
                skip = skip or "needs arguments (%s)" % " ".join(rest)
        if re.search(r"\bkill\b|\bpidof\b", s):
            skip = skip or "needs interaction while it runs"
        if re.search(r"\btouch\b|\bmkdir\b|\bdd\b|\$\{?OBJDIR\}?/bin", s):
            skip = skip or "needs setup in its directory"
    return token, skip


# ---------------------------------------------------------------- build

def generate_headers(rr, out):
    gen = os.path.join(out, "gen")
    os.makedirs(gen, exist_ok=True)
    script = os.path.join(rr, "src", "generate_syscalls.py")
    if os.path.exists(script):
        for base in ("SyscallEnumsForTestsX64", "SyscallEnumsForTestsX86",
                     "SyscallEnumsForTestsGeneric"):
            target = os.path.join(gen, base + ".generated")
            if not os.path.exists(target):
                subprocess.run([sys.executable, script, target],
                               cwd=os.path.join(rr, "src"), check=False,
                               stdout=subprocess.DEVNULL)
    return gen


def build_one(name, rr, out, cflags, gen):
    src = os.path.join(rr, "src", "test", name + ".c")
    exe = os.path.join(out, "bin", name)
    logf = os.path.join(out, "build", name + ".log")
    argv = (["gcc"] + shlex.split(cflags) +
            ["-I" + os.path.join(rr, "src", "test"), "-I" + os.path.join(rr, "src"),
             "-I" + os.path.join(rr, "src", "preload"),
             "-I" + os.path.join(rr, "include"), "-I" + gen,
             src, "-o", exe + ".tmp"] + LIBS)
    cmdline = " ".join(shlex.quote(a) for a in argv)
    # cached: built, or failed with this very command line
    if os.path.exists(logf) and os.path.getmtime(logf) >= os.path.getmtime(src) \
            and text(read(logf, 100000)).split("\n", 1)[0] == cmdline:
        return os.path.exists(exe)
    with open(logf, "wb") as lf:
        lf.write((cmdline + "\n").encode())
        lf.flush()
        r = subprocess.run(argv, stdout=lf, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    if r.returncode == 0:
        os.replace(exe + ".tmp", exe)
        return True
    try:
        os.unlink(exe)
    except OSError:
        pass
    try:
        os.unlink(exe + ".tmp")
    except OSError:
        pass
    return False


# ---------------------------------------------------------------- native

def run_native(exe, cwd):
    """Runs `exe` in `cwd`, its output in `cwd`'s .out and .err: (exit
    status or None at the timeout, seconds). Under sh, so that a program
    signalling its parent (as rr's term_rr does to rr) does not hit this
    script."""
    return run(["/bin/sh", "-c", '"$0"; exit $?', exe], cwd,
               os.path.join(cwd, ".out"), os.path.join(cwd, ".err"),
               NATIVE_TIMEOUT)


def native_one(name, rr, out, token, expect_zero):
    path = os.path.join(out, "native", name + ".json")
    cached = load_json(path)
    if cached is not None:
        return cached
    exe = os.path.join(out, "bin", name)
    with tempfile.TemporaryDirectory(prefix="native-%s-" % name,
                                     dir=os.path.join(out, "tmp"),
                                     ignore_cleanup_errors=True) as cwd:
        rc, secs = run_native(exe, cwd)
        if rc is not None and rc > 128:
            rc = -(rc - 128)  # killed by a signal, as sh reports it
        stdout = read(os.path.join(cwd, ".out"))
    if rc is None:
        status, why = "fail", "timeout after %ds" % NATIVE_TIMEOUT
    elif not has_token(token, stdout):
        status, why = "fail", "exit %s, no %s in stdout" % (rc, token)
    elif expect_zero and rc != 0:
        status, why = "fail", "exit %s" % rc
    else:
        status, why = "pass", ""
    res = {"status": status, "why": why, "rc": rc, "secs": round(secs, 2),
           "token": token}
    write_json(path, res)
    return res


# ---------------------------------------------------------------- classification

SIGNAL_WORDS = re.compile(r"\bsignal\b|\bsig[a-z]+\b|SIG[A-Z]+", re.I)


def unsupported_warnings(err):
    """Syscalls and ioctls the recorder warned about."""
    names = []
    for m in re.finditer(r"syscall (\w+) \((\d+)\) is not supported", err):
        names.append(m.group(1))
    for m in re.finditer(r"unknown syscall (-?\d+)", err):
        names.append("syscall %s" % m.group(1))
    for m in re.finditer(r"ioctl[^\n]*?request (0x[0-9a-f]+)[^\n]*not", err):
        names.append("ioctl %s" % m.group(1))
    return sorted(set(names))


def call_name(desc):
    """`write` from `write(fd=1, count=3) ... = 3`."""
    m = re.match(r"\s*(\w+)\(", desc)
    return m.group(1) if m else desc.split(" ")[0]


def classify(r):
    """(cause, detail) for a failed run r, from rrc's own messages."""
    rec_err = r.get("rec_err", "")
    rep_err = r.get("rep_err", "")
    uses_ptrace = "ptrace" in r.get("unsupported", []) + (r.get("unknown_syscalls") or [])
    if uses_ptrace and (r["rec_rc"] is None or r.get("rec_token_missing")):
        return "program's own ptrace fails under rrc (rrc is the tracer)", "%s%s" % (
            "recording hangs (timeout); " if r["rec_rc"] is None else
            "exit %s; " % r["rec_rc"], r.get("rec_fail_line", ""))
    if r["rec_rc"] is None:
        if r.get("rec_token_seen"):
            why = ("the program's output was complete (token printed): rrc-record "
                   "waits for processes it left behind")
        elif r.get("rec_fail_line"):
            why = "the program failed under recording (%s), then no end" % r["rec_fail_line"]
        else:
            why = "the program did not finish"
        if r.get("native_hangs"):
            return "hangs natively too (the program's own race)", (
                "%s; natively %s" % (why, r["native_hangs"]))
        return "recording hangs (rrc-record timeout %ds)" % RECORD_TIMEOUT, why
    m = re.search(r"rrc-record: internal error: ([^\n]*)", rec_err)
    if m:
        return "rrc-record internal error", m.group(1)[:160]
    if r.get("rec_token_missing"):
        why = r.get("rec_fail_line") or next(
            (l for l in rec_err.splitlines()
             if l and not l.startswith("rrc-record: warning")), "")
        warned = ", ".join(r.get("unsupported", []))
        return "program fails under recording (rrc visible)", (
            "exit %s (native %s): %s%s" % (r["rec_rc"], r.get("native_rc"), why,
                                           "; unsupported: " + warned if warned else ""))[:240]
    if r["rep_rc"] is None:
        return "replay timeout (%ds)" % REPLAY_TIMEOUT, ""
    div = next((l for l in rep_err.splitlines() if l.startswith("divergence:")), "")
    if r["rep_rc"] == 0:
        return "replay exit 0 but stdout differs", r.get("stdout_diff", "")
    if div:
        body = div[len("divergence:"):].strip()
        short = body[:240]
        m = re.search(r"expected (\w+)\([^\n]*\((unsupported syscall|unsupported ioctl request (0x[0-9a-f]+)): rrc recorded only", body)
        if m:
            if m.group(3):
                return "ioctl not modelled", "ioctl %s" % m.group(3)
            name = m.group(1)
            mm = re.match(r"syscall_(\d+)$", name)
            if mm and 1000 <= int(mm.group(1)) < 2000:
                name += " (rr's private syscall)"
            return "syscall not modelled", name
        if "syscall_4294967295" in body:
            return "syscall(-1) recorded as 4294967295", short
        if "no progress" in body:
            return "stall (no progress)", short
        where = re.sub(r"^thread \d+ \(recorded tid \d+\)(, event \d+)?: ", "", body)
        exp, _, obs = where.partition(", observed ")
        exp = re.sub(r"^expected ", "", exp)
        if "changed" in body and "executable" in body and "placeholder" not in body:
            return "executable changed", short
        if re.search(r'"FAILED', obs):
            return "replayed program fails its own check", "at %s: %s" % (
                call_name(exp), short)
        if re.match(r"signal SIG\w+", exp):
            return "signal delivered at another point", short
        m = re.match(r"signal (SIG\w+)", obs)
        if m:
            return "unexpected signal in replay", short
        if "killed by signal" in obs:
            return "thread killed in replay", short
        if "placeholder" in obs and ("changed" in obs or "missing" in obs):
            return "mapped file changed or missing at replay", short
        if "recorded events have ended" in exp or "the end of the thread's events" in exp:
            return "thread runs past its recorded end", short
        if "data differs" in obs or re.search(r"argument \d+ differs", obs):
            return "syscall arguments / written data differ", "%s: %s" % (call_name(exp), short)
        if "regions" in obs:
            return "memory outputs differ", "%s: %s" % (call_name(exp), short)
        if "different results in memory" in body:
            return "memory outputs differ", "%s: %s" % (call_name(exp), short)
        if obs.startswith("it returned"):
            return "result differs", "%s: %s" % (call_name(exp), short)
        if "a different syscall" in obs:
            return "a different syscall", "%s vs %s: %s" % (call_name(exp), call_name(obs), short)
        if "the program to end" in exp or "thread ended" in obs:
            return "exit differs", short
        if "thread" in body and ("created" in body or "new thread" in body):
            return "threads/processes differ", short
        if "sync op" in body:
            return "sync order differs", short
        return "divergence: other", short
    if r["rep_rc"] < 0:
        return "rrc-replay killed by signal %d" % -r["rep_rc"], ""
    first = next((l for l in rep_err.splitlines() if l.strip()), "")
    return "rrc-replay error (exit %d)" % r["rep_rc"], first[:240]


def native_hangs(exe, d):
    """How many of NATIVE_RECHECKS more native runs time out: a program
    whose recording hangs may hang without rrc too (one lucky native pass
    let it into the corpus)."""
    hung = 0
    for i in range(NATIVE_RECHECKS):
        cwd = os.path.join(d, "native%d" % i)
        os.makedirs(cwd, exist_ok=True)
        hung += run_native(exe, cwd)[0] is None
    return hung


def rec_fail_line(data):
    line = next((l for l in text(data).splitlines() if "FAILED" in l), "")
    return re.sub(r"^FAILED at \S*/src/test/", "", line)[:160]


def first_difference(a, b):
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    lo = max(0, i - 20)
    return "at byte %d: recorded %r, replayed %r" % (
        i, a[lo:i + 30], b[lo:i + 30])


# ---------------------------------------------------------------- rrc runs

def rrc_run(name, k, out, bins, token, native_rc):
    exe = os.path.join(out, "bin", name)
    d = os.path.join(out, "runs", name, str(k))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cwd = os.path.join(d, "cwd")
    os.makedirs(cwd)
    trace = os.path.join(d, "trace")
    f = lambda n: os.path.join(d, n)
    rec_rc, rec_secs = run([os.path.join(bins, "rrc-record"), "-o", trace, "--", exe],
                           cwd, f("rec.out"), f("rec.err"), RECORD_TIMEOUT)
    r = {"run": k, "rec_rc": rec_rc, "rec_secs": round(rec_secs, 2),
         "rep_rc": None, "rep_secs": 0, "native_rc": native_rc}
    rec_out = read(f("rec.out"))
    r["rec_err"] = text(read(f("rec.err"), 20000))
    r["unsupported"] = unsupported_warnings(r["rec_err"])
    r["rec_token_seen"] = bool(token) and has_token(token, rec_out)
    if rec_rc is None and not r["rec_token_seen"]:
        hung = native_hangs(exe, d)
        if hung:
            r["native_hangs"] = "%d of %d runs hung too" % (hung, NATIVE_RECHECKS)
    if rec_rc is not None:
        tok_missing = not has_token(token, rec_out)
        if native_rc == 0 and rec_rc != 0:
            tok_missing = True
        r["rec_token_missing"] = tok_missing
        if tok_missing:
            r["rec_fail_line"] = rec_fail_line(rec_out)
        if os.path.exists(trace):
            ins = subprocess.run([os.path.join(bins, "rrc-inspect"), "--json", trace],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, timeout=60)
            try:
                info = json.loads(ins.stdout)
                r["unknown_syscalls"] = info.get("unknown_syscalls", [])
            except ValueError:
                r["unknown_syscalls"] = []
        if not tok_missing and os.path.exists(trace):
            rep_rc, rep_secs = run([os.path.join(bins, "rrc-replay"), "--stall-timeout",
                                    str(STALL_TIMEOUT), trace],
                                   cwd, f("rep.out"), f("rep.err"), REPLAY_TIMEOUT)
            r["rep_rc"], r["rep_secs"] = rep_rc, round(rep_secs, 2)
            r["rep_err"] = text(read(f("rep.err"), 20000))
            rep_out = read(f("rep.out"))
            r["stdout_equal"] = rep_out == rec_out
            if rep_rc == 0 and rep_out != rec_out:
                r["stdout_diff"] = first_difference(rec_out, rep_out)
    r["ok"] = (rec_rc is not None and not r.get("rec_token_missing")
               and r["rep_rc"] == 0 and r.get("stdout_equal", False))
    if r["ok"]:
        r["cause"], r["detail"] = "", ""
        shutil.rmtree(d, ignore_errors=True)
    else:
        r["cause"], r["detail"] = classify(r)
        # keep the run's files for a look, but not the trace's bulk if large
        try:
            if os.path.getsize(trace) > 50 << 20:
                os.unlink(trace)
        except OSError:
            pass
    return r


def rrc_one(name, out, bins, token, native_rc, runs):
    path = os.path.join(out, "results", name + ".json")
    cached = load_json(path)
    if cached is not None and len(cached.get("runs", [])) >= runs:
        return cached, True
    rs = [rrc_run(name, k, out, bins, token, native_rc) for k in range(1, runs + 1)]
    passes = sum(1 for r in rs if r["ok"])
    status = "pass" if passes == len(rs) else ("flaky" if passes else "fail")
    causes = []
    for r in rs:
        if not r["ok"] and (r["cause"], r["detail"]) not in causes:
            causes.append((r["cause"], r["detail"]))
    res = {"name": name, "status": status, "passes": passes, "runs": rs,
           "cause": causes[0][0] if causes else "",
           "detail": causes[0][1] if causes else "",
           "other_causes": [c for c, _ in causes[1:] if c != causes[0][0]]}
    write_json(path, res)
    try:
        os.rmdir(os.path.join(out, "runs", name))
    except OSError:
        pass
    return res, False


# ---------------------------------------------------------------- report

def tsv_field(s):
    return str(s).replace("\t", " ").replace("\n", " ")


def reclassify(res, out):
    """Recomputes a program's causes from its stored runs (so that a better
    classify() applies to earlier results too)."""
    causes = []
    for r in res["runs"]:
        if (r.get("rec_token_missing") or r["rec_rc"] is None) and "rec_fail_line" not in r:
            r["rec_fail_line"] = rec_fail_line(read(os.path.join(
                out, "runs", res["name"], str(r["run"]), "rec.out"), 1 << 20))
        if not r["ok"]:
            r["cause"], r["detail"] = classify(r)
            if (r["cause"], r["detail"]) not in causes:
                causes.append((r["cause"], r["detail"]))
    res["cause"] = causes[0][0] if causes else ""
    res["detail"] = causes[0][1] if causes else ""
    res["other_causes"] = [c for c, _ in causes[1:] if c != causes[0][0]]


def report(out, names, built, native, skips, results, meta):
    for res in results.values():
        reclassify(res, out)
    rows = []
    for n in names:
        if n not in built:
            rows.append((n, "compile-fail", "", "", "", ""))
        elif n in skips:
            rows.append((n, "skipped", "", "", "needs args/setup", skips[n]))
        elif native.get(n, {}).get("status") != "pass":
            rows.append((n, "native-fail", "", "", "",
                         native.get(n, {}).get("why", "not run")))
        elif n not in results:
            rows.append((n, "not-run", "", "", "", ""))
        else:
            r = results[n]
            detail = r["detail"]
            if r.get("other_causes"):
                detail += " (other run: %s)" % "; ".join(r["other_causes"])
            secs = "/".join("%.1f+%.1f" % (x["rec_secs"], x["rep_secs"]) for x in r["runs"])
            warned = sorted(set(w for x in r["runs"] for w in
                                x.get("unsupported", []) + x.get("unknown_syscalls", [])))
            rows.append((n, r["status"], "%d/%d" % (r["passes"], len(r["runs"])),
                         secs, r["cause"], detail, " ".join(warned)))
    with open(os.path.join(out, "results.tsv"), "w") as f:
        f.write("program\tstatus\tpasses\trecord+replay_secs\tcause\tdetail\t"
                "unsupported_syscalls_warned\n")
        for row in rows:
            row = tuple(row) + ("",) * (7 - len(row))
            f.write("\t".join(tsv_field(x) for x in row) + "\n")

    total = len(names)
    n_compile_fail = sum(1 for r in rows if r[1] == "compile-fail")
    n_skipped = sum(1 for r in rows if r[1] == "skipped")
    n_native_fail = sum(1 for r in rows if r[1] == "native-fail")
    run_rows = [r for r in rows if r[1] in ("pass", "flaky", "fail")]
    n_native_pass = len(run_rows) + sum(1 for r in rows if r[1] == "not-run")
    n_pass = sum(1 for r in run_rows if r[1] == "pass")
    n_flaky = sum(1 for r in run_rows if r[1] == "flaky")
    n_fail = sum(1 for r in run_rows if r[1] == "fail")
    total_runs = sum(len(results[r[0]]["runs"]) for r in run_rows)
    ok_runs = sum(results[r[0]]["passes"] for r in run_rows)
    pct = lambda a, b: "%.0f%%" % (100.0 * a / b) if b else "-"

    # failures by cause: a program counts under the cause of its first
    # failing run (flaky programs included, marked)
    groups = {}
    for r in run_rows:
        if r[1] == "pass":
            continue
        res = results[r[0]]
        groups.setdefault(res["cause"], []).append(res)
    L = []
    L.append("# rrc on rr's test programs (%s)" % meta["date"])
    L.append("")
    L.append("rr checkout: `%s` (%s); rrc: `%s` (%s); CFLAGS `%s`; %d run(s) per program "
             "(one recording, one replay each); timeouts: native %ds, record %ds, "
             "replay %ds (`--stall-timeout %d`)." % (
                 meta["rr"], meta["rr_rev"], meta["bins"], meta["rrc_rev"], meta["cflags"],
                 meta["runs"], NATIVE_TIMEOUT, RECORD_TIMEOUT, REPLAY_TIMEOUT, STALL_TIMEOUT))
    L.append("")
    L.append("| | programs |")
    L.append("|---|---:|")
    L.append("| `src/test/*.c` | %d |" % total)
    L.append("| do not compile standalone | %d |" % n_compile_fail)
    L.append("| need arguments, another program or interaction (per `.run`) | %d |" % n_skipped)
    L.append("| fail natively (exit status / token / %ds timeout) | %d |" % (NATIVE_TIMEOUT, n_native_fail))
    L.append("| **pass natively** | **%d** |" % n_native_pass)
    if n_native_pass - len(run_rows):
        L.append("| not yet run under rrc | %d |" % (n_native_pass - len(run_rows)))
    L.append("| **replayed faithfully in every run** | **%d (%s)** |" % (n_pass, pct(n_pass, n_native_pass)))
    L.append("| faithful in some runs only (flaky) | %d |" % n_flaky)
    L.append("| failed in every run | %d |" % n_fail)
    L.append("| runs faithful / runs | %d / %d (%s) |" % (ok_runs, total_runs, pct(ok_runs, total_runs)))
    L.append("")
    L.append("## Failures by cause")
    L.append("")
    L.append("A program counts once, under the cause of its first failing run; "
             "(flaky) marks programs that passed the other run.")
    L.append("")
    L.append("| cause | programs | examples |")
    L.append("|---|---:|---|")
    for cause, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        ex = ", ".join("%s%s" % (x["name"], " (flaky)" if x["status"] == "flaky" else "")
                       for x in rs[:6])
        if len(rs) > 6:
            ex += ", ..."
        L.append("| %s | %d | %s |" % (cause, len(rs), ex))
    L.append("")
    sub = groups.get("syscall not modelled", []) + groups.get("ioctl not modelled", [])
    if sub:
        L.append("### Not modelled, by syscall / ioctl")
        L.append("")
        L.append("| syscall | programs | examples |")
        L.append("|---|---:|---|")
        by = {}
        for x in sub:
            by.setdefault(x["detail"], []).append(x["name"])
        for k, v in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            L.append("| %s | %d | %s |" % (k, len(v), ", ".join(v[:6]) + (", ..." if len(v) > 6 else "")))
        L.append("")
    # syscalls the recorder warned about anywhere (even where replay failed
    # for another reason first)
    warned = {}
    for r in run_rows:
        for x in results[r[0]]["runs"]:
            for s in set(x.get("unsupported", [])) | set(x.get("unknown_syscalls", [])):
                warned.setdefault(s, set()).add(r[0])
    if warned:
        L.append("### Syscalls rrc-record warned about (unsupported / unknown), all programs")
        L.append("")
        L.append("| syscall | programs | examples |")
        L.append("|---|---:|---|")
        for k, v in sorted(warned.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            v = sorted(v)
            L.append("| %s | %d | %s |" % (k, len(v), ", ".join(v[:6]) + (", ..." if len(v) > 6 else "")))
        L.append("")
    L.append("## Failure details")
    L.append("")
    for cause, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        L.append("### %s (%d)" % (cause, len(rs)))
        L.append("")
        for x in rs:
            L.append("- `%s`%s: %s" % (x["name"], " (flaky)" if x["status"] == "flaky" else "",
                                       x["detail"].replace("|", "\\|") or "-"))
        L.append("")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    return n_native_pass, n_pass, len(run_rows)


def git_rev(path):
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        prog="rr-corpus.sh",
        description="Build rr's src/test/*.c standalone, keep those that pass "
                    "natively, record and replay each with rrc, and summarise.")
    ap.add_argument("rr", metavar="RR_CHECKOUT")
    ap.add_argument("out", metavar="OUT_DIR", nargs="?", default="rr-corpus-out")
    ap.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("RR_CORPUS_JOBS", "1")),
                    help="programs run in parallel (default 1)")
    ap.add_argument("--runs", type=int, default=2, help="recordings per program (default 2)")
    ap.add_argument("--only", default=None, help="regex: only programs whose name matches")
    ap.add_argument("--fresh", action="store_true", help="forget earlier native and rrc results")
    ap.add_argument("--rerun-failed", action="store_true",
                    help="forget the rrc results of programs that did not pass every run")
    ap.add_argument("--cflags", default=os.environ.get("RR_CORPUS_CFLAGS", DEFAULT_CFLAGS))
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite results.tsv and summary.md from what is cached")
    a = ap.parse_args()

    rr = os.path.abspath(a.rr)
    out = os.path.abspath(a.out)
    bins = os.environ.get("RRC_BIN_DIR")
    if not bins:
        bins = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release")
    bins = os.path.abspath(bins)
    testdir = os.path.join(rr, "src", "test")
    if not os.path.isdir(testdir):
        sys.exit("rr-corpus: %s is not an rr checkout (no src/test)" % rr)
    for sub in ("bin", "build", "native", "results", "runs", "tmp"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    if a.fresh:
        for sub in ("native", "results", "runs"):
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
            os.makedirs(os.path.join(out, sub))

    names = sorted(f[:-2] for f in os.listdir(testdir) if f.endswith(".c"))
    if a.only:
        names = [n for n in names if re.search(a.only, n)]
    if a.rerun_failed:
        for n in names:
            path = os.path.join(out, "results", n + ".json")
            res = load_json(path)
            if res is not None and res.get("status") != "pass":
                os.unlink(path)
    jobs = max(1, a.jobs)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "rr": rr,
            "rr_rev": git_rev(rr), "bins": bins,
            "rrc_rev": git_rev(os.path.dirname(os.path.abspath(__file__))),
            "cflags": a.cflags, "runs": a.runs}

    # 1. build
    gen = generate_headers(rr, out)
    built = set()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs if jobs > 1 else 2) as ex:
        futs = {ex.submit(build_one, n, rr, out, a.cflags, gen): n for n in names}
        for fut in concurrent.futures.as_completed(futs):
            if fut.result():
                built.add(futs[fut])
    log("build: %d of %d compile standalone (%.0fs)" % (len(built), len(names), time.monotonic() - t0))

    # .run files
    tokens, skips = {}, {}
    for n in names:
        token, skip = analyse_run_file(n, rr)
        if token is None:
            with open(os.path.join(testdir, n + ".c"), errors="replace") as f:
                token = "EXIT-SUCCESS" if "EXIT-SUCCESS" in f.read() else None
        tokens[n] = token
        if skip:
            skips[n] = skip

    # 2. native
    native = {}
    todo = [n for n in names if n in built and n not in skips]
    if not a.report_only:
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(native_one, n, rr, out, tokens[n],
                              tokens[n] in (None, "EXIT-SUCCESS")): n for n in todo}
            for fut in concurrent.futures.as_completed(futs):
                native[futs[fut]] = fut.result()
        log("native: %d of %d pass (%.0fs)" % (sum(1 for v in native.values() if v["status"] == "pass"),
                                              len(todo), time.monotonic() - t0))
    else:
        for n in todo:
            v = load_json(os.path.join(out, "native", n + ".json"))
            if v:
                native[n] = v

    # 3. rrc
    results = {}
    passing = [n for n in todo if native.get(n, {}).get("status") == "pass"]
    if a.report_only:
        for n in passing:
            v = load_json(os.path.join(out, "results", n + ".json"))
            if v:
                results[n] = v
    else:
        t0 = time.monotonic()
        done = [0]

        def one(n):
            res, cached = rrc_one(n, out, bins, tokens[n], native[n]["rc"], a.runs)
            done[0] += 1
            if not cached:
                el = time.monotonic() - t0
                log("[%d/%d %4.0fs] %-40s %-5s %s%s" % (
                    done[0], len(passing), el, n, res["status"], res["cause"],
                    (": " + res["detail"][:90]) if res["detail"] else ""))
            return n, res

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            try:
                for n, res in ex.map(one, passing):
                    results[n] = res
                    if done[0] % 20 == 0:
                        report(out, names, built, native, skips, results, meta)
            except KeyboardInterrupt:
                log("interrupted: results so far are kept; run again to resume")
                ex.shutdown(wait=False, cancel_futures=True)
                raise

    n_native, n_pass, n_run = report(out, names, built, native, skips, results, meta)
    log("rrc: %d of %d native-passing programs replayed faithfully in every run (%d run so far)"
        % (n_pass, n_native, n_run))
    log("wrote %s and %s" % (os.path.join(out, "results.tsv"), os.path.join(out, "summary.md")))


if __name__ == "__main__":
    main()
