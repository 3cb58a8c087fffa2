"""`/me`: who the key belongs to, and the alerts and deliveries of that user's rules.

Every route under `/me` takes the caller from the Bearer key (service/auth.py) and reads only
that user's partition: another user's id is not found, the same as an id that never existed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from common.ticks import iso
from service.accounts import AccountsDep
from service.auth import CallerDep
from service.errors import Invalid
from service.me_schemas import DeliveryList, DeliveryOut, Limits, Me, UserAlertList, UserAlertOut
from service.routes.symbols import time_param

router = APIRouter(tags=["me"])
Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {
    401: {"description": "No key, or a malformed, unknown or revoked one"},
    429: {"description": "Over TRACKER_RATE_LIMIT for this key (see Retry-After)"},
}
# Routes with a body: what the body itself may be refused for, before anything else.
BODY: Responses = {
    400: {"description": "The body is not JSON"},
    413: {"description": "The body is over 16 KiB"},
}
RULE_ID = r"^rl_[0-9a-f]{16}$"
ID_TEXT = Annotated[str, Query(max_length=200)]


def within(count: int, limit: int, what: str, setting: str) -> None:
    """A per-user quota: `422` naming the setting once `count` has reached it."""
    if count >= limit:
        raise Invalid(what, f"{setting} reached: {limit} {what} per user", where="body")


@router.get("/me", response_model=Me, operation_id="me", responses=UNAUTHORIZED)
async def me(caller: CallerDep, accounts: AccountsDep) -> Me:
    """The key's user, how many rules and channels it has, and the limits that apply."""
    s = accounts.settings
    rules = await accounts.listed.of_user(caller.user)
    channels = await accounts.channels.of_user(caller.user) if accounts.sealed else []
    return Me(
        user=caller.user,
        key_id=caller.key_id,
        rules=len(rules),
        channels=len(channels),
        limits=Limits(
            max_rules=s.max_rules,
            max_channels=s.max_channels,
            max_notifications=s.max_notifications,
            rate_limit=s.rate_limit,
            rule_max_window=s.rule_max_window,
        ),
    )


@router.get("/me/alerts", response_model=UserAlertList, responses=UNAUTHORIZED)
async def my_alerts(
    caller: CallerDep,
    accounts: AccountsDep,
    rule: Annotated[str | None, Query(description="Only this rule's", pattern=RULE_ID)] = None,
    since: Annotated[str | None, Query(description="Only alerts at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UserAlertList:
    """The alerts of your rules, newest first."""
    start = time_param("since", since)
    found = await accounts.deliveries.list_alerts(
        caller.user, rule, None if start is None else int(start), limit
    )
    return UserAlertList(alerts=[UserAlertOut(**a.public()) for a in found])


@router.get("/me/deliveries", response_model=DeliveryList, responses=UNAUTHORIZED)
async def my_deliveries(
    caller: CallerDep,
    accounts: AccountsDep,
    alert: Annotated[str | None, Query(description="Only this alert's", max_length=200)] = None,
    status: Annotated[
        str | None, Query(description="pending, delivered, failed or suppressed")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Each (alert, channel) delivery of your alerts, newest first."""
    if status is not None and status not in ("pending", "delivered", "failed", "suppressed"):
        raise Invalid("status", "one of pending, delivered, failed, suppressed")
    found = await accounts.deliveries.list_deliveries(caller.user, alert, status, limit)
    return DeliveryList(
        deliveries=[
            DeliveryOut(
                **(d.public() | {"delivered_at": iso(d.delivered_at) if d.delivered_at else None})
            )
            for d in found
        ]
    )
