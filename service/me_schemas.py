"""Request and answer models of the `/me` routes (users' channels, rules, alerts, deliveries).

Requests forbid unknown fields, so a misspelt field is a `422` naming it, never ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Strict = ConfigDict(extra="forbid")


def plain_text(value: str) -> str:
    """Text a JSON answer can carry back: valid Unicode (no lone surrogates), no controls."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("control characters are not allowed")
    return value


Plain = AfterValidator(plain_text)
Name = Annotated[str, Field(min_length=1, max_length=64, description="Your name for it"), Plain]
ChannelRef = Annotated[str, Field(pattern=r"^ch_[0-9a-f]{16}$", description="A channel's id")]
Text = Annotated[str, Field(min_length=1, max_length=2048), Plain]


class Limits(BaseModel):
    max_rules: int
    max_channels: int
    max_notifications: int = Field(description="Deliveries per hour; beyond, `suppressed`")
    rate_limit: int = Field(description="Requests per key per minute")
    rule_max_window: int = Field(description="Longest rule window, seconds")


class Me(BaseModel):
    user: str
    key_id: str
    rules: int
    channels: int
    limits: Limits


class WebhookIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["webhook"]
    url: Text = Field(
        description="https URL (http only to a receiver the operator allows)",
        examples=["https://hooks.example.com/tracker"],
    )


class SlackIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["slack"]
    url: Text = Field(description="An incoming-webhook URL, https://hooks.slack.com/services/…")


class DiscordIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["discord"]
    url: Text = Field(description="A channel webhook URL, https://discord.com/api/webhooks/…")


class TelegramIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["telegram"]
    bot_token: Text
    chat_id: Annotated[str, Field(min_length=1, max_length=40)]


class EmailIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["email"]
    to: Annotated[
        str,
        Field(
            min_length=3, max_length=254, description="Sent through the operator's TRACKER_SMTP_URL"
        ),
    ]


class NtfyIn(BaseModel):
    model_config = Strict
    name: Name
    kind: Literal["ntfy"]
    topic: Annotated[str, Field(min_length=1, max_length=64)]
    server: Text | None = Field(default=None, description="Default https://ntfy.sh")


ChannelIn = Annotated[
    WebhookIn | SlackIn | DiscordIn | TelegramIn | EmailIn | NtfyIn, Field(discriminator="kind")
]


class ChannelOut(BaseModel):
    id: str
    name: str
    kind: str
    target: str = Field(description="Where it sends, masked: no path, token or secret")
    created: str
    disabled: bool
    disabled_reason: str | None


class ChannelCreated(ChannelOut):
    fields: dict[str, str] = Field(description="The fields as given: shown this once only")
    secret: str | None = Field(
        default=None, description="webhook: the Standard Webhooks signing secret, shown once"
    )


class ChannelList(BaseModel):
    channels: list[ChannelOut]


class TestResult(BaseModel):
    delivered: bool
    status: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None = Field(description="Why not, in our words (never the receiver's body)")


class Condition(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["crosses_above", "crosses_below", "change", "average_multiple"]


CONDITION_DOC = (
    "crosses_above/crosses_below {level}; change {percent, window, direction: up|down|any}; "
    "average_multiple {multiple, window, min_points, direction: above|below}"
)


class RuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "BTC over 100k",
                    "exchange": "bitfinex",
                    "symbol": "btcusd",
                    "condition": {"kind": "crosses_above", "level": 100000},
                    "repeat": "once",
                    "cooldown": 3600,
                }
            ]
        },
    )
    name: Name
    exchange: Annotated[str, Field(min_length=1, max_length=64, examples=["bitfinex"])]
    symbol: Annotated[str, Field(min_length=1, max_length=97, examples=["btcusd"])]
    metric: Literal["price", "volume"] = "price"
    condition: dict[str, Any] = Field(
        description=CONDITION_DOC, examples=[{"kind": "crosses_above", "level": 100000}]
    )
    repeat: Literal["once", "rearm"] = "once"
    cooldown: Annotated[int, Field(ge=0, le=31_536_000)] = 3600
    expires: str | int | None = Field(default=None, description="ISO-8601 or epoch seconds")
    channels: Annotated[list[ChannelRef], Field(max_length=10)] = []


class RulePatch(BaseModel):
    model_config = Strict
    name: Name | None = None
    exchange: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    symbol: Annotated[str, Field(min_length=1, max_length=97)] | None = None
    metric: Literal["price", "volume"] | None = None
    condition: dict[str, Any] | None = Field(default=None, description=CONDITION_DOC)
    repeat: Literal["once", "rearm"] | None = None
    cooldown: Annotated[int, Field(ge=0, le=31_536_000)] | None = None
    expires: str | int | None = None
    channels: Annotated[list[ChannelRef], Field(max_length=10)] | None = None
    paused: bool | None = None


class RuleOut(BaseModel):
    id: str
    name: str
    exchange: str
    symbol: str
    metric: str
    condition: dict[str, Any]
    repeat: str
    cooldown: int
    expires: str | None
    channels: list[str]
    paused: bool
    state: Literal["armed", "fired", "done", "expired", "paused"]
    fired: int
    last_fired: str | None
    created: str


class RuleList(BaseModel):
    rules: list[RuleOut]


class UserAlertOut(BaseModel):
    id: str = Field(description="{rule id}:{epoch seconds of the tick}")
    rule: str
    exchange: str
    symbol: str
    metric: str
    time: str
    value: float
    reference: float | None = Field(description="The level, the baseline b, or mean(W)")
    condition: dict[str, Any]


class UserAlertList(BaseModel):
    alerts: list[UserAlertOut]


class DeliveryOut(BaseModel):
    alert: str
    channel: str
    status: Literal["pending", "delivered", "failed", "suppressed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: str | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
