"""One timestamp format for every service: ISO-8601 UTC with microseconds and `Z`.

Fixed width, so stored timestamps also sort and compare correctly as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(FORMAT)


def now_iso(offset_seconds: float = 0.0) -> str:
    return iso(utc_now() + timedelta(seconds=offset_seconds))


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
