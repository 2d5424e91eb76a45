#!/usr/bin/env python3
"""Trace a window of forward passes deep into a firmware run in QEMU.

    qemu_window.py ELF TRACE FIRST COUNT -- QEMU_COMMAND...

Starts QEMU_COMMAND (a `qemu-system-arm` line without -singlestep, -d or -D)
halted, with its gdb stub on a socket, and counts the entries into the
engine's forward pass (`Session::forward_masked`, once per token) with a
breakpoint. The run goes at full speed up to entry FIRST (counted from 1);
then QEMU translates one instruction per block and logs every executed
instruction to TRACE (`-d exec,nochain`, what tools/profile/qemu_trace.py
reads) until entry FIRST + COUNT, where the trace ends and QEMU is stopped.
The window holds whole tokens: each starts at a forward pass and runs
through grammar mask and sampling to the next one. Exits 1 with a message
if the run ends or fails before the window is complete.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time


def forward_entry(elf):
    """The address of `Session::forward_masked` (the Thumb bit cleared)."""
    out = subprocess.run(["nm", "--defined-only", elf], capture_output=True, text=True, check=True).stdout
    symbols = (line.split() for line in out.splitlines())
    found = [address for address, kind, symbol in (s for s in symbols if len(s) == 3)
             if kind in "tT" and "7Session14forward_masked" in symbol]
    if len(found) != 1:
        sys.exit(f"qemu_window: expected one Session::forward_masked in {elf}, found {len(found)}")
    return int(found[0], 16) & ~1


class Stub:
    """Just enough of the gdb remote protocol: packets without acks."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(200):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("qemu_window: QEMU's gdb stub never opened its socket")
        self.buf = b""
        self.sock.sendall(b"+")
        self.send("QStartNoAckMode", acked=True)

    def send(self, data, acked=False):
        body = data.encode()
        self.sock.sendall(b"$%s#%02x" % (body, sum(body) % 256))
        if acked:
            self.read_byte(b"+")
        return self.reply(acked)

    def read_byte(self, want):
        while not self.buf:
            self.fill()
        got, self.buf = self.buf[:1], self.buf[1:]
        if got != want:
            sys.exit(f"qemu_window: the gdb stub answered {got!r}, not {want!r}")

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def reply(self, ack=False):
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                body, self.buf = self.buf[start + 1:end].decode(), self.buf[end + 3:]
                if ack:
                    self.sock.sendall(b"+")
                return body
            self.fill()

    def monitor(self, command):
        """An HMP command through `qRcmd`; returns what it printed."""
        printed = ""
        answer = self.send("qRcmd," + command.encode().hex())
        while answer.startswith("O") and answer != "OK":
            printed += bytes.fromhex(answer[1:]).decode(errors="replace")
            answer = self.reply()
        if answer != "OK":
            sys.exit(f"qemu_window: monitor {command!r} answered {answer!r} {printed!r}")
        return printed


def main():
    if len(sys.argv) < 7 or sys.argv[5] != "--":
        sys.exit(__doc__)
    elf, trace, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if first < 1 or count < 1:
        sys.exit("qemu_window: FIRST and COUNT are at least 1")
    entry = forward_entry(elf)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gdb.sock")
        qemu = subprocess.Popen(sys.argv[6:] + ["-gdb", f"unix:{path},server=on,wait=off", "-S", "-D", trace])
        try:
            stub = Stub(path)
            breakpoint = f"{entry:x},2"
            if stub.send("Z0," + breakpoint) != "OK":
                sys.exit("qemu_window: QEMU refused the breakpoint")
            hits, started = 0, time.time()
            while hits < first + count:
                stop = stub.send("c")
                if not stop.startswith("T05") and not stop.startswith("S05"):
                    sys.exit(f"qemu_window: the run ended after {hits} forward passes ({stop}), "
                             f"before the window {first}..{first + count - 1}")
                hits += 1
                if hits == first:
                    # One instruction per translation block (QEMU 8.1 renamed the command).
                    if "unknown command" in stub.monitor("one-insn-per-tb on").lower():
                        stub.monitor("singlestep on")
                    stub.monitor("log exec,nochain")
                    print(f"qemu_window: tracing from forward pass {first} "
                          f"({time.time() - started:.0f} s to get there)", file=sys.stderr)
                # Past the breakpoint: a single step does not stop at it
                # (and, unlike lifting it, flushes no translated code).
                stub.send("s")
            stub.monitor("log none")
            try:
                stub.send("k")
            except EOFError:
                pass
            # Killed through the stub, QEMU exits and closes the trace.
            qemu.wait(timeout=30)
        except EOFError:
            sys.exit("qemu_window: QEMU closed its gdb stub (the run ended or crashed)")
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()


if __name__ == "__main__":
    main()
