"""The in-memory MongoDB substitute of `make dev` and the tests (mongomock-motor), with cheaper lookups.

mongomock answers every query by testing every document of the collection with its general filter, `_id`
lookups included: it keeps the documents in a dict keyed by `_id` but never looks there. So in a shop that
runs for a while each order step costs more than the last (`make bench-profile CASE=checkout-journey`: a
third of order's CPU in mongomock's document filter, growing with every order; docs/performance.md, fourth
and fifth passes). MongoDB, and FerretDB, answer the shop's queries from indexes. `use_fast_lookups()` makes
mongomock's search (`Collection._iter_documents`, which every find, count, update, delete and unique-index
check goes through) cheaper in two ways, neither of which changes an answer or an error:

- **the `_id` index**: a filter that names one plain `_id` (a string or an ObjectId, beside any other
  conditions) tests only the document stored under that `_id`, with mongomock's own filter;
- **a pre-test**: otherwise, the filter's leading conditions on a top-level field that are a plain string
  (`{"user_id": "u1"}`), `{"$in": [strings]}` or string bounds (`{"track_at": {"$ne": None, "$lte": now}}`)
  are checked first with a dict lookup and the same comparison mongomock makes for them, and only the
  documents that pass are tested with mongomock's filter. A document the pre-test drops is one mongomock's
  filter rejects on those same leading conditions, before it reads the rest of the filter, so even a
  malformed later condition is refused exactly when the scan refuses it. This keeps order's idempotency
  lookup (user + key), its unique-index checks (on every update of an order), the tracker's `claim_due`
  (status paid or shipped and `track_at` come: once a second and once per order it follows) and the order
  list (per user) from reading every order through mongomock's general filter; they still look at every
  document, at the cost of a dict lookup each.

Only processes without MONGO_URL import this (services/kit/db.py); the images do not have mongomock at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any, cast

from bson import ObjectId
from mongomock import filtering
from mongomock.collection import Collection

Document = dict[str, Any]
PreTest = Callable[[Document], bool]
_SCAN = cast(Callable[[Collection, Any], Iterator[Document]], Collection._iter_documents)
filter_applies = cast(Callable[[Any, Document], bool], filtering.filter_applies)
_ABSENT = object()


def _equals(field: str, wanted: str) -> PreTest:
    """mongomock's match of `{field: wanted}`, for a string `wanted` and a top-level field: equal, or an
    array that holds it."""

    def test(document: Document) -> bool:
        value = document.get(field, _ABSENT)
        return value == wanted or (isinstance(value, list | tuple) and wanted in value)

    return test


def _one_of(field: str, wanted: frozenset[str]) -> PreTest:
    """mongomock's `$in` of strings on a top-level field: the value, or an element of an array value, is
    one of them."""

    def test(document: Document) -> bool:
        value = document.get(field, _ABSENT)
        if isinstance(value, list | tuple):
            return any(isinstance(item, str) and item in wanted for item in value)
        return isinstance(value, str) and value in wanted

    return test


def _in_range(field: str, bounds: list[tuple[Callable[[str, str], bool], str]]) -> PreTest:
    """mongomock's `$lt`/`$lte`/`$gt`/`$gte` against strings on a top-level field: by BSON's type
    bracketing only a string value compares, by Python's string order as mongomock compares two strings;
    for an array, each bound is met by some element (mongomock tests each operator on its own)."""

    def test(document: Document) -> bool:
        value = document.get(field, _ABSENT)
        if isinstance(value, str):
            return all(compare(value, bound) for compare, bound in bounds)
        if isinstance(value, list | tuple):
            return all(
                any(isinstance(item, str) and compare(item, bound) for item in value)
                for compare, bound in bounds
            )
        return False

    return test


_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}
# Operators a pre-tested condition may hold: mongomock evaluates none of them with an error for the values
# allowed below, and `$ne` is simply left to mongomock's filter.
_PRE_TESTABLE = {"$in", "$ne", *_COMPARISONS}


def _plain_field(key: Any) -> bool:
    return isinstance(key, str) and bool(key) and not key.startswith("$") and "." not in key


def _condition_pre_tests(field: str, condition: Any) -> list[PreTest] | None:
    """The pre-tests of one condition on a top-level field, or None when it is not one this module knows
    exactly as mongomock evaluates it."""
    if isinstance(condition, str):
        return [_equals(field, condition)]
    if not isinstance(condition, dict) or not condition or not set(condition) <= _PRE_TESTABLE:
        return None
    tests: list[PreTest] = []
    if "$in" in condition:
        wanted = condition["$in"]
        if not isinstance(wanted, list | tuple) or not all(isinstance(item, str) for item in wanted):
            return None
        tests.append(_one_of(field, frozenset(wanted)))
    bounds = [(_COMPARISONS[op], bound) for op, bound in condition.items() if op in _COMPARISONS]
    if not all(isinstance(bound, str) for _, bound in bounds):
        return None
    if bounds:
        tests.append(_in_range(field, bounds))
    return tests or None


def pre_tests(filter: Any) -> list[PreTest]:
    """The pre-tests of `filter`'s leading conditions on top-level fields that are a string, `$in` of
    strings, or string bounds (`$lt`, `$lte`, `$gt`, `$gte`, beside `$ne`), in order; it stops at the first
    other condition (mongomock's filter reads the conditions in order and answers False at the first that
    fails, so a document dropped here never reaches the later ones)."""
    tests: list[PreTest] = []
    if not isinstance(filter, dict):
        return tests
    for field, condition in filter.items():
        found = _condition_pre_tests(field, condition) if _plain_field(field) else None
        if found is None:
            break
        tests.extend(found)
    return tests


def _matching_documents(self: Collection, filter: Any) -> Iterator[Document]:
    """Collection._iter_documents with the `_id` index and the pre-test: the documents that
    `filter` selects, in the scan's order."""
    doc_id = filter.get("_id") if isinstance(filter, dict) else None
    if isinstance(doc_id, str | ObjectId):
        try:
            document = self._store[doc_id]  # as the scan does: first the TTL indexes' expired documents go
        except KeyError:
            filter_applies(filter, {})  # validates the filter as the scan does on an empty collection
            return iter([])
        return iter([document] if filter_applies(filter, document) else [])
    tests = pre_tests(filter)
    if not tests:
        return _SCAN(self, filter)
    if self._store.is_empty:
        filter_applies(filter, {})  # validates the filter as the scan does on an empty collection
    candidates = list(self._store.documents)
    for pre_test in tests:  # each narrows the list: the first (a user, a status) drops most documents
        candidates = [document for document in candidates if pre_test(document)]
    return (document for document in candidates if filter_applies(filter, document))


def use_fast_lookups() -> None:
    """Install the `_id` index and the pre-test in mongomock (idempotent, process-wide)."""
    Collection._iter_documents = _matching_documents  # type: ignore[method-assign]


def fast_lookups_in_use() -> bool:
    return Collection._iter_documents is _matching_documents
