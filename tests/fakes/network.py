"""The network edge for SSRF tests: record every TCP connection attempt, answer DNS from a table.

Use as pytest fixtures (import them into the test module)::

    from tests.fakes.network import connections, dns  # noqa: F401  (fixtures)

    def test_x(connections, dns):
        dns.table["api.example.test"] = ["10.1.2.3"]        # or a callable: answers that change
        ...
        assert connections == []                             # nothing was even attempted

``connections`` wraps ``socket.create_connection`` (what httpcore's sync backend opens sockets
with): every attempt's address is recorded, and anything but 127.0.0.1 / ::1 raises
AssertionError (a safety net: tests only ever talk to loopback). ``dns`` replaces
``socket.getaddrinfo``: names in ``table`` get those addresses, unknown names fail like the C
resolver, IP literals pass through; ``lookups`` records the names asked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TCP connection attempt's address, in order; only loopback is let through."""
    attempts: list[str] = []
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address[0])
        if address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"test tried to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return attempts


class FakeDNS:
    """``socket.getaddrinfo`` answering names from ``table`` (see the module docstring)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.table: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            try:
                ipaddress.ip_address(str(host))
            except ValueError:
                pass
            else:
                return real(host, port, *args, **kwargs)
            self.lookups.append(str(host))
            entry = self.table.get(str(host))
            if entry is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            addresses = entry() if callable(entry) else entry
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
                    for a in addresses]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """A ``FakeDNS`` installed for the test."""
    return FakeDNS(monkeypatch)
