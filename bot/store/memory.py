"""In-memory case store: the reference backend.

Nothing touches the disk.  Used by the contract tests (every backend must
behave like this one) and by dialog tests that need a store without files.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from bot.store import CLOSED, clone_json, closed_time, owner_key
from bot.store.local import LocalStore


class MemoryStore(LocalStore):
    def __init__(self, clock=None):
        super().__init__(clock=clock)
        self._cases: dict[str, dict] = {}

    def _load(self, case_id: str) -> Optional[dict]:
        doc = self._cases.get(case_id)
        return clone_json(doc) if doc is not None else None

    def _has(self, case_id: str) -> bool:
        return case_id in self._cases

    def _commit(self, ops: list) -> None:
        with self._mem:
            self._apply(ops)

    def _put_case(self, cid: str, doc: dict) -> None:
        self._cases[cid] = doc
        try:
            okey = owner_key(doc.get("owner"))
        except ValueError:
            okey = None
        self._rem_index.set_case(cid, okey, doc.get("reminders"))

    def _del_case(self, cid: str) -> None:
        self._cases.pop(cid, None)

    def _detach(self, doc: dict) -> dict:
        return clone_json(doc)

    def _select(self, okey: Optional[str], filters: dict) -> Iterable[dict]:
        return [clone_json(d) for d in self._cases.values()]

    def _closed_before(self, cutoff_iso: str) -> list:
        return [
            cid
            for cid, d in self._cases.items()
            if d.get("status") == CLOSED and closed_time(d) < cutoff_iso
        ]

    async def _run_write(self, fn: Callable[[], Any]) -> Any:
        return fn()

    async def _shutdown(self) -> None:
        pass
