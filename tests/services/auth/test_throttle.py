"""auth: failed logins per account are throttled (429 + Retry-After), in MongoDB, reset on success."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.auth import passwords
from services.auth.app import build_app
from tests.services.auth.helpers import PASSWORD, auth_settings


def make_app(**overrides: Any) -> Any:
    return build_app(auth_settings(**overrides))


def attempt(client: TestClient, password: str, email: str = "victim@example.com") -> Any:
    return client.post("/auth/login", json={"email": email, "password": password})


def test_five_failures_lock_the_account_with_retry_after(auth_with_victim: TestClient) -> None:
    assert [attempt(auth_with_victim, f"guess {i}").status_code for i in range(5)] == [401] * 5
    locked = attempt(auth_with_victim, "guess 6")
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    retry_after = int(locked.headers["retry-after"])
    assert 250 <= retry_after <= 300
    assert locked.json()["error"]["details"] == {"retry_after_seconds": retry_after}
    # While locked, even the right password is refused: guessing on cannot find it.
    assert attempt(auth_with_victim, PASSWORD).status_code == 429


def test_unknown_accounts_are_throttled_the_same_way(auth_with_victim: TestClient) -> None:
    statuses = [attempt(auth_with_victim, "guess", email="ghost@example.com").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_other_accounts_are_not_affected(auth_with_victim: TestClient) -> None:
    auth_with_victim.post(
        "/auth/register", json={"email": "bystander@example.com", "password": PASSWORD, "name": "B"}
    )
    for i in range(6):
        attempt(auth_with_victim, f"guess {i}")
    assert attempt(auth_with_victim, PASSWORD, email="bystander@example.com").status_code == 200


def test_a_successful_login_resets_the_count(auth_with_victim: TestClient) -> None:
    assert [attempt(auth_with_victim, "nope").status_code for _ in range(4)] == [401] * 4
    assert attempt(auth_with_victim, PASSWORD).status_code == 200
    assert [attempt(auth_with_victim, "nope").status_code for _ in range(5)] == [401] * 5
    assert attempt(auth_with_victim, "nope").status_code == 429


def test_the_lock_ends_after_the_lockout() -> None:
    app = make_app(login_max_failures=2, login_lockout_seconds=1, login_failure_window_seconds=60)
    with TestClient(app) as client:
        client.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        assert [attempt(client, "x").status_code for _ in range(3)] == [401, 401, 429]
        time.sleep(1.2)
        assert attempt(client, PASSWORD).status_code == 200


def test_the_lock_is_shared_by_replicas_through_mongodb() -> None:
    first, second = make_app(), make_app()
    with TestClient(first) as a, TestClient(second) as b:
        # Two replicas, one database (as in the cluster): point the second at the first's database.
        b.app.state.db = a.app.state.db  # type: ignore[attr-defined]
        a.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        statuses = [attempt(a if i % 2 else b, "guess").status_code for i in range(6)]
        assert statuses == [401] * 5 + [429]
        assert attempt(a, PASSWORD).status_code == 429


def test_a_parallel_burst_of_guesses_cannot_pass_the_limit(auth_with_victim: TestClient) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = Counter(pool.map(lambda i: attempt(auth_with_victim, f"guess {i}").status_code, range(20)))
    assert statuses == Counter({401: 5, 429: 15})


def test_a_lock_set_while_the_right_password_was_checked_outlives_that_login(
    auth_with_victim: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interleaving planted: an attacker's guesses lock the account while the owner's correct login is being
    checked. The owner's success clears the failure count only when no lock is in force: it must not lift
    the attacker's lock (that would hand them another round of guesses)."""
    db = auth_with_victim.app.state.db  # type: ignore[attr-defined]
    verify = passwords.verify_password

    async def locked_meanwhile(password_hash: str | None, password: str) -> bool:
        until = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
        await db.login_attempts.update_one(
            {"_id": "victim@example.com"}, {"$set": {"locked_until": until}}, upsert=True
        )
        return await verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", locked_meanwhile)
    assert attempt(auth_with_victim, PASSWORD).status_code == 200  # the check had already passed
    monkeypatch.setattr(passwords, "verify_password", verify)
    assert attempt(auth_with_victim, PASSWORD).status_code == 429  # the lock holds


