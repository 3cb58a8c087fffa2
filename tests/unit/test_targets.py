"""The target guard against the addresses an attacker tries: each refused when checked and
when sent to, a name that rebinds between the check and the send refused at the connect, a
redirect never followed."""

from __future__ import annotations

import ipaddress
from typing import Any

import aiohttp
import pytest

from common.channels import Channel
from common.senders import send_http, session
from common.targets import TargetRefused, check_target, networks, why_not_public
from tests.helpers.receiver import receiving

CORPUS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/",
    "http://localhost/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://169.254.169.254/",
    "http://100.64.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
]
ALLOW_ALL_HTTP = networks(["203.0.113.7/32"])  # http allowed in principle: the address decides


def hook(url: str) -> Channel:
    return Channel(
        "ch_0123456789abcdef", "u", "n", "webhook", {"url": url}, 0.0, None, "whsec_" + "A" * 32
    )


@pytest.mark.parametrize("url", CORPUS)
async def test_each_private_address_is_refused_when_checked(url: str) -> None:
    with pytest.raises(TargetRefused, match=r"not a public target|must be https"):
        await check_target(url, ALLOW_ALL_HTTP)
    with pytest.raises(TargetRefused, match="not a public target"):
        await check_target(url.replace("http://", "https://"), ())


@pytest.mark.parametrize("url", CORPUS)
async def test_each_private_address_is_refused_when_sent_to(url: str) -> None:
    async with session(ALLOW_ALL_HTTP) as http:
        outcome = await send_http(
            http, hook(url), "id", {"text": "t", "title": "t", "webhook": {}}, ALLOW_ALL_HTTP
        )
    assert not outcome.delivered and not outcome.retry
    assert outcome.error is not None and "not a public target" in outcome.error


def test_public_and_embedded_forms() -> None:
    assert why_not_public(ipaddress.ip_address("93.184.216.34")) is None
    assert why_not_public(ipaddress.ip_address("2606:4700::1111")) is None
    assert "169.254.169.254" in str(why_not_public(ipaddress.ip_address("64:ff9b::a9fe:a9fe")))
    assert why_not_public(ipaddress.ip_address("::ffff:8.8.8.8")) is None


async def test_a_name_that_rebinds_after_the_check_is_refused_at_the_connect() -> None:
    """Public when checked, loopback when the connection is made: the resolver the
    connection uses checks again and refuses, so nothing reaches the loopback receiver."""
    async with receiving("127.0.0.1") as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])

        async def rebinding(host: str, _port: int) -> list[str]:
            return next(answers)

        url = f"https://rebind.example:{port}/hook"
        await check_target(url, (), rebinding)  # the check at creation passes
        async with session((), rebinding) as http:
            channel = hook(url)
            # the send's own check sees the private answer ...
            outcome = await send_http(
                http, channel, "id", {"text": "t", "title": "t", "webhook": {}}, ()
            )
            assert not outcome.delivered and "not a public target" in str(outcome.error)
        # ... and a connect that skipped it would be refused by the resolver itself
        answers = iter([["127.0.0.1"]])
        async with session((), rebinding) as http:
            with pytest.raises(aiohttp.ClientError) as refused:
                await http.post(url, data=b"{}")
            assert "not a public target" in repr(refused.value.__dict__) + str(refused.value)
        assert receiver.got == []


async def test_a_redirect_to_loopback_is_not_followed() -> None:
    allowed = networks(["127.0.0.2/32"])
    async with receiving("127.0.0.1") as inside, receiving("127.0.0.2") as outside:
        outside.redirect_to = inside.url
        async with session(allowed) as http:
            outcome = await send_http(
                http,
                hook(outside.url),
                "id",
                {"text": "t", "title": "t", "webhook": {"x": 1}},
                allowed,
            )
        assert (
            not outcome.delivered and outcome.status == 302 and "not followed" in str(outcome.error)
        )
        assert len(outside.got) == 1 and inside.got == []


async def test_the_allow_list_admits_only_its_network() -> None:
    allowed = networks(["127.0.0.2/32"])
    addresses: Any = await check_target("http://127.0.0.2:9/", allowed)
    assert [str(a) for a in addresses] == ["127.0.0.2"]
    with pytest.raises(TargetRefused):
        await check_target("http://127.0.0.1:8000/", allowed)
