"""The in-memory store's `_id` index (services/kit/memory_store.py): the same answers as mongomock's scan,
without testing every document."""

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
    {},
]


@pytest.fixture
def index_off() -> Iterator[None]:
    indexed = memory_store.id_index_in_use()
    mongomock_collection.Collection._iter_documents = memory_store._SCAN  # type: ignore[method-assign]
    yield
    if indexed:
        memory_store.use_id_index()


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
    memory_store.use_id_index()
    assert memory_store.id_index_in_use()
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
    memory_store.use_id_index()
    assert coll.find_one({"_id": "order-1500", "status": "paid"}) == {"_id": "order-1500", "status": "paid"}
    assert len(tested) == 1
    tested.clear()
    coll.find_one({"_id": {"$in": ["order-1500"]}})  # an operator on `_id`: still the scan
    assert len(tested) > 1


def _bad_filter_answers() -> list[str]:
    answers = []
    for target in ("a", "b", "missing"):
        try:
            answers.append(repr(_collection().find_one({"_id": target, "n": {"$bogus": 1}})))
        except mongomock.OperationFailure as exc:
            answers.append(f"refused: {exc}")
    return answers


def test_a_bad_filter_is_refused_as_the_scan_refuses_it(index_off: None) -> None:
    scanned = _bad_filter_answers()
    assert scanned[0] == "refused: unknown operator: $bogus"
    memory_store.use_id_index()
    assert _bad_filter_answers() == scanned


def test_a_document_past_its_ttl_is_not_found_by_id() -> None:
    memory_store.use_id_index()
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

    assert not memory_store.id_index_in_use()
    create_mongo_client(DatabaseSettings(service_name="demo"))
    assert memory_store.id_index_in_use()
