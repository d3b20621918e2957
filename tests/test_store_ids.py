from __future__ import annotations

from hub.store.ids import CROCKFORD, new_id


def test_ids_made_in_one_millisecond_sort_in_creation_order() -> None:
    ids = [new_id("key", now_ms=1_700_000_000_000) for _ in range(500)]
    assert ids == sorted(ids) and len(set(ids)) == 500
    assert all(len(i) == 30 and set(i[4:]) <= set(CROCKFORD) for i in ids)


def test_a_later_millisecond_sorts_after() -> None:
    first = new_id("conv", now_ms=1_700_000_000_000)
    second = new_id("conv", now_ms=1_700_000_000_001)
    assert first[:15] < second[:15] and first < second
