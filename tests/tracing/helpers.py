"""What the tracing tests share: the shop as `make dev TRACING=jaeger` runs it (conftest.py starts it)."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.dev import Stack
from scripts.jaeger import Jaeger, TraceQuery


@dataclass
class TracedShop:
    """The running stack, its Jaeger and a query client for Jaeger's API."""

    stack: Stack
    jaeger: Jaeger
    query: TraceQuery

    @property
    def frontend(self) -> str:
        return self.stack.url("frontend")
