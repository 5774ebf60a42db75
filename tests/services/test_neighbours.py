"""Each service is configured with the neighbours it calls, and only those: its settings mirror the call
graph of docs/architecture.md ("Who calls whom"), the table every mesh authorization policy is written from.
"""

from __future__ import annotations

import importlib

import pytest

from scripts.k8svalidate.contract import architecture_callers
from services import topology
from services.kit.settings import ServiceSettings, neighbour_settings


def settings_class(service: str) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"services.{service}.settings").Settings
    return cls


def documented_callees() -> dict[str, set[str]]:
    """caller -> the services (and mongodb) it calls, from the table in docs/architecture.md."""
    callees: dict[str, set[str]] = {}
    for (callee, _protocol), callers in architecture_callers().items():
        for caller in callers - {"unauthenticated"}:
            callees.setdefault(caller, set()).add(callee)
    return callees


def neighbour_errors(service: str, cls: type[ServiceSettings], documented: dict[str, set[str]]) -> list[str]:
    configured = set(neighbour_settings(cls).values())
    expected = documented.get(service, set())
    errors = [
        f"{service} is configured for {n}, which it does not call" for n in sorted(configured - expected)
    ]
    errors += [
        f"{service} calls {n} but has no setting saying where it is" for n in sorted(expected - configured)
    ]
    return errors


@pytest.mark.parametrize("service", topology.SERVICES)
def test_settings_name_exactly_the_neighbours_of_the_call_graph(service: str) -> None:
    assert neighbour_errors(service, settings_class(service), documented_callees()) == []


def test_the_call_graph_has_a_row_for_every_service() -> None:
    documented = documented_callees()
    assert set(documented) == set(topology.SERVICES)
    assert documented["product"] == {"mongodb"}  # product calls nobody: its settings name no service
    assert "mongodb" not in documented["frontend"]


def test_a_neighbour_the_service_does_not_call_is_caught() -> None:
    order = settings_class("order")
    planted = type("Settings", (order,), {"__annotations__": {"user_url": str}, "user_url": "http://user"})
    assert neighbour_errors("order", planted, documented_callees()) == [
        "order is configured for user, which it does not call"
    ]


def test_a_call_without_its_setting_is_caught() -> None:
    documented = documented_callees()
    documented["product"] = documented["product"] | {"payment"}
    assert neighbour_errors("product", settings_class("product"), documented) == [
        "product calls payment but has no setting saying where it is"
    ]


def test_every_service_url_default_is_its_dev_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults are where `make dev` runs each neighbour (services/topology.env), so a service started alone
    with `python -m services.<name>` finds the others."""
    for service in topology.SERVICES:
        cls = settings_class(service)
        for name in cls.model_fields:
            monkeypatch.delenv(name.upper(), raising=False)
        settings = cls()
        assert settings.port == topology.dev_port(service)
        for name, neighbour in neighbour_settings(type(settings)).items():
            value = getattr(settings, name)
            if neighbour in topology.SERVICES and name.endswith("_url"):
                assert value.startswith(topology.dev_url(neighbour)), (service, name, value)
