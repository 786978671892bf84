"""The identity table's batch journal: a crash part-way through a batch's writes is completed."""

from __future__ import annotations

import contextlib

from streams.adapters.tables import JOURNAL_KEY, TableIdentityStore
from streams.journey.forget import Erasure
from streams.journey.identity import IdentityDecision


class Crash(Exception):
    pass


class Table(dict[bytes, bytes]):
    """A table whose changelog writes stop after `writes_left` (a SIGKILL mid-flush)."""

    def __init__(self, writes_left: int | None = None) -> None:
        super().__init__()
        self.writes_left = writes_left

    def _write(self) -> None:
        if self.writes_left is not None:
            if self.writes_left == 0:
                raise Crash
            self.writes_left -= 1

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._write()
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self._write()
        super().__delitem__(key)


def merge() -> IdentityDecision:
    return IdentityDecision(
        "cus_b",
        {"email:ada@x.example": "cus_b", "anon:c1": "cus_b"},
        {"cus_b": ("email:ada@x.example", "anon:c1"), "cus_a": None},
        [],
        [],
        [],
    )


def test_a_flush_leaves_the_batch_and_no_journal() -> None:
    table = Table()
    store = TableIdentityStore(table)
    store.apply(merge())
    assert store.flush() == 4
    assert JOURNAL_KEY not in table
    assert store.get_members("cus_b") == ("anon:c1", "email:ada@x.example")


def test_a_batch_cut_short_is_completed_by_the_next_one() -> None:
    whole = Table()
    reference = TableIdentityStore(whole)
    reference.apply(merge())
    reference.flush()
    for cut in range(1, 5):  # after the journal and 0..3 of the keys
        table = Table(writes_left=cut)
        store = TableIdentityStore(table)
        store.apply(merge())
        with contextlib.suppress(Crash):
            store.flush()
        table.writes_left = None
        assert TableIdentityStore(table).complete_interrupted() == 4
        assert dict(table) == dict(whole), cut


def test_nothing_to_complete_without_a_journal() -> None:
    table = Table()
    table[b"email:ada@x.example"] = b"cus_b"
    assert TableIdentityStore(table).complete_interrupted() == 0
    assert dict(table) == {b"email:ada@x.example": b"cus_b"}


def test_suppression_digests_go_to_their_own_table_and_survive_a_cut_batch() -> None:
    erasure = Erasure("cus_a", ("email:ada@x.example",), ("cus_a",), {}, ("d1", "d2"))
    table, suppressions = Table(), Table()
    table.update({b"email:ada@x.example": b"cus_a", b"members:cus_a": b'["email:ada@x.example"]'})
    store = TableIdentityStore(table, suppressions)
    store.erase(erasure, "forget-1")
    assert store.is_suppressed("d1")  # read back before the flush
    table.writes_left = 2
    with contextlib.suppress(Crash):
        store.flush()  # the journal and one tombstone, then a crash
    assert not suppressions
    table.writes_left = None
    assert TableIdentityStore(table, suppressions).complete_interrupted() == 4
    assert dict(suppressions) == {b"d1": b"forget-1", b"d2": b"forget-1"}
    assert not any(key.startswith(b"suppressed:") for key in table)
    rebuilt = TableIdentityStore(Table(), suppressions)  # a fresh app id: empty identity table
    assert rebuilt.is_suppressed("d2") and not rebuilt.is_suppressed("d3")
    rebuilt.erase(erasure, "forget-2")  # forgetting again keeps the first request id
    rebuilt.flush()
    assert suppressions[b"d1"] == b"forget-1"
