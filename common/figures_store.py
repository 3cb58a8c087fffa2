"""The cross-market figures document in the meta table: its parts (`k = figures`, `n` = part)
and a small head (`k = figures-head`) that readers poll to learn that a new tick's arrived."""

from __future__ import annotations

from dataclasses import dataclass

from common.db import Store, translate
from common.figures import FiguresDoc, decode, encode
from common.items import Item

PARTS_KEY, HEAD_KEY = "figures", "figures-head"


def _part_key(part: int) -> Item:
    return {"k": {"S": PARTS_KEY}, "n": {"N": str(part)}}


HEAD: Item = {"k": {"S": HEAD_KEY}, "n": {"N": "0"}}


@dataclass(frozen=True)
class FiguresHead:
    t: int
    written_at: float
    parts: int

    @property
    def version(self) -> str:
        return f"{self.t}-{self.written_at:.6f}"


class FiguresStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.table = store.meta_table
        self.parts: int | None = None  # parts this writer wrote last (extra older ones go)

    async def put(self, doc: FiguresDoc) -> None:
        """Replace the document — its parts and its head — in one transaction."""
        parts = encode(doc)
        if self.parts is None:  # the first write of this process: what did the last leave?
            self.parts = (await self.head() or FiguresHead(0, 0, 0)).parts
        head = HEAD | {
            "t": {"N": str(doc.t)},
            "w": {"N": repr(doc.written_at)},
            "p": {"N": str(len(parts))},
        }
        await self.store.replace_parts(
            "write the cross-market figures", _part_key, parts, self.parts, head
        )
        self.parts = len(parts)

    async def head(self) -> FiguresHead | None:
        async with translate("read the figures head", self.store.outage):
            response = await self.store.client.get_item(
                TableName=self.table, Key=HEAD, ConsistentRead=True
            )
        item = response.get("Item")
        if not item:
            return None
        return FiguresHead(int(item["t"]["N"]), float(item["w"]["N"]), int(item["p"]["N"]))

    async def _read(self) -> FiguresDoc | None:
        parts: list[bytes] = []
        pages = self.store.pages("read the cross-market figures", self.store._meta(PARTS_KEY))
        async for page in pages:
            parts += [bytes(i["b"]["B"]) for i in page]  # in part order: n is the sort key
        return decode(parts)

    async def get(self) -> FiguresDoc | None:
        """The document; read up to twice more while a write is caught half done (a Query is
        not isolated from a transaction's writes)."""
        for _ in range(3):
            doc = await self._read()
            if doc is not None:
                return doc
        return None
