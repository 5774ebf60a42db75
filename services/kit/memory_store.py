"""The in-memory MongoDB substitute of `make dev` and the tests (mongomock-motor), with an `_id` index.

mongomock answers every query by testing every document of the collection, `_id` lookups included: it keeps
the documents in a dict keyed by `_id` but never looks there. So in a shop that runs for a while each order
step costs more than the last (`make bench-profile CASE=checkout-journey`: a third of order's CPU in
mongomock's document filter, growing with every order; docs/performance.md, fourth pass). MongoDB, and
FerretDB, find a document by `_id` through the index every collection has. `use_id_index()` gives mongomock
that index: a query whose filter names one plain `_id` (a string or an ObjectId, beside any other
conditions) tests only the document stored under that `_id`, with mongomock's own filter, so the answers
are the ones the full scan gives. Every other query (an operator on `_id`, no `_id`) still scans. Indexes on
other fields (order's `user_id` + `idempotency_key`, `track_at`) are not imitated: mongomock checks a unique
index by scanning, which a real server does not.

Only processes without MONGO_URL import this (services/kit/db.py); the images do not have mongomock at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from bson import ObjectId
from mongomock import filtering
from mongomock.collection import Collection

Document = dict[str, Any]
_SCAN = cast(Callable[[Collection, Any], Iterator[Document]], Collection._iter_documents)
filter_applies = cast(Callable[[Any, Document], bool], filtering.filter_applies)


def _documents_by_id(self: Collection, filter: Any) -> Iterator[Document]:
    """Collection._iter_documents with an `_id` index: the documents that `filter` selects."""
    doc_id = filter.get("_id") if isinstance(filter, dict) else None
    if not isinstance(doc_id, str | ObjectId):
        return _SCAN(self, filter)
    try:
        document = self._store[doc_id]  # as the scan does: first the TTL indexes' expired documents go
    except KeyError:
        filter_applies(filter, {})  # validates the filter as the scan does on an empty collection
        return iter([])
    return iter([document] if filter_applies(filter, document) else [])


def use_id_index() -> None:
    """Make mongomock find a document by a plain `_id` through its dict (idempotent, process-wide)."""
    Collection._iter_documents = _documents_by_id  # type: ignore[method-assign]


def id_index_in_use() -> bool:
    return Collection._iter_documents is _documents_by_id
