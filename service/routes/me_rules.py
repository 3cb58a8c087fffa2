"""`/me/rules`: a user's rules on any stored market. A change reaches the alerter within about
a second (it follows the rules' change index)."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from common.conditions import Terms
from common.errors import NotFound
from common.models import EXCHANGE_RE, SYMBOL_RE, Market
from common.rules import Rule, RuleError, condition_of, metric_of
from common.rules_store import new_rule_id
from common.ticks import iso
from service.accounts import Accounts, AccountsDep
from service.auth import Caller, CallerDep
from service.deps import StateDep
from service.errors import Invalid
from service.me_schemas import RuleIn, RuleList, RuleOut, RulePatch
from service.routes.me import BODY, RULE_ID, UNAUTHORIZED, Responses, within
from service.routes.symbols import time_param

router = APIRouter(tags=["me"])
RuleId = Annotated[str, Path(pattern=RULE_ID, description="A rule's id (rl_…)")]
NOT_FOUND: Responses = {404: {"description": "No such rule of yours"}}
RESETS = {"exchange", "symbol", "metric", "condition", "repeat"}


def out(rule: Rule, now: float | None = None) -> RuleOut:
    shown: dict[str, Any] = rule.public(time.time() if now is None else now)
    shown["expires"] = iso(shown["expires"]) if shown["expires"] is not None else None
    shown["last_fired"] = iso(shown["last_fired"]) if shown["last_fired"] is not None else None
    shown["created"] = iso(shown["created"])
    return RuleOut(**shown)


async def _market(state: StateDep, exchange: str, symbol: str) -> Market:
    exchange, symbol = exchange.strip().lower(), symbol.strip().lower()
    if not EXCHANGE_RE.match(exchange):
        raise Invalid("exchange", "malformed exchange", where="body")
    if not SYMBOL_RE.match(symbol):
        raise Invalid("symbol", "malformed symbol: e.g. btcusd, testbtc:testusd", where="body")
    market = Market(exchange, symbol)
    snapshot = await state.snapshots.get()
    known = snapshot is not None and market in snapshot.by_market()
    if not known and await state.store.latest_point(market) is None:
        raise Invalid(
            "symbol", f"unknown market: nothing stored for {symbol} on {exchange}", where="body"
        )
    return market


async def _channels(accounts: Accounts, caller: Caller, ids: list[str]) -> tuple[str, ...]:
    for i, channel_id in enumerate(ids):
        try:
            await accounts.channels.get(caller.user, channel_id)
        except NotFound:
            raise Invalid(f"channels[{i}]", "not one of your channels", where="body") from None
    return tuple(dict.fromkeys(ids))


def _expires(given: str | int | None) -> int | None:
    if given is None:
        return None
    when = time_param("expires", str(given))
    assert when is not None
    if when <= time.time():
        raise Invalid("expires", "already past", where="body")
    return math.floor(when)


def _condition(accounts: Accounts, given: dict[str, Any]) -> Any:
    try:
        return condition_of(given, accounts.settings.rule_max_window)
    except RuleError as exc:
        raise Invalid(exc.field, exc.message, where="body") from None


RULE_LINKS = {
    name: {"operationId": operation, "parameters": {"rule_id": "$response.body#/id"}}
    for name, operation in (
        ("GetRule", "getRule"),
        ("PatchRule", "patchRule"),
        ("DeleteRule", "deleteRule"),
    )
}


@router.post(
    "/me/rules",
    status_code=201,
    response_model=RuleOut,
    operation_id="createRule",
    responses=UNAUTHORIZED
    | BODY
    | {
        201: {"description": "The rule", "links": RULE_LINKS},
        422: {"description": "A bad field, an unknown market, a limit"},
    },
)
async def create_rule(
    caller: CallerDep, accounts: AccountsDep, state: StateDep, body: Annotated[RuleIn, Body()]
) -> RuleOut:
    """Add a rule on any stored market (a pair across markets is exchange `all`)."""
    count = len(await accounts.listed.of_user(caller.user))
    within(count, accounts.settings.max_rules, "rules", "TRACKER_MAX_RULES")
    condition = _condition(accounts, body.condition)
    market = await _market(state, body.exchange, body.symbol)
    channels = await _channels(accounts, caller, body.channels)
    now = time.time()
    rule = Rule(
        id=new_rule_id(),
        user=caller.user,
        name=body.name,
        market=market,
        metric=metric_of(body.metric),
        condition=condition,
        terms=Terms(body.repeat, body.cooldown, math.ceil(now), _expires(body.expires)),
        channels=channels,
        created=now,
    )
    return out(await accounts.rules.put(rule))


@router.get("/me/rules", response_model=RuleList, operation_id="listRules", responses=UNAUTHORIZED)
async def list_rules(caller: CallerDep, accounts: AccountsDep) -> Response:
    # Built and checked once for each version of the user's rules, then sent as it is
    # (`response_model` would check it again).
    body = await accounts.listed.listing(caller.user, listing)
    return Response(body, media_type="application/json")


def listing(rules: tuple[Rule, ...], now: float) -> bytes:
    return RuleList(rules=[out(r, now) for r in rules]).model_dump_json().encode()


@router.get(
    "/me/rules/{rule_id}",
    response_model=RuleOut,
    operation_id="getRule",
    responses=UNAUTHORIZED | NOT_FOUND,
)
async def get_rule(caller: CallerDep, accounts: AccountsDep, rule_id: RuleId) -> RuleOut:
    return out(await accounts.rules.get(caller.user, rule_id))


@router.patch(
    "/me/rules/{rule_id}",
    response_model=RuleOut,
    operation_id="patchRule",
    responses=UNAUTHORIZED | BODY | NOT_FOUND | {422: {"description": "A bad field"}},
)
async def patch_rule(
    caller: CallerDep,
    accounts: AccountsDep,
    state: StateDep,
    rule_id: RuleId,
    body: Annotated[RulePatch, Body()],
) -> RuleOut:
    """Change any field, or pause (`"paused": true`) and resume it. A new market, metric,
    condition or repeat starts the rule afresh (armed)."""
    rule = await accounts.rules.get(caller.user, rule_id)
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if "name" in given and body.name is not None:
        changes["name"] = body.name
    if "exchange" in given or "symbol" in given:
        changes["market"] = await _market(
            state, body.exchange or rule.market.exchange, body.symbol or rule.market.symbol
        )
    if body.metric is not None:
        changes["metric"] = metric_of(body.metric)
    if body.condition is not None:
        changes["condition"] = _condition(accounts, body.condition)
    if body.channels is not None:
        changes["channels"] = await _channels(accounts, caller, body.channels)
    if body.paused is not None:
        changes["paused"] = body.paused
    terms = rule.terms
    if body.repeat is not None:
        terms = replace(terms, repeat=body.repeat)
    if body.cooldown is not None:
        terms = replace(terms, cooldown=body.cooldown)
    if "expires" in given:
        terms = replace(terms, expires=_expires(body.expires))
    changed = replace(rule, terms=terms, **changes)
    reset = bool(RESETS & given.keys())
    return out(await accounts.rules.replace(changed, reset))


@router.delete(
    "/me/rules/{rule_id}",
    status_code=204,
    operation_id="deleteRule",
    responses=UNAUTHORIZED | NOT_FOUND,
)
async def delete_rule(caller: CallerDep, accounts: AccountsDep, rule_id: RuleId) -> Response:
    await accounts.rules.delete(caller.user, rule_id)
    return Response(status_code=204)
