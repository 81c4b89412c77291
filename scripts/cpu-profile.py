#!/usr/bin/env python3
"""Counts what one notification costs the daemon, by counts rather than wall-clock time.

The bench's throughput workload (docs/PERFORMANCE.md, "CPU per notification (issue 15 item 5)"):
a daemon with one event configured (`incoming_call` to a keep-alive receiver on loopback,
interface `lo`), one persistent socket client writing `EN1 incoming_call ...` lines with at most
WINDOW outstanding, five warm-up events first. Only the daemon is measured; the receiver and the
client here are Python, in other processes.

    scripts/cpu-profile.py BIN [--events N] [--window W] [--mode plain|strace|callgrind]

plain:     CPU time (schedstat, all threads) and context switches (voluntary, involuntary, all
           threads) of the daemon over the N events, per notification.
strace:    `strace -f -c` attached after the warm-up: system calls per notification by kind.
callgrind: the daemon under `valgrind --tool=callgrind --instr-atstart=no`, instrumentation on
           after the warm-up, dumped after the N events: Ir per notification by function with
           callgrind_annotate --inclusive=yes. Needs an unstripped build:
           CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=1 cargo build --release
           --target-dir target/prof
           The figure: the `summary:` line of the dump's main-thread file (`OUT.1-01`) divided by
           N. callgrind counts each iteration of a `rep movs`/`rep stos` as one instruction, so a
           2.4 KiB struct copy counts ~2,400: it shows copies, and overstates their CPU time.

The tool each mode needs (strace; valgrind) is installed with scripts/ensure-apt.sh when missing.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


class Receiver:
    """HTTP/1.1 keep-alive, answers `200 ok`, counts requests (no bodies: GET only)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.cv = threading.Condition()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            d = c.recv(65536)
            if not d:
                return
            buf += d
            n = 0
            while True:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    break
                buf = buf[i + 4:]
                n += 1
            if n:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * n)
                with self.cv:
                    self.count += n
                    self.cv.notify_all()

    def wait(self, n, timeout=120):
        end = time.time() + timeout
        with self.cv:
            while self.count < n:
                left = end - time.time()
                if left <= 0:
                    raise SystemExit(f"only {self.count} of {n} arrived")
                self.cv.wait(left)


def lines(i, flow):
    """The socket lines of notification i: the bench's direct event, or (`call`) the SIP stack's
    transitions of a call that rings and is missed (two messages; only `incoming_call` is
    configured, so one notification)."""
    if flow == "call":
        return [f"EN1 call state=incoming call_id={i} remote=sip:1002@pbx "
                f"display_remote=Bob%20%26%20Alice\n".encode(),
                f"EN1 call state=ended call_id={i}\n".encode()]
    return [f"EN1 incoming_call call_id={i} remote=1002 display_remote=Bob%20%26%20Alice\n".encode()]


def threads(pid):
    return os.listdir(f"/proc/{pid}/task")


def cpu_ns(pid):
    t = 0
    for tid in threads(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                t += int(f.read().split()[0])
        except OSError:
            pass
    return t


def user_sys(pid):
    """utime, stime (clock ticks) of the whole process."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]), int(v[12])


def switches(pid):
    v = nv = 0
    for tid in threads(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for l in f:
                    if l.startswith("voluntary_ctxt_switches"):
                        v += int(l.split()[1])
                    elif l.startswith("nonvoluntary_ctxt_switches"):
                        nv += int(l.split()[1])
        except OSError:
            pass
    return v, nv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--mode", default="plain", choices=["plain", "strace", "callgrind"])
    ap.add_argument("--out", default=None, help="callgrind.out / strace output file")
    ap.add_argument("--flow", default="direct", choices=["direct", "call"],
                    help="direct: one `incoming_call` line per notification (the bench's); "
                         "call: `call state=incoming` and `call state=ended` per notification")
    a = ap.parse_args()
    need = {"strace": "strace", "callgrind": "valgrind"}.get(a.mode)
    if need:
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["sh", os.path.join(here, "ensure-apt.sh"), need], check=True)

    rx = Receiver()
    tmp = tempfile.mkdtemp(prefix="en-prof-")
    cfg = os.path.join(tmp, "config.json")
    sockp = os.path.join(tmp, "sock")
    with open(cfg, "w") as f:
        f.write('{"events": {"incoming_call": "127.0.0.1:%d/in?n=$call_id&ev=$event&from=$remote'
                '&name=$display_remote&ip=$phone_ip&t=$timestamp"}, "device": {"interface": "lo"}}'
                % rx.port)
    cmd = [a.bin, "run", "--config", cfg, "--socket", sockp]
    out = a.out or os.path.join(tmp, "callgrind.out")
    if a.mode == "callgrind":
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
               f"--callgrind-out-file={out}"] + cmd
    env = dict(os.environ, RUST_LOG="warn")
    p = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL if a.mode != "plain" else None)
    for _ in range(3000):
        if os.path.exists(sockp):
            break
        time.sleep(0.01)
    c = socket.socket(socket.AF_UNIX)
    c.connect(sockp)
    cf = c.makefile("rb")

    def send(i):
        for l in lines(i, a.flow):
            c.sendall(l)
            r = cf.readline()
            if not r.startswith(b"OK"):
                raise SystemExit(f"refused: {r!r}")

    warm = 5
    for i in range(warm):
        send(i)
        rx.wait(i + 1)
    tracer = None
    if a.mode == "callgrind":
        subprocess.run(["callgrind_control", "--instr=on", str(p.pid)], check=True,
                       stdout=subprocess.DEVNULL)
    elif a.mode == "strace":
        sout = a.out or os.path.join(tmp, "strace.txt")
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", sout, "-p", str(p.pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    cpu0, sw0, us0, t0 = cpu_ns(p.pid), switches(p.pid), user_sys(p.pid), time.time()
    n = a.events
    for i in range(n):
        if i >= a.window:
            rx.wait(warm + i + 1 - a.window)
        send(warm + i)
    rx.wait(warm + n)
    el = time.time() - t0
    cpu1, sw1, us1 = cpu_ns(p.pid), switches(p.pid), user_sys(p.pid)
    if a.mode == "callgrind":
        subprocess.run(["callgrind_control", "--dump", str(p.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["callgrind_control", "--instr=off", str(p.pid)], check=True,
                       stdout=subprocess.DEVNULL)
    if tracer:
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
    p.send_signal(signal.SIGTERM)
    p.wait()
    per = lambda x: x / n
    print(f"flow {a.flow} events {n} window {a.window} elapsed {el:.2f} s rate {n / el:.0f}/s")
    print(f"cpu_us_per_event {per(cpu1 - cpu0) / 1e3:.1f}")
    tick = os.sysconf("SC_CLK_TCK")
    u, s_ = us1[0] - us0[0], us1[1] - us0[1]
    print(f"user_us_per_event {per(u) * 1e6 / tick:.1f} system_us_per_event {per(s_) * 1e6 / tick:.1f}")
    print(f"ctxsw_per_event voluntary {per(sw1[0] - sw0[0]):.2f} "
          f"involuntary {per(sw1[1] - sw0[1]):.2f}")
    if a.mode == "strace":
        print(open(sout).read())
    if a.mode == "callgrind":
        print(f"callgrind output: {out} (and {out}.1 for the dump)")


if __name__ == "__main__":
    main()
