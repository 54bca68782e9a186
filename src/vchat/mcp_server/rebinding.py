"""DNS-rebinding protection for `vchat mcp --http` on any address: only this machine's names in Host and Origin.

The MCP SDK turns the check on only for 127.0.0.1, localhost and ::1. Every other address needs
it as much: a web page the user opens can make the browser send requests to 127.0.0.2, or to the
machine's own address when the server listens on all of them, under a name the attacker controls.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """True for localhost and every loopback address (all of 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracketed(name: str) -> str:
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def machine_names(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names a legitimate client may use: loopback names, the listen address, and for a wildcard
    address this machine's own name and addresses."""
    names = ["127.0.0.1", "localhost", "::1", host, *extra]
    if host in WILDCARDS:
        hostname = socket.gethostname()
        names += [hostname, socket.getfqdn()]
        with contextlib.suppress(OSError):
            names += [str(info[4][0]) for info in socket.getaddrinfo(hostname, None)]
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a UDP "connect" sends nothing: it only picks the outgoing address
            names.append(str(probe.getsockname()[0]))
    return [_bracketed(n) for n in dict.fromkeys(n for n in names if n and n not in WILDCARDS)]


def transport_security(host: str, extra: Sequence[str] = ()) -> Any:
    """The SDK's TransportSecuritySettings with rebinding protection on, for any listen address.

    `extra`: more Host names to accept (`--allow-host`: a DNS name the machine's own lookup does not
    know, or the name a reverse proxy forwards).
    """
    from mcp.server.transport_security import TransportSecuritySettings

    names = machine_names(host, extra)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{n}:*" for n in names)],
        allowed_origins=[f"{scheme}://{n}{port}" for scheme in ("http", "https") for n in names for port in ("", ":*")],
    )
