"""The router tests' way into the bench: open one with a stand-in portal, curl from a phone (edge, tests only)."""
from __future__ import annotations

import subprocess
import sys

from keliu.testing.netbench import Bench, wait_port
from router_config.config import RouterConfig
from tests.conftest import require_root_netns, require_tool


def bench_cfg(**kw: object) -> RouterConfig:
    return RouterConfig(walled_garden_domains=["garden.test"], **kw)  # type: ignore[arg-type]


def open_bench(prefix: str, phones: int = 2, cfg: RouterConfig | None = None) -> Bench:
    require_root_netns()
    for tool in ("nft", "dnsmasq", "busybox", "curl", "conntrack"):
        require_tool(tool)
    bench = Bench(prefix, phones=phones, cfg=cfg or bench_cfg())
    bench.start()
    try:
        # a stand-in portal, so that a redirected request has someone to answer it
        bench.popen(bench.router, [sys.executable, "-m", "keliu.testing.internet", "--portal",
                                   str(bench.portal_address[1])], stdout=subprocess.DEVNULL)
        wait_port(bench.router, bench.portal_address[0], bench.portal_address[1])
    except BaseException:
        bench.stop()
        raise
    return bench


def curl(bench: Bench, i: int, url: str, *extra: str, timeout: float = 4) -> subprocess.CompletedProcess[str]:
    """curl in phone ``i`` over IPv4 (unless ``-6`` is in ``extra``), trusting the bench's CA."""
    family = [] if "-6" in extra else ["-4"]
    return bench.run(bench.phone(i).ns, ["curl", "-sS", *family, "-m", str(timeout), "--cacert",
                                         str(bench.ca_file), *extra, url], timeout=timeout + 5)
