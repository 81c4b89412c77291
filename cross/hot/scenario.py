#!/usr/bin/env python3
"""cross/hot/scenario.py BIN OUT: a handset's day, for cross/hot/profile.sh.

Runs the daemon BIN under valgrind's callgrind (instruction addresses recorded) on loopback,
twice, and writes OUT.phases: one line `phase file` per callgrind output file. (An ARM BIN runs
under qemu-user instead: EN_HOT_QEMU, below.)

First run, a plain phone (one event, no spool, no admin server): start-up, a client's `ping`
on the socket and 3 s idle (phase 1), the shutdown (phase 5). Second run, with a plain HTTP and an HTTPS receiver of its own
and the admin server on; callgrind's output is dumped after each phase:
  1. start-up, a `ping` on the socket, and idle (3 s: the loop's ticks)
  2. events to a plain HTTP receiver: direct events and call transitions (GET, a POST with a JSON
     body, signed, an extra header), one destination that refuses connections (retries, the
     spool; a burst that fills the outbox, the oldest dropped), `status`, a reload (SIGHUP)
  3. events to an HTTPS receiver (the scenario's own CA in delivery.ca_file)
  4. the admin server: the page, the API's status and events, by Basic
  5. the shutdown (SIGTERM)
Loopback only; everything lives in a temporary directory.
"""
import base64
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN, OUT = sys.argv[1], sys.argv[2]
PASSWORD = "profile-pass-1"
# EN_HOT_QEMU=qemu-arm: BIN is an ARM build, run under qemu-user instead of valgrind; qemu logs
# each block of code it translates (`-d in_asm`: once, when first run), and a phase's dump is the
# log up to that moment. OUT.phases then names files of `0x<address> ` lines, as ranked.py reads.
QEMU = os.environ.get("EN_HOT_QEMU", "")
PREFIX = [QEMU] if QEMU else []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        port = self.server.server_address[1]
        COUNTS[port] = COUNTS.get(port, 0) + 1
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *a):
        pass


