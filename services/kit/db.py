"""The ONE place that decides which MongoDB client a service gets."""

from __future__ import annotations

import logging
from typing import Any, cast

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.kit.settings import ConfigurationError, DatabaseSettings

log = logging.getLogger("kit.db")

MongoClient = AsyncMongoClient[dict[str, Any]]
Database = AsyncDatabase[dict[str, Any]]


def create_mongo_client(settings: DatabaseSettings) -> MongoClient:
    """PyMongo's async client for a real server; an in-memory substitute only when MONGO_URL is unset.

    Raises ConfigurationError when MONGO_URL is unset where the substitute is not installed (the images:
    mongomock-motor is a development dependency), so the service stops with one line saying what to set.
    """
    if settings.mongo_url:
        return AsyncMongoClient(
            settings.mongo_url,
            appname=settings.service_name,
            connectTimeoutMS=2000,
            serverSelectionTimeoutMS=3000,
            timeoutMS=5000,
        )
    try:
        from mongomock_motor import AsyncMongoMockClient  # dev dependency, absent from the images

        from services.kit.memory_store import use_fast_lookups
    except ImportError:
        raise ConfigurationError(
            "MONGO_URL is not set, and the in-memory store for development (mongomock-motor) is not "
            "installed here: set MONGO_URL to this service's MongoDB URL, e.g. mongodb://user:password@host:27017/"
            f"{settings.database_name}"
        ) from None
    log.warning(
        "MONGO_URL is not set: using an IN-MEMORY MongoDB substitute (mongomock). "
        "Data is lost when the process stops. Fine for `make dev` and tests, never for a cluster."
    )
    use_fast_lookups()  # `_id` lookups by the dict, and simple conditions pre-tested (memory_store.py)
    return cast(MongoClient, AsyncMongoMockClient())


async def ping(db: Database) -> None:
    await db.command("ping")


async def close_client(client: MongoClient) -> None:
    result = client.close()
    if hasattr(result, "__await__"):
        await result
