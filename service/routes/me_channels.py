"""`/me/channels`: where a user's alerts go. Secrets are shown in the creating answer only."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from common.channels import Channel, FieldError, check_fields, guarded_url, new_signing_secret
from common.channels_store import new_channel_id
from common.messages import test_payload
from common.senders import send
from common.targets import TargetRefused, check_target
from common.ticks import iso
from service.accounts import Accounts, AccountsDep
from service.auth import CallerDep
from service.errors import Invalid
from service.me_schemas import ChannelCreated, ChannelIn, ChannelList, ChannelOut, TestResult
from service.routes.me import BODY, UNAUTHORIZED, Responses, within

router = APIRouter(tags=["me"])
CHANNEL_ID = r"^ch_[0-9a-f]{16}$"
ChannelId = Annotated[str, Path(pattern=CHANNEL_ID, description="A channel's id (ch_…)")]
NOT_FOUND: Responses = {404: {"description": "No such channel of yours"}}


def shown(channel: Channel) -> dict[str, Any]:
    return channel.public() | {"created": iso(channel.created)}


def out(channel: Channel) -> ChannelOut:
    return ChannelOut(**shown(channel))


async def checked(accounts: Accounts, kind: str, given: dict[str, str]) -> dict[str, str]:
    """The fields, each checked; user-chosen hosts resolved and refused unless public."""
    try:
        fields = check_fields(kind, given)
        if kind == "email" and accounts.settings.smtp_url is None:
            raise FieldError("to", "e-mail channels are off: the operator set no TRACKER_SMTP_URL")
    except FieldError as exc:
        raise Invalid(exc.field, exc.message, where="body") from None
    guarded = guarded_url(kind, fields)
    if guarded is not None:
        name = "url" if kind == "webhook" else "server"
        try:
            await check_target(guarded, accounts.allowed)
        except TargetRefused as exc:
            raise Invalid(name, f"refused target: {exc}", where="body") from None
    return fields


CHANNEL_LINKS = {
    name: {"operationId": operation, "parameters": {"channel_id": "$response.body#/id"}}
    for name, operation in (
        ("GetChannel", "getChannel"),
        ("DeleteChannel", "deleteChannel"),
        ("TestChannel", "testChannel"),
    )
}


@router.post(
    "/me/channels",
    status_code=201,
    response_model=ChannelCreated,
    operation_id="createChannel",
    responses=UNAUTHORIZED
    | BODY
    | {
        201: {"description": "The channel, its secrets shown once", "links": CHANNEL_LINKS},
        422: {"description": "A bad field, a refused target, a limit"},
    },
)
async def create_channel(
    caller: CallerDep, accounts: AccountsDep, body: Annotated[ChannelIn, Body()]
) -> ChannelCreated:
    """Add a channel. The answer shows its fields, and for a webhook its signing secret, this
    once; every later answer shows only the masked target."""
    store = accounts.channels
    limit = accounts.settings.max_channels
    within(len(await store.of_user(caller.user)), limit, "channels", "TRACKER_MAX_CHANNELS")
    given = body.model_dump(exclude={"name", "kind"}, exclude_none=True)
    fields = await checked(accounts, body.kind, given)
    secret = new_signing_secret() if body.kind == "webhook" else None
    channel = Channel(
        new_channel_id(), caller.user, body.name, body.kind, fields, time.time(), None, secret
    )
    await store.put(channel)
    return ChannelCreated(**shown(channel), fields=fields, secret=secret)


@router.get(
    "/me/channels", response_model=ChannelList, operation_id="listChannels", responses=UNAUTHORIZED
)
async def list_channels(caller: CallerDep, accounts: AccountsDep) -> ChannelList:
    return ChannelList(channels=[out(c) for c in await accounts.channels.of_user(caller.user)])


@router.get(
    "/me/channels/{channel_id}",
    response_model=ChannelOut,
    operation_id="getChannel",
    responses=UNAUTHORIZED | NOT_FOUND,
)
async def get_channel(
    caller: CallerDep, accounts: AccountsDep, channel_id: ChannelId
) -> ChannelOut:
    """One channel; `disabled` says when a receiver's 410 stopped it."""
    return out(await accounts.channels.get(caller.user, channel_id))


@router.delete(
    "/me/channels/{channel_id}",
    status_code=204,
    operation_id="deleteChannel",
    responses=UNAUTHORIZED | NOT_FOUND,
)
async def delete_channel(
    caller: CallerDep, accounts: AccountsDep, channel_id: ChannelId
) -> Response:
    await accounts.channels.delete(caller.user, channel_id)
    return Response(status_code=204)


@router.post(
    "/me/channels/{channel_id}/test",
    response_model=TestResult,
    operation_id="testChannel",
    responses=UNAUTHORIZED | BODY | NOT_FOUND,
)
async def test_channel(
    caller: CallerDep, accounts: AccountsDep, channel_id: ChannelId
) -> TestResult:
    """Send a real test message now; only the receiver's status and a short error of ours
    come back, never what the receiver answered."""
    channel = await accounts.channels.get(caller.user, channel_id)
    assert accounts.http is not None
    smtp = accounts.settings.smtp_url
    outcome = await send(
        accounts.http,
        channel,
        f"test_{int(time.time() * 1000)}",
        test_payload(channel.name, iso(int(time.time()))),
        accounts.allowed,
        smtp.get_secret_value() if smtp else None,
    )
    return TestResult(delivered=outcome.delivered, status=outcome.status, error=outcome.error)
