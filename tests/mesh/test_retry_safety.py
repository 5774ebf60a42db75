"""Retries that re-send only where repeating a request is harmless (scripts/k8svalidate/retries.py).

The lesson's retry block covers every method of the user service, and this repo's first Linkerd resilience
lab did the same with annotations on the Service: a retried `POST /users/me/addresses` can store an address
twice. The checker finds any such retry; each case below plants one.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

from scripts.k8svalidate import render
from scripts.k8svalidate.resources import Doc, find, name
from scripts.k8svalidate.retries import istio_retry_errors, linkerd_retry_errors, unsafe_calls

LESSON_RETRIES = Path(__file__).parent / "fixtures" / "istio_lesson" / "http-retry-pattern.yaml"
ADDRESS_POST = "POST /users/me/addresses (from frontend-sa)"


@cache
def _rendered(mesh: str) -> tuple[Doc, ...]:
    return tuple(render(f"mesh/{mesh}/labs/resilience"))  # the lab on its mesh's overlay


def rendered(mesh: str) -> list[Doc]:
    return copy.deepcopy(list(_rendered(mesh)))


def one(docs: list[Doc], kind: str, wanted: str) -> Doc:
    (doc,) = [d for d in find(docs, kind) if name(d) == wanted]
    return doc


def test_the_non_idempotent_calls_come_from_the_services_code() -> None:
    calls = unsafe_calls()
    assert ("POST", "/users/me/addresses", "frontend-sa") in calls["user"]
    assert all(method not in ("GET", "PUT", "DELETE") for method, _, _ in calls["user"])


def test_both_resilience_labs_retry_only_what_is_safe_to_repeat() -> None:
    assert istio_retry_errors(rendered("istio")) == []
    assert linkerd_retry_errors(rendered("linkerd")) == []


def test_the_lessons_retry_block_on_the_user_service_is_reported() -> None:
    (lesson,) = yaml.safe_load_all(LESSON_RETRIES.read_text())
    lesson["spec"]["hosts"] = ["user"]  # the lesson's user-service is our user
    (error,) = istio_retry_errors([lesson])
    assert error.startswith("VirtualService user-service-vs route #0: a retry that re-sends covers")
    assert ADDRESS_POST in error


def test_istio_without_the_post_route_is_reported_and_safe_conditions_are_not() -> None:
    docs = rendered("istio")
    routes = one(docs, "VirtualService", "user")["spec"]["http"]
    post_route, retrying = routes
    assert post_route["match"] == [{"method": {"exact": "POST"}}]
    routes.remove(post_route)  # POSTs now reach the route that retries on 5xx
    (error,) = istio_retry_errors(docs)
    assert "VirtualService user route retries" in error and ADDRESS_POST in error
    retrying["retries"]["retryOn"] = "connect-failure,refused-stream"  # never reached the service: fine
    assert istio_retry_errors(docs) == []
    retrying["retries"]["retryOn"] = "connect-failure,503"  # a status code: Istio retries that answer
    assert len(istio_retry_errors(docs)) == 1
    retrying["retries"]["retryOn"] = "connect-failure,unavailable,retriable-status-codes"  # no codes named
    assert istio_retry_errors(docs) == []  # gRPC conditions and no status code: no HTTP call re-sent
    del retrying["retries"]["retryOn"]  # Istio's default: the same conditions, so the same answer
    assert istio_retry_errors(docs) == []
    retrying["retries"] = {"attempts": 3, "retryOn": "reset"}  # a reset after the request was sent
    assert len(istio_retry_errors(docs)) == 1
    retrying["retries"] = {"attempts": 0, "retryOn": "5xx"}  # retries off
    assert istio_retry_errors(docs) == []


def test_istios_default_retry_conditions_re_send_a_grpc_call_answered_unavailable() -> None:
    """Istio's default retryOn (unavailable, cancelled) reads grpc-status: it re-sends order's Reserve, which
    product may have done before it answered UNAVAILABLE."""
    destination = {"host": "product", "port": {"number": 9000}}
    route = {"match": [{"port": 9000}], "route": [{"destination": destination}]}
    vs = {"kind": "VirtualService", "metadata": {"name": "product-grpc"}, "spec": {"hosts": ["product"]}}
    vs["spec"]["http"] = [{**route, "retries": {"attempts": 2}}]
    (error,) = istio_retry_errors([vs])
    assert "POST /shop.inventory.v1.Inventory/Reserve (from order-sa)" in error
    vs["spec"]["http"] = [{**route, "retries": {"attempts": 2, "retryOn": "connect-failure,refused-stream"}}]
    assert istio_retry_errors([vs]) == []


def test_linkerd_retry_annotations_on_the_service_are_reported() -> None:
    docs = rendered("linkerd")
    user = one(docs, "Service", "user")
    user["metadata"]["annotations"] = {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3"}
    (error,) = linkerd_retry_errors(docs)
    assert error.startswith("Service user: a retry that re-sends covers") and ADDRESS_POST in error


def test_a_linkerd_retry_route_that_also_matches_post_is_reported() -> None:
    docs = rendered("linkerd")
    route = one(docs, "HTTPRoute", "user-idempotent-retries")
    route["spec"]["rules"][0]["matches"].append({"method": "POST"})
    (error,) = linkerd_retry_errors(docs)
    assert "HTTPRoute user-idempotent-retries (parent Service user)" in error and ADDRESS_POST in error
    del route["spec"]["rules"][0]["matches"]  # no match at all: every method
    assert len(linkerd_retry_errors(docs)) == 1
