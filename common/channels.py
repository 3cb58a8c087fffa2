"""Channels: the kinds a user may create, their fields checked, their secrets named, and the
masked target every answer shows. Pure: the store seals, the notifier sends.

The server builds each delivery target from these fields; a user never gives a raw apprise
URL, and Slack, Discord and Telegram are reached at their own fixed hosts only.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final, Literal

from yarl import URL

Kind = Literal["webhook", "slack", "discord", "telegram", "email", "ntfy"]
KINDS: Final[tuple[Kind, ...]] = ("webhook", "slack", "discord", "telegram", "email", "ntfy")
FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # kind: (required fields, optional fields)
    "webhook": (("url",), ()),
    "slack": (("url",), ()),
    "discord": (("url",), ()),
    "telegram": (("bot_token", "chat_id"), ()),
    "email": (("to",), ()),
    "ntfy": (("topic",), ("server",)),
}
NTFY_DEFAULT = "https://ntfy.sh"
SLACK_HOST = "hooks.slack.com"
DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com"})
TELEGRAM_API = "https://api.telegram.org"
MAX_FIELD = 2048
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
TOKEN_RE = re.compile(r"^[0-9]{3,15}:[A-Za-z0-9_-]{20,80}$")
CHAT_RE = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{4,32})$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SLACK_PATH = re.compile(r"^/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
DISCORD_PATH = re.compile(r"^/api/webhooks/[0-9]{5,30}/[A-Za-z0-9_-]{20,100}$")


class FieldError(ValueError):
    """A field of a channel that cannot be used: names the field, never echoes its value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _https(field_name: str, text: str, hosts: frozenset[str], path: re.Pattern[str]) -> str:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise FieldError(field_name, "not a URL") from None
    if url.scheme != "https" or url.host not in hosts or url.user or url.port != 443:
        raise FieldError(field_name, f"must be an https://{min(hosts)}/… URL")
    if not path.match(url.path) or url.query_string or url.fragment:
        raise FieldError(field_name, "is not an incoming-webhook URL of that service")
    return str(url)


def check_fields(kind: str, given: dict[str, Any]) -> dict[str, str]:
    """The channel's fields, normalised, or FieldError naming the first bad one. The target
    guard (common/targets.py) then checks webhook and ntfy addresses."""
    if kind not in FIELDS:
        raise FieldError("kind", f"unknown kind; one of {', '.join(KINDS)}")
    required, optional = FIELDS[kind]
    for name in given:
        if name not in required and name not in optional:
            raise FieldError(name, f"not a field of a {kind} channel")
    fields: dict[str, str] = {}
    for name in (*required, *optional):
        value = given.get(name)
        if value is None:
            if name in required:
                raise FieldError(name, "field required")
            continue
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
            raise FieldError(name, f"must be a text of 1 to {MAX_FIELD} characters")
        fields[name] = value.strip()
    if kind == "slack":
        fields["url"] = _https("url", fields["url"], frozenset({SLACK_HOST}), SLACK_PATH)
    elif kind == "discord":
        fields["url"] = _https("url", fields["url"], DISCORD_HOSTS, DISCORD_PATH)
    elif kind == "telegram":
        if not TOKEN_RE.match(fields["bot_token"]):
            raise FieldError("bot_token", "is not a Telegram bot token (digits:letters)")
        if not CHAT_RE.match(fields["chat_id"]):
            raise FieldError("chat_id", "is not a Telegram chat id (a number or @channel)")
    elif kind == "email":
        if not EMAIL_RE.match(fields["to"]):
            raise FieldError("to", "is not an e-mail address")
    elif kind == "ntfy":
        if not TOPIC_RE.match(fields["topic"]):
            raise FieldError("topic", "letters, digits, - and _ only (1 to 64)")
        fields["server"] = fields.get("server", NTFY_DEFAULT).rstrip("/")
    return fields


def target_url(kind: str, fields: dict[str, str]) -> str | None:
    """The URL a send goes to (None: e-mail, sent through the operator's SMTP server)."""
    if kind in ("webhook", "slack", "discord"):
        return fields["url"]
    if kind == "telegram":
        return f"{TELEGRAM_API}/bot{fields['bot_token']}/sendMessage"
    if kind == "ntfy":
        return f"{fields['server']}/{fields['topic']}"
    return None


def guarded_url(kind: str, fields: dict[str, str]) -> str | None:
    """The user-chosen address the target guard must check (fixed hosts need none)."""
    if kind == "webhook":
        return fields["url"]
    if kind == "ntfy":
        return fields["server"]
    return None


def _mask(text: str) -> str:
    return text[:2] + "…" + text[-2:] if len(text) > 6 else "…"


def masked(kind: str, fields: dict[str, str]) -> str:
    """What every answer after the creation shows: the host, never a path, token or secret."""
    if kind in ("webhook", "slack", "discord"):
        url = URL(fields["url"])
        port = "" if url.is_default_port() else f":{url.port}"
        return f"{url.scheme}://{url.host}{port}/…"
    if kind == "telegram":
        return f"telegram chat {_mask(fields['chat_id'])}"
    if kind == "email":
        local, _, domain = fields["to"].partition("@")
        return f"{local[:1]}…@{domain}"
    return f"{URL(fields['server']).host}/{_mask(fields['topic'])}"


@dataclass(frozen=True)
class Channel:
    id: str
    user: str
    name: str
    kind: str
    fields: dict[str, str]  # opened: only the notifier and the creating answer see them
    created: float
    disabled: str | None = None  # why the channel no longer sends (a 410 from the receiver)
    secret: str | None = None  # webhooks: the signing secret

    @property
    def target(self) -> str:
        return masked(self.kind, self.fields)

    def public(self) -> dict[str, Any]:
        """The answer after creation: no field values, only the masked target."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "created": self.created,
            "disabled": self.disabled is not None,
            "disabled_reason": self.disabled,
        }
