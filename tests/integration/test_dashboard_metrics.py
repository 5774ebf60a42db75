"""The shop's Grafana dashboard (observability/grafana/shop-dashboard.json) against a real scrape.

Every panel's PromQL names metrics, labels and label values; after a purchase on the running stack, each of
them must exist in what the services' /metrics really serve (the labels Prometheus adds from the pod, app,
version, namespace and pod, excepted). A dashboard whose query names a metric nobody exports would show
"No data" on a student's cluster and look like a broken mesh. Planted mistakes show the check catches them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.dev import SERVICES, Stack

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "observability" / "grafana" / "shop-dashboard.json"
# Labels Prometheus attaches to every series from the scraped pod (the scrape jobs' relabelling: Istio's
# addon kubernetes-pods job, mesh/linkerd/install/viz-values.yaml), which a process's /metrics cannot have.
TARGET_LABELS = {"app", "version", "namespace", "pod"}
# A range selector, as every panel's rate() has: metric{matchers}[window] or metric[window].
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\[")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
Scrape = dict[str, dict[str, set[str]]]  # metric -> label -> values seen


def scrape(stack: Stack) -> Scrape:
    seen: Scrape = defaultdict(lambda: defaultdict(set))
    for service in SERVICES:
        text = httpx.get(f"{stack.url(service.name)}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                for label, value in sample.labels.items():
                    seen[sample.name][label].add(value)
                seen[sample.name].setdefault("__name__", set()).add(sample.name)
    return seen


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def query_errors(expr: str, seen: Scrape) -> list[str]:
    """What in one PromQL expression the scrape does not have: metrics, matched labels and exact values,
    `by (...)` labels. Grafana variables (`$service`) match anything."""
    errors: list[str] = []
    selectors = _SELECTOR.findall(expr)
    if not selectors:
        errors.append(f"no metric selector in {expr!r}")
    labels_of_query: set[str] = set()
    for metric, matchers in selectors:
        if metric not in seen:
            errors.append(f"metric {metric} is not in the scrape")
            continue
        labels_of_query |= set(seen[metric])
        for label, op, value in _MATCHER.findall(matchers):
            if label in TARGET_LABELS:
                continue
            if label not in seen[metric]:
                errors.append(f"{metric} has no label {label}")
            elif op == "=" and "$" not in value and value not in seen[metric][label]:
                errors.append(
                    f'{metric}{{{label}="{value}"}} is not in the scrape ({sorted(seen[metric][label])})'
                )
    for group in _BY.findall(expr):
        for label in (name.strip() for name in group.split(",")):
            if label and label not in labels_of_query | TARGET_LABELS:
                errors.append(f"by ({label}): no metric of the query has that label")
    return errors


def dashboard_errors(dashboard: dict[str, Any], seen: Scrape) -> list[str]:
    errors = []
    for panel in panels(dashboard):
        for target in panel["targets"]:
            errors += [f"panel {panel['title']!r}: {e}" for e in query_errors(target["expr"], seen)]
    return errors


def _purchase(frontend: str) -> None:
    with httpx.Client(base_url=frontend, timeout=20) as shop:
        email = f"dash-{uuid.uuid4().hex[:8]}@example.com"
        assert (
            shop.post(
                "/api/register", json={"email": email, "password": "pa55word!d", "name": "Di"}
            ).status_code
            == 201
        )
        token = shop.post("/api/login", json={"email": email, "password": "pa55word!d"}).json()[
            "access_token"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        product = next(p for p in shop.get("/api/products").json()["items"] if p["stock"] >= 1)
        assert shop.post(
            "/api/cart/items", json={"product_id": product["id"], "quantity": 1}, headers=auth
        ).is_success
        checkout = shop.post(
            "/api/checkout",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "shipping_address": {
                    "name": "Di",
                    "street": "Dam 1",
                    "city": "Amsterdam",
                    "postal_code": "1012 JS",
                    "country": "NL",
                },
                "card": {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
            },
        )
        assert checkout.status_code == 201, checkout.text


def test_the_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        for target in panel["targets"]:
            assert set(re.findall(r"\$(\w+)", target["expr"])) <= variables | {"__rate_interval"}, target[
                "expr"
            ]


def test_every_panel_query_finds_its_metrics_in_a_real_scrape(running_stack: Stack) -> None:
    _purchase(running_stack.url("frontend"))
    seen = scrape(running_stack)
    assert dashboard_errors(json.loads(DASHBOARD.read_text()), seen) == []


def test_a_planted_unknown_metric_label_or_value_is_caught(running_stack: Stack) -> None:
    seen = scrape(running_stack)
    planted = {
        'sum(rate(http_request_total{service="order"}[1m]))': [
            "metric http_request_total is not in the scrape"
        ],
        "sum by (handler) (rate(http_requests_total[1m]))": [
            "by (handler): no metric of the query has that label"
        ],
        'rate(http_requests_total{route="/order"}[1m])': [
            'http_requests_total{route="/order"} is not in the scrape'
        ],
        'rate(http_requests_total{code="500"}[1m])': ["http_requests_total has no label code"],
    }
    for expr, expected in planted.items():
        errors = query_errors(expr, seen)
        assert [e.split(" ([")[0] for e in errors] == expected, errors
