"""Several hosts on one machine: Linux network namespaces joined by veth pairs to one bridge.

    with Hosts(["chain", "s1", "verifier", "client"]) as hosts:
        hosts.address("s1")                     # "10.77.0.11", on the s1 namespace's eth0
        hosts.launcher("s1")                    # ["ip", "netns", "exec", "efn<pid>-s1"]: run a process there
        with hosts.partition("client", "s1"):   # neither can reach the other; everyone else still can
            ...

Each host is a namespace with its own loopback and an ``eth0`` (one end of a veth pair whose other end is a port
of the bridge), so every packet between hosts crosses real interfaces and the bridge. The bridge itself holds
10.77.0.1, the test process's own address on that network (it drives the chain clock and checks the processes).
Only addresses and interfaces made here are touched, all named ``efn<pid>...``; they are removed on exit, even
after a failure, and leftovers of a run that was killed (its pid gone) are removed on the next start.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

SUBNET = "10.77.0"
PREFIX = "efn"
CONTROLLER = f"{SUBNET}.1"
FIRST_HOST = 10


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (the reason a test skips with), or None."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, or in a container with CAP_NET_ADMIN)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    _remove_leftovers()
    used = _ip("-o", "addr", "show", "to", f"{SUBNET}.0/24").stdout.strip()
    if used:
        return f"{SUBNET}.0/24 is already in use on this machine: {used.splitlines()[0]}"
    return None


def _remove_leftovers() -> None:
    """Namespaces and links of earlier runs whose process is gone (a killed test run cannot clean up)."""

    def dead(name: str) -> bool:
        match = re.match(rf"{PREFIX}(\d+)", name)
        return bool(match) and not Path(f"/proc/{match.group(1)}").exists()

    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if dead(name):
            _ip("netns", "del", name, check=False)
    for name in re.findall(rf"^\d+: ({PREFIX}\d+\w*)[@:]", _ip("-o", "link", "show").stdout, re.MULTILINE):
        if dead(name):
            _ip("link", "del", name, check=False)


class Hosts:
    """Namespaces named after ``names``, each at 10.77.0.<10 + i>, on one bridge; a context manager."""

    def __init__(self, names: list[str]):
        if len(names) > 200:
            raise ValueError("at most 200 hosts fit the /24")
        self.tag = f"{PREFIX}{os.getpid()}"
        self.names = list(names)
        self.bridge = f"{self.tag}br"
        self._made_namespaces: list[str] = []
        self._made_links: list[str] = []

    def namespace(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def address(self, name: str) -> str:
        return f"{SUBNET}.{FIRST_HOST + self.names.index(name)}"

    def launcher(self, name: str) -> list[str]:
        """The prefix that runs a command on host ``name`` (``ip netns exec`` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.namespace(name)]

    def run(self, name: str, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.launcher(name), *command], capture_output=True, text=True, check=True, timeout=30)

    def __enter__(self) -> Hosts:
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def _make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_links.append(self.bridge)
        _ip("addr", "add", f"{CONTROLLER}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, name in enumerate(self.names):
            ns, outside, inside = self.namespace(name), f"{self.tag}v{i}", f"{self.tag}p{i}"
            _ip("netns", "add", ns)
            self._made_namespaces.append(ns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self._made_links.append(outside)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            _ip("link", "set", inside, "netns", ns)
            _ip("-n", ns, "link", "set", inside, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address(name)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        """Delete every namespace and link made here (processes still inside keep their namespace alive until
        they exit: stop them first)."""
        for ns in reversed(self._made_namespaces):
            _ip("netns", "del", ns, check=False)
        for link in reversed(self._made_links):
            if _ip("link", "show", link, check=False).returncode == 0:
                _ip("link", "del", link, check=False)
        self._made_namespaces.clear()
        self._made_links.clear()

    @contextmanager
    def partition(self, a: str, b: str):
        """Cut ``a`` and ``b`` apart (each drops what it would send to the other: a blackhole route on both sides)
        while the block runs; both still reach every other host. Connections already open between them go
        silent; new ones fail."""
        cuts = [(a, self.address(b)), (b, self.address(a))]
        for host, peer in cuts:
            self.run(host, "ip", "route", "add", "blackhole", f"{peer}/32")
        try:
            yield
        finally:
            for host, peer in cuts:
                subprocess.run(
                    [*self.launcher(host), "ip", "route", "del", "blackhole", f"{peer}/32"],
                    capture_output=True,
                    timeout=30,
                )
