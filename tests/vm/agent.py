#!/usr/bin/python3
"""keliu-vm-agent: the guest end of the test VM's command channel (a virtio-serial port).

Installed into the test image by tests/vm/mkimage.sh and started by systemd early in boot. It reads one JSON request
a line from /dev/virtio-ports/org.keliu.agent -- ``{"id": n, "cmd": "<bash>", "timeout": seconds}`` -- runs the
command with bash in its own session, and answers ``{"id": n, "rc": status, "out": stdout, "err": stderr}``; a
command that outlives its timeout is killed with its whole process group and answered with ``"timeout": true``.
Output goes through files, not pipes, so a command may leave a daemon behind without holding the answer back.
On start it says ``{"hello": <boot id>}`` so the host knows a (re)boot reached userspace. Standard library only.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time

PORT = "/dev/virtio-ports/org.keliu.agent"


def run(req: dict[str, object]) -> dict[str, object]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(["/bin/bash", "-c", str(req["cmd"])], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, cwd="/root")
        answer: dict[str, object] = {"id": req.get("id")}
        try:
            answer["rc"] = proc.wait(timeout=float(str(req.get("timeout", 60))))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            answer["rc"] = proc.wait()
            answer["timeout"] = True
        for name, f in (("out", out), ("err", err)):
            f.seek(0)
            answer[name] = f.read().decode("utf-8", "replace")
    return answer


def main() -> None:
    while not os.path.exists(PORT):
        time.sleep(0.2)
    fd = os.open(PORT, os.O_RDWR)
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        boot = f.read().strip()
    os.write(fd, (json.dumps({"hello": boot}) + "\n").encode())
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            time.sleep(0.1)  # the host is not connected: the port reads nothing until it is
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                answer = run(req)
            except Exception as exc:  # noqa: BLE001 -- a bad request must not kill the channel
                answer = {"id": None, "rc": 255, "out": "", "err": f"agent: {exc!r}"}
            data = (json.dumps(answer) + "\n").encode()
            while data:
                data = data[os.write(fd, data):]


if __name__ == "__main__":
    main()