def test_after_the_lock_the_account_has_its_full_allowance_even_before_mongodb_deletes_the_record() -> None:
    """MongoDB's TTL monitor deletes expired records once a minute, so the lock's record may outlive the
    lock: it must then count from zero (planted: the record's expiry pushed an hour ahead)."""
    app = make_app(login_max_failures=2, login_lockout_seconds=1, login_failure_window_seconds=60)
    with TestClient(app) as client:
        client.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        assert [attempt(client, "x").status_code for _ in range(3)] == [401, 401, 429]
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
        records = app.state.db.login_attempts
        client.portal.call(records.update_one, {"_id": "victim@example.com"}, {"$set": {"expires_at": later}})
        time.sleep(1.2)
        assert [attempt(client, "x").status_code for _ in range(3)] == [401, 401, 429]


def test_a_failed_attempts_record_is_deleted_by_mongodb_once_its_window_and_lock_are_over(
    auth_with_victim: TestClient,
) -> None:
    """The records carry their own expiry (a TTL index deletes them), so the collection never grows with
    every email anyone ever tried: the window (300 s by default) or the lockout, whichever is longer."""
    before = datetime.now(UTC).replace(tzinfo=None)
    attempt(auth_with_victim, "x", email="someone@example.com")
    records = auth_with_victim.app.state.db.login_attempts  # type: ignore[attr-defined]
    record = auth_with_victim.portal.call(records.find_one, {"_id": "someone@example.com"})
    lives = record["expires_at"] - before
    assert timedelta(seconds=299) < lives < timedelta(seconds=330), lives


def test_failures_count_again_from_zero_in_a_new_window() -> None:
    """Failures older than LOGIN_FAILURE_WINDOW_SECONDS are forgotten: a new window starts a new count
    (its record outlives the window when the lockout is longer, as here). Planted: the window began 2
    minutes ago."""
    app = make_app(login_max_failures=2, login_lockout_seconds=600, login_failure_window_seconds=60)
    with TestClient(app) as client:
        client.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        assert [attempt(client, "x").status_code for _ in range(2)] == [401, 401]
        long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=2)
        records = app.state.db.login_attempts
        client.portal.call(
            records.update_one, {"_id": "victim@example.com"}, {"$set": {"window_start": long_ago}}
        )
        assert [attempt(client, "x").status_code for _ in range(3)] == [401, 401, 429]


def test_a_new_windows_record_carries_the_new_windows_expiry() -> None:
    """A new window reuses the old window's record (MongoDB's TTL monitor may not have deleted it yet): its
    expiry must move on with it, else the monitor deletes the new window's count within a minute and the
    guesser gets a fresh allowance (planted: the old window began 2 minutes ago, its record expires in 5s)."""
    app = make_app(login_max_failures=2, login_lockout_seconds=600, login_failure_window_seconds=60)
    with TestClient(app) as client:
        assert [attempt(client, "x").status_code for _ in range(2)] == [401, 401]
        now = datetime.now(UTC).replace(tzinfo=None)
        records = app.state.db.login_attempts
        client.portal.call(
            records.update_one,
            {"_id": "victim@example.com"},
            {"$set": {"window_start": now - timedelta(minutes=2), "expires_at": now + timedelta(seconds=5)}},
        )
        assert attempt(client, "x").status_code == 401  # the first failure of a new window
        record = client.portal.call(records.find_one, {"_id": "victim@example.com"})
        assert record["attempts"] == 1, record
        lives = record["expires_at"] - now  # the lockout (600 s) is longer than the window (60 s)
        assert timedelta(seconds=599) < lives < timedelta(seconds=630), lives


def test_a_first_attempt_racing_another_replicas_counts_on_its_record(
    auth_with_victim: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas count the first failure of an account at once: one inserts the record, the other's
    insert hits the unique _id (planted: the record appears just before our insert). The loser counts on
    the winner's record: a 401 and two attempts counted, never a 500."""
    records = auth_with_victim.app.state.db.login_attempts  # type: ignore[attr-defined]
    collection_type = type(records)  # each `db.<name>` is a new object: the planting goes on the class
    insert_one = collection_type.insert_one
    raced: list[str] = []

    async def another_replica_first(self: Any, document: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == "login_attempts" and not raced:
            raced.append(document["_id"])
            await insert_one(self, {**document, "attempts": 1})  # the other replica's first failure
        return await insert_one(self, document, *args, **kwargs)  # ours: DuplicateKeyError after the race

    monkeypatch.setattr(collection_type, "insert_one", another_replica_first)
    assert attempt(auth_with_victim, "guess").status_code == 401
    record = auth_with_victim.portal.call(records.find_one, {"_id": "victim@example.com"})
    assert record["attempts"] == 2 and raced == ["victim@example.com"]
