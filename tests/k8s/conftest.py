"""Fixtures of the manifest and validator tests."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.k8svalidate import render


@pytest.fixture(scope="session")
def dev_docs() -> list[dict[str, Any]]:
    """k8s/overlays/dev as `kubectl kustomize` renders it (the shop without a mesh)."""
    return render("k8s/overlays/dev")
