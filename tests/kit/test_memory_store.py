"""The in-memory store's fast lookups (services/kit/memory_store.py): the `_id` index and the equality
pre-test give the same answers, and refuse the same filters, as mongomock's scan, without testing every
document with mongomock's filter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pytest
from bson import ObjectId
from mongomock import collection as mongomock_collection
from pymongo import ReturnDocument

from services.kit import memory_store

OID = ObjectId()
DOCS: list[dict[str, Any]] = [
    {"_id": "a", "status": "paid", "n": 1},
    {"_id": "b", "status": "pending", "n": 2},
    {"_id": OID, "status": "paid", "n": 3},
    {"_id": 7, "status": "paid", "n": 4},
    {"_id": "c", "status": ["paid", "gift"], "user_id": "u1", "n": 5},
    {"_id": "d", "user_id": "u1", "idempotency_key": "k1", "n": 6},
    {"_id": "e", "user_id": "u2", "idempotency_key": "k1", "status": None, "n": 7},
    {"_id": "f", "user_id": ["u1", "u3"], "status": ("shipped",), "n": 8},
    {"_id": "g", "user_id": 1, "status": {"paid": True}, "n": 9},
    {"_id": "h", "status": "paid", "track_at": "2026-12-01T10:00:00Z", "n": 10},
    {"_id": "i", "status": "shipped", "track_at": None, "n": 11},
    {"_id": "j", "status": "shipped", "track_at": ["2026-12-01T08:00:00Z", "2026-12-02"], "n": 12},
    {"_id": "k", "status": "paid", "track_at": 20261201, "n": 13},
]
FILTERS: list[dict[str, Any]] = [
    {"_id": "a"},
    {"_id": "a", "status": "paid"},
    {"_id": "a", "status": "pending"},
    {"_id": "a", "status": {"$in": ["pending", "paid"]}, "n": {"$lte": 1}},
    {"_id": "missing"},
    {"_id": "missing", "status": "paid"},
    {"_id": OID},
    {"_id": str(OID)},
    {"_id": 7},
    {"_id": {"$in": ["a", "b"]}},
    {"_id": {"$ne": "a"}},
    {"status": "paid"},
    {"status": "gift"},
    {"status": "shipped"},
    {"status": {"$in": ["paid", "shipped"]}},
    {"status": {"$in": ["paid"]}, "n": {"$gte": 4}},
    {"status": {"$in": []}},
    {"status": {"$in": ["paid", None]}},
    {"status": {"$in": ["paid"], "$ne": "gift"}},
    {"status": None},
    {"user_id": "u1"},
    {"user_id": "u1", "idempotency_key": "k1"},
    {"user_id": "u2", "idempotency_key": "k1"},
    {"user_id": "u3"},
    {"user_id": "1"},
    {"user_id": 1},
    {"n": {"$gt": 2}, "user_id": "u1"},
    {"user_id": "u1", "$or": [{"n": 5}, {"n": 8}]},
    {"status.paid": True},
    {"idempotency_key": "k1", "user_id": {"$ne": "u2"}},
    {"status": {"$in": ["paid", "shipped"]}, "track_at": {"$ne": None, "$lte": "2026-12-01T09:00:00Z"}},
    {"status": {"$in": ["paid", "shipped"]}, "track_at": {"$ne": None, "$lte": "2026-12-01T11:00:00Z"}},
    {"track_at": {"$gt": "2026-12-01T09:00:00Z", "$lt": "2026-12-01T09:30:00Z"}},
    {"track_at": {"$gte": "2026-12-01T10:00:00Z"}, "status": "paid"},
    {"track_at": {"$lte": 20261202}},
    {"track_at": {"$lte": "2026-12-01T10:00:00Z"}},
    {"track_at": {"$gte": "2026-12-01T10:00:00Z"}},
    {"track_at": {"$lte": "2026-12-03", "$in": ["2026-12-02"]}},
    {"track_at": {"$ne": None}},
    {"status": {"$in": ["paid"], "$lt": "q"}},
    {},
]


@pytest.fixture
def index_off() -> Iterator[None]:
    indexed = memory_store.fast_lookups_in_use()
    mongomock_collection.Collection._iter_documents = memory_store._SCAN  # type: ignore[method-assign]
    yield
    if indexed:
        memory_store.use_fast_lookups()


def _collection() -> Any:
    coll = mongomock.MongoClient()["shop"]["orders"]
    coll.insert_many([dict(d) for d in DOCS])
    return coll


def _answers() -> list[Any]:
    """What each kind of query answers for each filter, on a fresh collection per write."""
    answers: list[Any] = []
    for query in FILTERS:
        answers.append(sorted(str(d["_id"]) for d in _collection().find(query)))
        answers.append(_collection().count_documents(query))
        coll = _collection()
        after = coll.find_one_and_update(
            query, {"$set": {"seen": True}}, return_document=ReturnDocument.AFTER
        )
        answers.append((after, sorted(str(d["_id"]) for d in coll.find({"seen": True}))))
        coll = _collection()
        answers.append((coll.update_one(query, {"$inc": {"n": 10}}).modified_count, list(coll.find())))
        coll = _collection()
        answers.append((coll.delete_one(query).deleted_count, list(coll.find())))
    return answers


def test_the_index_answers_what_the_scan_answers(index_off: None) -> None:
    scanned = _answers()
    memory_store.use_fast_lookups()
    assert memory_store.fast_lookups_in_use()
    assert _answers() == scanned


def test_a_lookup_by_id_tests_one_document_not_the_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    coll = mongomock.MongoClient()["shop"]["orders"]
    coll.insert_many([{"_id": f"order-{i}", "status": "paid"} for i in range(2000)])
    tested: list[Any] = []
    scan_filter = mongomock_collection.filter_applies

    def counting(query: Any, document: Any) -> bool:
        tested.append(document)
        return bool(scan_filter(query, document))

    monkeypatch.setattr(mongomock_collection, "filter_applies", counting)  # the scan's filter
    monkeypatch.setattr(memory_store, "filter_applies", counting)  # the index's
    memory_store.use_fast_lookups()
    assert coll.find_one({"_id": "order-1500", "status": "paid"}) == {"_id": "order-1500", "status": "paid"}
    assert len(tested) == 1
    tested.clear()
    coll.find_one({"_id": {"$gte": "order-1500"}})  # a range on `_id`: still the scan
    assert len(tested) > 1


BAD_FILTERS: list[dict[str, Any]] = [
    *({"_id": target, "n": {"$bogus": 1}} for target in ("a", "b", "missing")),
    # the scan stops at the first condition a document fails, so a malformed later one is refused only
    # when some document passes the earlier ones; the pre-test must keep that
    *({"status": target, "n": {"$bogus": 1}} for target in ("paid", "missing")),
    *({"status": {"$in": [target]}, "n": {"$bogus": 1}} for target in ("paid", "missing")),
    {"n": {"$bogus": 1}, "status": "missing"},
    {"status": {"$in": "paid"}},
    {"status": {"$lte": "z", "$bogus": 1}},
    {"status": "missing", "track_at": {"$lte": "z", "$bogus": 1}},
    {"track_at": {"$lte": "2026-12-01T11:00:00Z"}, "n": {"$bogus": 1}},
    {"track_at": {"$lte": "0000", "$bogus": 1}},  # no document is in range, and the scan still refuses it
]


def test_a_lookup_tests_only_the_documents_that_pass_the_pre_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coll = mongomock.MongoClient()["shop"]["orders"]
    coll.insert_many(
        [{"_id": f"order-{i}", "user_id": f"user-{i % 20}", "status": "delivered"} for i in range(2000)]
    )
    tested: list[Any] = []
    scan_filter = mongomock_collection.filter_applies

    def counting(query: Any, document: Any) -> bool:
        tested.append(document)
        return bool(scan_filter(query, document))

    monkeypatch.setattr(mongomock_collection, "filter_applies", counting)
    monkeypatch.setattr(memory_store, "filter_applies", counting)
    memory_store.use_fast_lookups()
    assert len(coll.find_one({"user_id": "user-3", "status": "delivered"}) or {}) == 3
    assert len(tested) == 100  # the user's orders, not the 2,000
    tested.clear()
    assert coll.find_one({"status": {"$in": ["paid", "shipped"]}, "track_at": {"$lte": "z"}}) is None
    assert tested == []
    coll.update_many({"user_id": "user-3"}, {"$set": {"status": "paid", "track_at": "2026-12-01T10:00:00Z"}})
    coll.update_one({"_id": "order-3"}, {"$set": {"track_at": "2026-12-01T08:00:00Z"}})
    tested.clear()
    due = {"status": {"$in": ["paid", "shipped"]}, "track_at": {"$ne": None, "$lte": "2026-12-01T09:00:00Z"}}
    assert [d["_id"] for d in coll.find(due)] == ["order-3"]
    assert len(tested) == 1  # the tracker's claim_due: only the order whose time has come
    tested.clear()
    coll.find_one({"status": {"$ne": "paid"}})  # no equality: still the scan
    assert len(tested) == 2000


def _bad_filter_answers() -> list[str]:
    answers = []
    for query in BAD_FILTERS:
        try:
            answers.append(repr(_collection().find_one(query)))
        except mongomock.OperationFailure as exc:
            answers.append(f"refused: {exc}")
    return answers


def test_a_bad_filter_is_refused_as_the_scan_refuses_it(index_off: None) -> None:
    scanned = _bad_filter_answers()
    assert scanned[0] == "refused: unknown operator: $bogus"
    assert scanned[4] == "None"  # no document has status "missing": the scan never reads `n`
    assert scanned[BAD_FILTERS.index({"status": {"$in": "paid"}})] == "refused: $in needs an array"
    assert scanned[-3] == "None"  # no status "missing": the malformed bounds are never read
    assert scanned[-1] == "refused: unknown operator: $bogus"
    memory_store.use_fast_lookups()
    assert _bad_filter_answers() == scanned


def test_a_document_past_its_ttl_is_not_found_by_id() -> None:
    memory_store.use_fast_lookups()
    coll = mongomock.MongoClient()["auth"]["refresh_tokens"]
    coll.create_index("expires_at", expireAfterSeconds=0)
    now = datetime.now(UTC)
    coll.insert_many(
        [
            {"_id": "old", "expires_at": now - timedelta(seconds=5)},
            {"_id": "new", "expires_at": now + timedelta(hours=1)},
        ]
    )
    assert coll.find_one({"_id": "old"}) is None
    assert coll.find_one({"_id": "new"}) is not None


def test_the_services_in_memory_store_has_the_index(index_off: None) -> None:
    from services.kit.db import create_mongo_client
    from services.kit.settings import DatabaseSettings

    assert not memory_store.fast_lookups_in_use()
    create_mongo_client(DatabaseSettings(service_name="demo"))
    assert memory_store.fast_lookups_in_use()
