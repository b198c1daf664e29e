"""``keliu demo``: the whole appliance on 127.0.0.1 with embedded defaults (composition root, an edge).

It prepares ``var/`` (SQLite database, first-run secrets, a generated store capture), then supervises one
process per component — the portal (which also serves the built-in dashboard), the sensor replaying the
capture, and the analytics loop running Celery tasks in-process — prints the URLs and the demo admin login,
and on Ctrl-C (or SIGTERM) stops every child and waits for it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]


#: where the demo runs the FAKE WeChat server (clearly labelled as such on every page it serves)
WECHAT_FAKE_PORT = 9009


def plan(cfg: object, capture: Path, wechat_port: int = WECHAT_FAKE_PORT) -> list[Child]:
    """The processes of the demo (pure): each is a ``keliu`` subcommand, plus the local FAKE WeChat."""
    from keliu.config import Config

    assert isinstance(cfg, Config)
    keliu = [sys.executable, "-m", "keliu.cli"]
    store = cfg.sensor.store
    fake = [sys.executable, "-m", "keliu.testing.wechat_fake", "--port", str(wechat_port), "--allow-any-ua"]
    return [
        Child("wechat-fake", fake),
        Child("portal", keliu + ["portal"]),
        Child("sensor", keliu + ["sensor", "replay", str(capture), "--store", store, "--speed", "60", "--loop"]),
        Child("analytics", keliu + ["analytics", "run", "--interval", "10"]),
    ]


def supervise(children: list[Child], env: dict[str, str]) -> int:
    procs: list[tuple[Child, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        # Own process group: Ctrl-C in the terminal reaches us once, and we stop the children in order.
        procs.append((child, subprocess.Popen(child.argv, env=env, start_new_session=True)))
    code = 0
    try:
        while not stopping:
            for child, proc in procs:
                rc = proc.poll()
                if rc is not None:
                    click.echo(f"keliu demo: {child.name} exited with status {rc}; stopping", err=True)
                    stopping, code = True, 1
                    break
            time.sleep(0.3)
    finally:
        for _child, proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child, proc in reversed(procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"keliu demo: {child.name} did not stop in time; killing", err=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    click.echo("keliu demo: stopped")
    return code


@click.command("demo")
@click.option("--no-run", is_flag=True, help="Prepare var/ and print the plan, but start nothing.")
@click.option("--wechat-port", type=click.IntRange(1, 65535), default=WECHAT_FAKE_PORT, show_default=True,
              help="Port of the local FAKE WeChat server.")
def demo(no_run: bool, wechat_port: int) -> None:
    """Run the whole appliance on 127.0.0.1: portal on :8080, a sensor replaying a generated store capture,
    analytics in-process, and the built-in dashboard. SMS codes are printed to the console. Ctrl-C stops it."""
    from keliu import config, db, keys, tenants
    from keliu.testing.wechat_fake import demo_env

    # WeChat login against the local FAKE unless the operator configured real accounts.
    env = dict(os.environ)
    if "KELIU_WECHAT_ENABLED" not in env:
        env.update(demo_env(f"http://127.0.0.1:{wechat_port}"))
    # no router DNATs to a captive front here: the portal's own port answers the (hand-made) probes
    env.setdefault("KELIU_PORTAL_CAPTIVE_PORT", "0")
    cfg = config.load(env=env)
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    capture = cfg.var_path / "demo" / "store-day.pcap"
    if not capture.exists():
        from keliu.testing.simulate import write_demo_capture

        write_demo_capture(capture, seed=7)
    password = cfg.portal.admin_password or keys.admin_password(cfg.var_dir)
    children = plan(cfg, capture, wechat_port)
    base = f"http://{cfg.portal.host}:{cfg.portal.port}"
    click.echo(f"keliu demo\n  portal:    {base}/\n  dashboard: {base}/dashboard\n  admin:     {base}/admin"
               f"\n  member:    {base}/member (card)   counter: {base}/counter (redeem)"
               f"\n  login:     {cfg.portal.admin_user} / {password}\n  SMS codes are printed below."
               + (f"\n  WeChat:    FAKE WeChat server at {cfg.wechat.open_base} (not Tencent's)" if cfg.wechat.fake else ""))
    if no_run:
        for child in children:
            click.echo(f"  would run {child.name}: {' '.join(child.argv[2:])}")
        return
    sys.exit(supervise(children, env))
