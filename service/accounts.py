"""The collaborators of the `/me` routes, owned by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from common.channels_store import ChannelsStore
from common.db import Store
from common.deliveries_store import DeliveriesStore
from common.rules_store import RulesStore
from common.sealed import Sealer
from common.settings import Settings
from common.targets import Network, networks
from common.users_store import UsersStore
from service.auth import Keys
from service.errors import NotReady
from service.rules_cache import RulesCache


@dataclass
class Accounts:
    settings: Settings
    users: UsersStore
    keys: Keys
    rules: RulesStore
    listed: RulesCache  # the rules as listed: `rules` for one rule and for every write
    deliveries: DeliveriesStore
    sealed: ChannelsStore | None  # None: no TRACKER_SECRET_KEY, so no channel can be kept
    allowed: tuple[Network, ...]
    http: aiohttp.ClientSession | None = None

    @classmethod
    def of(cls, settings: Settings, store: Store) -> Accounts:
        users = UsersStore(store)
        rules = RulesStore(store)
        sealer = Sealer(settings.sealing_key()) if settings.secret_key else None
        return cls(
            settings,
            users,
            Keys(users, settings.rate_limit),
            rules,
            RulesCache(rules),
            DeliveriesStore(store),
            ChannelsStore(store, sealer) if sealer else None,
            networks(settings.allow_targets),
        )

    @property
    def channels(self) -> ChannelsStore:
        if self.sealed is None:
            raise NotReady(
                "channels are off: the operator has not set TRACKER_SECRET_KEY, the key their "
                "secrets are sealed with",
                retry_after=3600,
            )
        return self.sealed


async def get_accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.tracker.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(get_accounts)]
