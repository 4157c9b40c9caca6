"""Two network namespaces for the bridge tests (issue 13): a "service" one and a "laptop" one
joined by a veth pair, plus a veth from the test's own namespace to the service's (the test
drives the API through it). Names start with `bridge` so they never collide with others'.
Nothing routes from the service to the laptop's loopback, which is where Pieces OS listens.
"""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Namespaces:
    service: str
    laptop: str
    link_service: str  # the service's end of the service-laptop veth
    service_ip: str  # as the laptop sees the service
    laptop_ip: str
    api_ip: str  # as the test sees the service

    def run(self, namespace: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *args]

    def python(self, namespace: str, *args: str) -> list[str]:
        return self.run(namespace, sys.executable, *args)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextmanager
def namespaces() -> Iterator[Namespaces]:
    tag = uuid.uuid4().hex[:6]
    service, laptop = f"bridge{tag}s", f"bridge{tag}l"
    a, b, c, d = (f"bridge{tag}{x}" for x in "abcd")
    second, third = random.randint(200, 250), random.randint(0, 255)
    net = f"10.{second}.{third}"
    try:
        _ip("netns", "add", service)
    except (subprocess.CalledProcessError, FileNotFoundError, PermissionError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"the kernel refuses network namespaces here: {detail.decode().strip()}")
    try:
        _ip("netns", "add", laptop)
        _link(service, laptop, a, b, c, d, net)
    except subprocess.CalledProcessError as exc:
        _remove(service, laptop, c)
        pytest.skip(f"the kernel refuses veth links here: {exc.stderr.decode().strip()}")
    try:
        yield Namespaces(service, laptop, a, f"{net}.1", f"{net}.2", f"{net}.6")
    finally:
        _remove(service, laptop, c)


def _remove(service: str, laptop: str, root_end: str) -> None:
    subprocess.run(["ip", "link", "del", root_end], capture_output=True, timeout=10)
    for ns in (service, laptop):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _link(service: str, laptop: str, a: str, b: str, c: str, d: str, net: str) -> None:
    for ns in (service, laptop):
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("link", "add", a, "type", "veth", "peer", "name", b)
    _ip("link", "set", a, "netns", service)
    _ip("link", "set", b, "netns", laptop)
    _ip("-n", service, "addr", "add", f"{net}.1/30", "dev", a)
    _ip("-n", laptop, "addr", "add", f"{net}.2/30", "dev", b)
    _ip("-n", service, "link", "set", a, "up")
    _ip("-n", laptop, "link", "set", b, "up")
    _ip("link", "add", c, "type", "veth", "peer", "name", d)
    _ip("link", "set", d, "netns", service)
    _ip("addr", "add", f"{net}.5/30", "dev", c)
    _ip("-n", service, "addr", "add", f"{net}.6/30", "dev", d)
    _ip("link", "set", c, "up")
    _ip("-n", service, "link", "set", d, "up")
