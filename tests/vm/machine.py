"""The test VM as seen from the host: qemu booting the image of mkimage.sh, driven over a virtio-serial channel.

An edge for the VM tests only. ``Machine`` boots Debian's kernel directly (``-kernel``/``-initrd``) on a qcow2
overlay of the cached ext4 image, so the image is never written and every run starts from the same disk; guest
reboots keep the overlay (a reboot test sees what the previous boot wrote). Host directories are shared read-only
over 9p. Commands run through the agent (tests/vm/agent.py): each has a hard time limit on both ends, and a step
that overruns kills the VM rather than hang the test run. The serial console (kernel and systemd messages, a root
shell) is written to ``console.log`` in the run directory, which is kept when a test fails.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ACCEL_WATCHDOG_S = 90  # KVM here can stall before userspace ("Probing EDD", nested virtualization): fall back to TCG
#: qemu's nice level. 0 by default: at nice 10 on a 2-core host at load 10-18 the VM got so little CPU that
#: provision.sh's pip install alone ran past 30 min; KELIU_VM_NICE=10 keeps a desktop responsive instead
NICE = int(os.environ.get("KELIU_VM_NICE", "0"))


class VMError(AssertionError):
    """The VM did not do what a step needed in time (an AssertionError so pytest reports it as a failure)."""


@dataclass(frozen=True)
class Result:
    cmd: str
    rc: int
    out: str
    err: str

    def check(self) -> Result:
        if self.rc != 0:
            raise VMError(f"`{self.cmd}` exited {self.rc}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}")
        return self


class Machine:
    def __init__(self, image: Path, rundir: Path, shares: dict[str, Path], memory_mb: int = 1536, cpus: int = 2,
                 accel: str = "tcg") -> None:
        self.image = image
        self.rundir = rundir
        self.shares = shares
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.accels = [a for a in accel.split(",") if a]
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.buf = b""
        self.boot_id = ""
        self.next_id = 0
        self.provision: Result | None = None  # provision.sh's run, kept for the tests that check it
        self.console = rundir / "console.log"
        self.transcript = (rundir / "transcript.log").open("a", encoding="utf-8")
        self.t0 = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self, boot_timeout: float = 300) -> None:
        overlay = self.rundir / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image / "root.img"),
                        str(overlay)], check=True, timeout=60)
        for i, accel in enumerate(self.accels):
            last = i == len(self.accels) - 1
            self._launch(accel, overlay)
            try:
                self._wait_hello(boot_timeout if last else min(boot_timeout, ACCEL_WATCHDOG_S))
                self.log(f"# booted with {accel}")
                return
            except VMError:
                if last:
                    raise
                self.log(f"# {accel}: no agent within the watchdog, trying {self.accels[i + 1]}")
                self._kill()

    def _launch(self, accel: str, overlay: Path) -> None:
        sock_path = self.rundir / "agent.sock"
        sock_path.unlink(missing_ok=True)
        cpu = "host" if accel == "kvm" else "max"
        argv = ["nice", "-n", str(NICE), "qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-m", str(self.memory_mb),
                "-smp", str(self.cpus), "-nodefaults", "-no-user-config", "-display", "none",
                "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
                "-append", ("root=/dev/vda rw console=ttyS0,115200 edd=off panic=0 net.ifnames=0 "
                            "systemd.show_status=1 systemd.log_color=0"),
                "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
                "-chardev", f"file,id=con,path={self.console}", "-serial", "chardev:con",
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=agent,path={sock_path},server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=org.keliu.agent",
                "-device", "virtio-rng-pci"]
        for tag, path in self.shares.items():
            argv += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
        self.log("# " + shlex.join(argv))
        with (self.rundir / "qemu.log").open("ab") as qlog:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not sock_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise VMError(f"qemu did not start: {(self.rundir / 'qemu.log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(sock_path))
        self.buf = b""

    def _kill(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def shutdown(self, timeout: float = 120) -> bool:
        """Power off cleanly; True if the guest went down by itself, False if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self._send({"id": -1, "cmd": "systemctl poweroff", "timeout": 30})
        try:
            self.proc.wait(timeout=timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
        self._kill()
        self.transcript.close()
        return clean

    def kill(self) -> None:
        self._kill()
        self.transcript.close()

    def reboot(self, timeout: float = 300) -> None:
        before = self.boot_id
        self._send({"id": -1, "cmd": "systemctl reboot", "timeout": 30})
        deadline = time.monotonic() + timeout
        while self.boot_id == before:
            self._wait_hello(max(1.0, deadline - time.monotonic()))

    # -- the channel -------------------------------------------------------------------------------------------------
    def log(self, text: str) -> None:
        """One entry of the transcript, stamped with the seconds since the machine object was made."""
        self.transcript.write(f"[{time.monotonic() - self.t0:7.1f}] " + text.rstrip("\n") + "\n")
        self.transcript.flush()

    def _send(self, msg: dict[str, object]) -> None:
        assert self.sock is not None
        self.sock.sendall((json.dumps(msg) + "\n").encode())

    def _read_line(self, deadline: float) -> dict[str, object]:
        assert self.sock is not None and self.proc is not None
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMError(f"no answer from the VM in time; console: {self.console}")
            if self.proc.poll() is not None:
                raise VMError(f"qemu exited ({self.proc.returncode}); console: {self.console}")
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise VMError("the agent's socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg: dict[str, object] = json.loads(line)
        return msg

    def _wait_hello(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_line(deadline)
            if "hello" in msg:
                self.boot_id = str(msg["hello"])
                self.log(f"# agent up, boot {self.boot_id}")
                return

    def run(self, cmd: str, timeout: float = 60) -> Result:
        """Run ``cmd`` with bash as root in the guest; the VM is killed if the agent does not answer in time."""
        self.next_id += 1
        rid = self.next_id
        self.log(f"$ {cmd}")
        started = time.monotonic()
        self._send({"id": rid, "cmd": cmd, "timeout": timeout})
        deadline = time.monotonic() + timeout + 30  # the agent kills the command at `timeout`; this is the backstop
        while True:
            try:
                msg = self._read_line(deadline)
            except VMError:
                self._kill()
                raise
            if msg.get("id") == rid:
                break
            if "hello" in msg:
                raise VMError(f"the VM rebooted during `{cmd}`")
        res = Result(cmd, int(msg["rc"]), str(msg["out"]), str(msg["err"]))  # type: ignore[call-overload]
        self.log(f"[rc={res.rc}{' TIMEOUT' if msg.get('timeout') else ''} in {time.monotonic() - started:.1f} s]\n"
                 f"{res.out}{res.err}")
        if msg.get("timeout"):
            raise VMError(f"`{cmd}` ran longer than {timeout} s\n{res.out[-2000:]}\n{res.err[-2000:]}")
        return res

    def sh(self, cmd: str, timeout: float = 60) -> str:
        """Run ``cmd`` and return its stdout; a non-zero exit fails the test."""
        return self.run(cmd, timeout).check().out


def qemu_available() -> str | None:
    return shutil.which("qemu-system-x86_64")


def kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)