def receiver(ctx=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ctx:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(*args, stdin=None):
    subprocess.run([*PREFIX, BIN, *args], input=stdin, check=True, capture_output=True,
                   timeout=120)


def main(d):
    # A CA and the receiver's certificate signed by it, as a CRM's: a self-signed certificate
    # (a CA's, as openssl makes it) is refused as the receiver's own, and the profile would
    # then see a failing handshake instead of deliveries over TLS.
    cert, key, leaf, leaf_key = (f"{d}/{n}" for n in ("ca.pem", "ca.key", "leaf.pem", "leaf.key"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=profile-ca"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-keyout", leaf_key, "-out", f"{d}/leaf.csr",
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    with open(f"{d}/leaf.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{d}/leaf.csr", "-CA", cert, "-CAkey", key,
                    "-CAcreateserial", "-out", leaf, "-days", "2", "-extfile", f"{d}/leaf.ext"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf, leaf_key)
    plain, tls = receiver(), receiver(ctx)
    admin, dead = free_port(), free_port()
    cfg = f"{d}/event-notify.json"
    with open(cfg, "w") as f:
        f.write(f"""{{"events": {{
  "incoming_call": "127.0.0.1:{plain}/in?id=$call_id&from=$remote&name=$display_remote&ip=$phone_ip&mac=$mac",
  "establish_call": "http://127.0.0.1:{plain}/up?id=$call_id&t=$timestamp",
  "terminate_call": {{"url": "http://127.0.0.1:{plain}/end", "method": "POST",
      "body": "{{\\"id\\": \\"$call_id\\", \\"d\\": $duration}}", "content_type": "application/json",
      "signing_secret": "whsec-profile", "headers": {{"X-Site": "lab-$mac"}}}},
  "missed_call": "127.0.0.1:{plain}/missed?id=$call_id",
  "dnd_on": "https://127.0.0.1:{tls}/dnd?on=1&u=$active_user",
  "dnd_off": "https://127.0.0.1:{tls}/dnd?on=0&u=$active_user",
  "registration": "127.0.0.1:{plain}/reg?u=$active_user&h=$active_host",
  "hold_call": "127.0.0.1:{dead}/hold?id=$call_id"}},
 "delivery": {{"ca_file": "{cert}", "spool": "{d}/spool"}},
 "device": {{"interface": "lo"}}}}""")
    cred = f"{d}/admin.cred"
    run("passwd", "--file", cred, stdin=f"{PASSWORD}\n".encode())
    phases, dumps = [], {}

    def callgrind(name, cfg, sock, *extra):
        out = f"{OUT}.{name}"
        for old in [out] + [f"{out}.{i}" for i in range(1, 10)]:
            if os.path.exists(old):
                os.remove(old)
        if QEMU:
            tool = [QEMU, "-d", "in_asm", "-D", f"{out}.log"]
            SEEN[out] = 0
        else:
            tool = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-strings=no",
                    "--compress-pos=no", f"--callgrind-out-file={out}"]
        p = subprocess.Popen(
            [*tool, BIN, "run", "--config", cfg, "--socket", sock, *extra],
            stdout=subprocess.DEVNULL, stderr=open(f"{d}/daemon-{name}.log", "w"))
        DAEMONS.append(p)
        for _ in range(1200):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        return p, out

    def ping(sock):
        # What a firmware's client does first, and the bench before it measures "idle".
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(sock)
            c.sendall(b"EN1 ping\n")
            c.recv(64)

    def dump(p, out, phase):
        dumps[out] = dumps.get(out, 0) + 1
        if QEMU:
            qemu_cut(out, f"{out}.{dumps[out]}")
        else:
            subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True,
                           capture_output=True, timeout=120)
        phases.append((phase, f"{out}.{dumps[out]}"))

    def stop(p, out):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
        if QEMU:
            qemu_cut(out, out)
        phases.append((5, out))

    # The handset's identity, as every phone's init script passes it (board/*/board.json).
    board = f"{d}/board.json"
    with open(f"{d}/build.prop", "w") as f:
        f.write("ro.build.version.incremental=1.0.0.42\n")
    with open(board, "w") as f:
        f.write(f"""{{"model": "profile", "product": "PROFILE", "hardware_version": "v1",
 "program_version_file": "{d}/build.prop", "program_version_key": "ro.build.version.incremental",
 "interface": "lo", "language": "en"}}""")

    # A plain phone: one event, no spool, no admin server.
    small = f"{d}/small.json"
    with open(small, "w") as f:
        f.write(f"""{{"events": {{"incoming_call": "127.0.0.1:{plain}/in?n=$call_id&from=$remote"}},
 "device": {{"interface": "lo"}}}}""")
    p, out = callgrind("plain", small, f"{d}/plain.sock", "--board", board)
    ping(f"{d}/plain.sock")
    time.sleep(3)
    dump(p, out, 1)
    stop(p, out)

    sock = f"{d}/sock"
    vg, out = callgrind("full", cfg, sock, "--board", board, "--admin", f"127.0.0.1:{admin}",
                        "--admin-credentials", cred)

    def emit(*args):
        run("emit", *args, "--socket", sock)

    ping(sock)
    time.sleep(3)
    dump(vg, out, 1)

    emit("register", "state=ok", "active_user=1001", "active_host=pbx.example")
    for i in range(10):
        cid = f"call-{i}"
        emit("call", "state=incoming", f"call_id={cid}", "remote=1002",
             "display_remote=Bob & Alice #2")
        emit("call", "state=confirmed", f"call_id={cid}")
        emit("media", "state=held", f"call_id={cid}")
        emit("media", "state=active", f"call_id={cid}")
        emit("call", "state=ended", f"call_id={cid}")
        emit("incoming_call", f"call_id=direct-{i}", "remote=1003")
    emit("call", "state=incoming", "call_id=missed-1", "remote=1004")
    emit("call", "state=ended", "call_id=missed-1")
    # A busy phone whose server is down: a burst to the dead destination fills the outbox
    # (OUTBOX_BYTES_CAP), and the oldest waiting notifications are dropped.
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(sock)
        for i in range(3000):
            c.sendall(f"EN1 hold_call call_id=burst-{i}\n".encode())
            c.recv(256)
    time.sleep(2)
    run("status", "--socket", sock)
    vg.send_signal(signal.SIGHUP)
    time.sleep(2)
    emit("incoming_call", "call_id=after-reload", "remote=1005")
    time.sleep(2)
    dump(vg, out, 2)

    for i in range(5):
        emit("dnd", "state=on")
        emit("dnd", "state=off")
    time.sleep(4)
    dump(vg, out, 3)
    # A profile of failing handshakes would place the wrong code: the deliveries must be there.
    if COUNTS.get(tls, 0) < 10:
        raise SystemExit(f"scenario: the HTTPS receiver got {COUNTS.get(tls, 0)} of 10 requests")

    base = f"http://127.0.0.1:{admin}"
    auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    for path in ["/api/v1/status", "/api/v1/events/incoming_call", "/api/v1/events"]:
        req = urllib.request.Request(base + path, headers={"Authorization": auth})
        urllib.request.urlopen(req, timeout=60).read()
    urllib.request.urlopen(base + "/", timeout=60).read()
    time.sleep(1)
    dump(vg, out, 4)

    stop(vg, out)
    with open(f"{OUT}.phases", "w") as f:
        for phase, path in phases:
            f.write(f"{phase} {path}\n")


DAEMONS = []
SEEN = {}
COUNTS = {}  # requests answered, by receiver port


def qemu_cut(out, dest):
    """The addresses qemu's log OUT.log gained since the last cut, to DEST (whole lines only:
    the log may end in the middle of one)."""
    with open(f"{out}.log", "rb") as f:
        f.seek(SEEN[out])
        data = f.read()
    end = data.rfind(b"\n") + 1
    SEEN[out] += end
    with open(dest, "w") as f:
        for line in data[:end].decode("utf-8", "replace").splitlines():
            if line.startswith("0x") and ":" in line:
                f.write(line.split(":", 1)[0].lower() + " \n")


def run_main():
    d = tempfile.mkdtemp(prefix="en-hot-")
    try:
        main(d)
    finally:
        # A daemon left by a failed step, then the directory (a private key, the admin's
        # credentials file).
        for p in DAEMONS:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


run_main()
