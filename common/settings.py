"""One settings model for every process, read from the environment (see README and .env.example)."""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.errors import TrackerError
from common.sealed import key_bytes

KNOWN_SOURCES = ("bitfinex", "cryptowatch")
CCXT_SOURCE = re.compile(r"^ccxt:[a-z0-9_]{2,40}$")  # any exchange ccxt knows (optional extra)


def _split(value: object) -> object:
    """Accept a comma or space separated string for list settings."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


class Settings(BaseSettings):
    """Configuration of the fetcher, the service and the alerter.

    Built in each `__main__` (or `create_app(settings)`), never at import time.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRACKER_", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    # The SDK's own variables: no TRACKER_ prefix.
    aws_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "aws_endpoint_url")
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "aws_region"),
    )
    aws_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "aws_access_key_id")
    )
    aws_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    )

    table_prefix: str = Field(default="tracker", pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    sources: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["bitfinex"])
    bitfinex_url: str = "https://api-pub.bitfinex.com"
    cryptowatch_url: str = "https://api.cryptowat.ch"
    # Points every ccxt source's public API at another base (the demo exchange, a proxy).
    ccxt_url: str | None = None
    fetch_interval: int = Field(default=60, ge=1, le=3600)
    # Seconds one HTTP request to an exchange may take before it is retried.
    fetch_timeout: float = Field(default=10.0, gt=0)
    retention: int = Field(default=604800, ge=60)
    rank_window: int = Field(default=86400, ge=1)
    alert_multiplier: float = Field(default=3.0, gt=0)
    alert_window: int = Field(default=3600, ge=1)
    alert_min_points: int | None = Field(default=None, ge=1)
    alert_cooldown: int = Field(default=3600, ge=0)
    notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Cross-market figures: a constituent whose price and volume have not changed for this
    # many seconds is stale; one more than this percent from the others' median an outlier.
    stale_after: int = Field(default=3600, ge=1)
    outlier_percent: float = Field(default=10.0, gt=0, lt=900)
    # Origins a browser may call the API from (CORS); empty means CORS stays off.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds the service waits for one DynamoDB read before it answers from what it holds
    # (or 503); not retried.
    read_timeout: float = Field(default=1.0, gt=0, le=30)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Points kept in memory while DynamoDB is unreachable, in ticks (default: one day).
    buffer_ticks: int = Field(default=1440, ge=60)
    # Where the fetcher keeps on disk what it fetched but has not written yet (fetcher/spool.py).
    spool_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "tracker-spool")
    # Where the alerter keeps its state checkpoint, so that a restart resumes in seconds
    # instead of reading every window back from the table (alerter/checkpoint.py).
    state_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "tracker-state")
    # Seconds between two state checkpoints (one is also written at every clean stop).
    checkpoint_interval: float = Field(default=30.0, gt=0)
    # After a restart, refill from Bitfinex candles a gap of up to this many seconds (0: off).
    backfill_max_gap: int = Field(default=0, ge=0)
    # Users' alerts. The key that seals channel secrets at rest (32 bytes, URL-safe base64;
    # `tracker up` makes one under var/ at first start; on AWS it comes from the secret store).
    secret_key: SecretStr | None = None
    # The operator's mail server for `email` channels, an apprise mailto URL.
    smtp_url: SecretStr | None = None
    # Networks (CIDR) user targets may reach although not public: a receiver on the LAN.
    allow_targets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds a delivery is retried before it is `failed`.
    delivery_max_age: int = Field(default=3600, ge=10)
    max_rules: int = Field(default=100, ge=0)
    max_channels: int = Field(default=10, ge=0)
    # Deliveries per user per hour; beyond, `suppressed`.
    max_notifications: int = Field(default=60, ge=0)
    # Requests per key per minute on /me.
    rate_limit: int = Field(default=600, ge=1)
    rule_max_window: int = Field(default=86400, ge=60)
    log_level: str = "INFO"
    # Names this process's stream leases: a restarted alerter with the same id resumes its
    # shards at once; replicas need distinct ids (the container's hostname by default).
    worker_id: str = Field(default_factory=socket.gethostname)

    _split_lists = field_validator(
        "sources", "notify_urls", "cors_origins", "allow_targets", mode="before"
    )(_split)

    @field_validator("allow_targets")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR network: {cidr!r}") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            key_bytes(value.get_secret_value())
        return value

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in KNOWN_SOURCES and not CCXT_SOURCE.match(s)]
        if unknown:
            raise ValueError(
                f"unknown source(s) {unknown}; "
                f"known: {', '.join(KNOWN_SOURCES)}, ccxt:<exchange id>"
            )
        if not value:
            raise ValueError("at least one source is needed")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.rank_window > self.retention:
            raise ValueError("TRACKER_RANK_WINDOW cannot exceed TRACKER_RETENTION")
        if self.alert_window > self.retention:
            raise ValueError("TRACKER_ALERT_WINDOW cannot exceed TRACKER_RETENTION")
        if self.aws_endpoint_url and not self.aws_access_key_id:
            # DynamoDB Local accepts any credentials but the SDK insists on having some.
            self.aws_access_key_id = "local"
            self.aws_secret_access_key = self.aws_secret_access_key or "local"
        return self

    @property
    def min_points(self) -> int:
        """Fewest points in the alert window for a verdict: half the ticks it holds by default."""
        if self.alert_min_points is not None:
            return self.alert_min_points
        return max(1, self.alert_window // self.fetch_interval // 2)

    def table(self, name: str) -> str:
        return f"{self.table_prefix}-{name}"

    @property
    def _file_stem(self) -> str:
        return f"{self.table_prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', self.worker_id)}"

    @property
    def spool_file(self) -> Path:
        """This fetcher's spool: one per table prefix and worker."""
        return self.spool_dir / f"{self._file_stem}.jsonl"

    @property
    def figures_state_file(self) -> Path:
        """This fetcher's cross-market memory (staleness, outliers), beside its spool."""
        return self.spool_dir / f"{self._file_stem}.figures.json"

    def sealing_key(self) -> bytes:
        """The bytes of `TRACKER_SECRET_KEY`, or ConfigError: channels need it."""
        if self.secret_key is None:
            raise ConfigError(
                "TRACKER_SECRET_KEY is not set: channel secrets are sealed under it "
                "(`tracker up` makes one under var/; elsewhere, 32 random bytes in URL-safe "
                "base64, e.g. from `python -c 'import secrets,base64;"
                "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'`)"
            )
        return key_bytes(self.secret_key.get_secret_value())

    @property
    def state_file(self) -> Path:
        """This alerter's state checkpoint: one per table prefix and worker."""
        return self.state_dir / f"{self._file_stem}.state"


class ConfigError(TrackerError):
    """The environment holds a setting that cannot work; the message names each variable."""


# Values never echoed back in an error message: they may carry credentials.
_SECRET_FIELDS = {
    "notify_urls",
    "aws_access_key_id",
    "aws_secret_access_key",
    "secret_key",
    "smtp_url",
}


def variable(field: str) -> str:
    """The environment variable behind a settings field (`sources` → `TRACKER_SOURCES`)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"TRACKER_{field.upper()}"


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the variable to fix and, unless secret, its value."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        field = str(problem["loc"][0]) if problem["loc"] else None
        if field in Settings.model_fields:
            assert field is not None
            shown = "" if field in _SECRET_FIELDS else f" (got {problem['input']!r})"
            lines.append(f"{variable(field)}: {message}{shown}")
        else:
            lines.append(message)
    return "bad configuration: " + "; ".join(lines)


def load_settings() -> Settings:
    """The settings from the environment, or ConfigError saying which variable is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def load_or_exit(prog: str) -> Settings:
    """The settings, or one line naming each bad variable on stderr and exit status 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
