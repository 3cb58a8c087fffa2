"""The target guard: no user-given address may aim our server at a network that is not public.

Every outbound target (a webhook, an ntfy server) is resolved at creation and again at every
send, and each address it resolves to must be public: not loopback, private, link-local (the
metadata address 169.254.169.254 among them), CGNAT, multicast, reserved or unspecified,
also when written as an IPv4-mapped, NAT64, 6to4 or Teredo IPv6 address. Names and numbers are
resolved by the system resolver, so `2130706433`, `0x7f.1` and `017700000001` are the 127.0.0.1
they stand for. A send connects to the addresses that were checked (`GuardedResolver`), so a
name that resolves public when checked and private a moment later (DNS rebinding) cannot slip
through. `TRACKER_ALLOW_TARGETS` (CIDR list) lets an operator allow private receivers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Lookup = Callable[[str, int], Awaitable[list[str]]]

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NUMERIC = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
# Not public, whatever `is_global` of this Python says about them.
NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "2001:db8::/32",
        "100::/64",
    )
)


class TargetRefused(OSError):
    """An address that is not public (or a URL we do not send to); the message says why and
    names the host, never a path or a secret. An OSError, so that aiohttp reports it as a
    connection failure of the send."""


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in n for n in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def why_not_public(address: IPAddress) -> str | None:
    """None when the address is public; else what it is."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = why_not_public(inner)
        return f"{reason} ({inner}, written as {address})" if reason else None
    if any(address in n for n in NOT_PUBLIC) or not address.is_global:
        for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
            if getattr(address, f"is_{kind}"):
                return f"a {kind.replace('_', '-')} address"
        return "not a public address"
    if address.is_multicast:
        return "a multicast address"
    return None


def refusal(address: IPAddress, allowed: Sequence[Network]) -> str | None:
    if any(address.version == n.version and address in n for n in allowed):
        return None
    reason = why_not_public(address)
    return f"{address} is {reason}" if reason else None


async def system_lookup(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve(
    host: str, port: int, allowed: Sequence[Network], lookup: Lookup = system_lookup
) -> list[IPAddress]:
    """Every address `host` resolves to, all of them public (or allowed), or TargetRefused."""
    try:
        found = await lookup(host.strip("[]"), port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve ({exc.__class__.__name__})") from None
    if not found:
        raise TargetRefused(f"{host} does not resolve")
    addresses = [ipaddress.ip_address(a.partition("%")[0]) for a in found]
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            shown = "" if str(address) == host.strip("[]") else f"{host} resolves to "
            raise TargetRefused(f"{shown}{reason}: not a public target")
    return addresses


def check_url(url: str, allowed: Sequence[Network]) -> URL:
    """A target URL's shape: http(s), a host, no credentials. http only to an allowed network
    (checked again on the addresses by `resolve`)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise TargetRefused("not a URL") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise TargetRefused("must be an https:// URL with a host")
    if parsed.user or parsed.password:
        raise TargetRefused("credentials in the URL are not accepted")
    if parsed.scheme == "http" and not allowed:
        raise TargetRefused("must be https (http only to a receiver the operator allows)")
    return parsed


async def check_target(
    url: str, allowed: Sequence[Network], lookup: Lookup = system_lookup
) -> list[IPAddress]:
    """What creation and every send ask: this URL is one we may send to, now."""
    parsed = check_url(url, allowed)
    assert parsed.host is not None and parsed.port is not None
    addresses = await resolve(parsed.host, parsed.port, allowed, lookup)
    if parsed.scheme == "http" and not all(
        any(a.version == n.version and a in n for n in allowed) for a in addresses
    ):
        raise TargetRefused("must be https (http only to a receiver the operator allows)")
    return addresses


def literal(host: str) -> IPAddress | None:
    """The address a host names by itself: an IP literal, or an IPv4 number in a form the C
    library reads as one (`2130706433`, `0x7f.1`, `017700000001`, `127.1`); None for a name."""
    text = host.strip("[]").partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if NUMERIC.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def check_literal(url: str, allowed: Sequence[Network]) -> None:
    """At a send: the URL's shape, and its host when it is an address (aiohttp connects to an
    address without asking the resolver; a name is checked by GuardedResolver at the
    connect, so the address checked is the address connected to)."""
    parsed = check_url(url, allowed)
    assert parsed.host is not None
    address = literal(parsed.host)
    if address is None:
        return
    reason = refusal(address, allowed)
    if reason is not None:
        raise TargetRefused(f"{reason}: not a public target")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for user targets: the addresses it hands the connector are the ones
    it checked, so the connection goes where the check said."""

    def __init__(self, allowed: Sequence[Network], lookup: Lookup = system_lookup) -> None:
        self.allowed = tuple(allowed)
        self.lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve(host, port, self.allowed, self.lookup)
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET if a.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


def describe(exc: Any) -> str:
    """A failed send's short reason: the guard's own words, else the exception's class."""
    cause = exc
    while cause is not None:
        if isinstance(cause, TargetRefused):
            return str(cause)
        cause = getattr(cause, "os_error", None) or cause.__cause__
    return str(exc.__class__.__name__)
