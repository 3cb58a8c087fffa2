"""Sending one message to one channel: the HTTP kinds through one guarded aiohttp session,
e-mail and the house rule's URLs through apprise (restricted to the schemas they need).

What comes back is an `Outcome`: delivered or not, the receiver's status, a short error of our
own words (never the receiver's body, never a URL path or a token), and for a failure whether
trying again can help. Webhooks are Standard Webhooks, signed by the `standardwebhooks` package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import apprise
from standardwebhooks.webhooks import Webhook
from yarl import URL

from common.channels import Channel, target_url
from common.targets import (
    GuardedResolver,
    Lookup,
    Network,
    TargetRefused,
    check_literal,
    check_target,
    describe,
    system_lookup,
)

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
PER_HOST = 4  # sends in flight to one host at most
MAX_RETRY_AFTER = 3600.0
EMAIL_SCHEMAS = ("mailto", "mailtos")


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: int | None = None
    error: str | None = None
    retry: bool = True  # False: trying again cannot help (refused target, gone, no channel)
    gone: bool = False  # the receiver answered 410: disable the channel
    retry_after: float | None = None


def restrict_apprise(schemas: tuple[str, ...]) -> None:
    """Process-wide: apprise loads no plugin but those of `schemas` (e-mail, and whatever the
    operator's TRACKER_NOTIFY_URLS use), so no built URL can reach any other plugin."""
    from apprise.manager_plugins import NotificationManager

    NotificationManager().enable_only(*schemas)  # type: ignore[no-untyped-call]


def unrestrict_apprise() -> None:
    """Every plugin apprise has back (a process that ran a delivery worker in-process, as
    the tests do, and goes on to use apprise for something else)."""
    from apprise.manager_plugins import NotificationManager

    manager = NotificationManager()  # type: ignore[no-untyped-call]
    manager.enable_only(*manager.schemas())  # type: ignore[no-untyped-call]


def schemas_of(urls: list[str]) -> tuple[str, ...]:
    return tuple(sorted({u.partition("://")[0].lower() for u in urls if "://" in u}))


def retry_after(header: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date), capped."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def session(allowed: tuple[Network, ...], lookup: Lookup = system_lookup) -> aiohttp.ClientSession:
    """The one session user targets are reached through: its resolver checks every address
    it hands the connector (a rebinding name cannot switch address after the check), at
    most PER_HOST connections per host, no cookies kept, no proxy from the environment."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allowed, lookup), limit_per_host=PER_HOST, use_dns_cache=False
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


def signed_headers(secret: str, message_id: str, body: str, now: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


def request_of(
    channel: Channel, message_id: str, payload: dict[str, Any]
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of one message to an HTTP channel."""
    text = payload["text"]
    kind, fields = channel.kind, channel.fields
    url = target_url(kind, fields)
    assert url is not None
    if kind == "webhook":
        assert channel.secret is not None
        body = json.dumps(payload["webhook"], separators=(",", ":"))
        return (
            url,
            signed_headers(channel.secret, message_id, body, datetime.now(UTC)),
            body.encode(),
        )
    if kind == "ntfy":
        headers = {"Title": payload["title"].encode("ascii", "replace").decode()}
        return url, headers, text.encode()
    json_body = {"slack": {"text": text}, "discord": {"content": text[:2000]}}.get(
        kind, {"chat_id": fields.get("chat_id"), "text": text}
    )
    return url, {"content-type": "application/json"}, json.dumps(json_body).encode()


async def send_http(
    http: aiohttp.ClientSession,
    channel: Channel,
    message_id: str,
    payload: dict[str, Any],
    allowed: tuple[Network, ...],
) -> Outcome:
    try:
        url, headers, body = request_of(channel, message_id, payload)
        check_literal(url, allowed)
        async with http.post(
            URL(url, encoded=False), data=body, headers=headers, allow_redirects=False
        ) as response:
            status = response.status
            wait = retry_after(response.headers.get("Retry-After"))
    except TargetRefused as exc:
        return Outcome(False, None, str(exc), retry=False)
    except aiohttp.InvalidURL:
        return Outcome(False, None, "not a URL this tracker sends to", retry=False)
    except aiohttp.ClientConnectorError as exc:
        reason = describe(exc)
        return Outcome(False, None, reason, retry="not a public" not in reason)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Outcome(False, None, describe(exc))
    if 200 <= status < 300:
        return Outcome(True, status)
    if status == 410:
        return Outcome(False, status, "the receiver answered 410 Gone", retry=False, gone=True)
    if 300 <= status < 400:
        return Outcome(False, status, f"HTTP {status}: redirects are not followed")
    return Outcome(False, status, f"HTTP {status}", retry_after=wait)


def check_house_urls(urls: list[str]) -> None:
    """Every TRACKER_NOTIFY_URLS entry is one apprise can send to; else ValueError naming the
    entry's scheme only (the rest may hold a token)."""
    for url in urls:
        if not apprise.Apprise().add(url):
            scheme = url.partition("://")[0] if "://" in url else "?"
            raise ValueError(f"not a notification URL apprise understands: {scheme}://…")


def apprise_label(url: str) -> str:
    """An apprise URL as apprise masks it (tokens cut to their first and last character), with
    no query and no credentials: safe for logs."""
    from common.log import redact

    channel = apprise.Apprise()
    if not channel.add(url):
        return url.partition("://")[0] + "://…"
    masked: str = channel[0].url(privacy=True)  # type: ignore[no-untyped-call]
    return redact(masked.partition("?")[0])


def email_url(smtp_url: str, to: str) -> str:
    joiner = "&" if "?" in smtp_url else "?"
    return f"{smtp_url}{joiner}to={quote(to, safe='@')}"


async def send_apprise(url: str, title: str, body: str) -> Outcome:
    """One message through apprise (e-mail, the house rule's URLs)."""
    channel = apprise.Apprise()
    if not channel.add(url):
        return Outcome(False, None, "not a notification URL this tracker sends to", retry=False)
    if await channel.async_notify(body=body, title=title):
        return Outcome(True)
    return Outcome(False, None, "refused or unreachable")


async def send_email(
    smtp_url: str | None, channel: Channel, payload: dict[str, Any], allowed: tuple[Network, ...]
) -> Outcome:
    if not smtp_url:
        return Outcome(False, None, "no TRACKER_SMTP_URL: e-mail is not configured", retry=False)
    host = URL(smtp_url.replace("mailtos://", "https://", 1).replace("mailto://", "http://", 1))
    try:
        await check_target(f"https://{host.host}", allowed)
    except TargetRefused as exc:
        return Outcome(False, None, f"mail server: {exc}", retry=False)
    return await send_apprise(
        email_url(smtp_url, channel.fields["to"]), payload["title"], payload["text"]
    )


async def send(
    http: aiohttp.ClientSession,
    channel: Channel,
    message_id: str,
    payload: dict[str, Any],
    allowed: tuple[Network, ...],
    smtp_url: str | None,
) -> Outcome:
    if channel.kind == "email":
        return await send_email(smtp_url, channel, payload, allowed)
    return await send_http(http, channel, message_id, payload, allowed)
