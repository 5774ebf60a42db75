"""resilience lab: retries + timeouts on user, failure accrual on payment, the error injector's 10 % share.

To have something to retry or to break, a test adds a misbehaving pod with the labels of the real
service (so its Service sends it traffic) and removes it afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.helpers import NAMESPACE, binomial_ok, pull_policy_for
from tests.cluster.linkerd.helpers import kubectl, require_lab, stat_outbound

pytestmark = pytest.mark.cluster
NGINX = "docker.io/nginxinc/nginx-unprivileged:1.29.4-alpine3.23"


@pytest.fixture(autouse=True)
def _resilience_applied() -> None:
    require_lab("httproutes.gateway.networking.k8s.io", "payment-fault-injection", "resilience")


def _nginx_pod(app: str, conf: str, annotations: dict[str, str] | None = None) -> Iterator[str]:
    """A meshed nginx pod labelled app=<app>, version=broken, serving `conf` on the port named http (3000)."""
    name = f"{app}-broken-{uuid.uuid4().hex[:5]}"
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"default.conf": conf},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": app, "version": "broken"},
            "annotations": annotations or {},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "nginx",
                    "image": NGINX,
                    "imagePullPolicy": pull_policy_for(NGINX),
                    "ports": [{"name": "http", "containerPort": 3000}],
                    "readinessProbe": {"tcpSocket": {"port": 3000}},
                    "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}],
                }
            ],
            "volumes": [{"name": "conf", "configMap": {"name": name}}],
        },
    }
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [config, pod]})
    )
    try:
        kubectl(
            "-n", NAMESPACE, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=180s", timeout=200
        )
        yield name
    finally:
        kubectl("-n", NAMESPACE, "delete", "pod,configmap", name, "--wait=false", check=False)


@pytest.fixture
def flaky_user() -> Iterator[str]:
    # Fails 30 % of the requests (at random, by nginx's random $request_id) and answers the rest. Not 100 %: a
    # pod that fails fast is also the fastest, and Linkerd's latency-aware (EWMA) balancer would send nearly
    # every attempt, retries included, to it (the reason failure accrual exists, tested on payment below).
    yield from _nginx_pod(
        "user",
        'split_clients "${request_id}" $fail { 30% 1; * 0; }\n'
        "server { listen 3000; location / { add_header x-served-by user/flaky always;"
        ' if ($fail) { return 500; } return 200 \'{"status": "ok"}\'; } }',
    )


@pytest.fixture
def hanging_user() -> Iterator[str]:
    # nginx waits up to 60 s for an unroutable upstream; port 81 bypasses this pod's own proxy so that the
    # connection really hangs instead of being failed fast by Linkerd.
    yield from _nginx_pod(
        "user",
        "server { listen 3000; location / {"
        " proxy_connect_timeout 60s; proxy_pass http://10.255.255.1:81; } }",
        {"config.linkerd.io/skip-outbound-ports": "81"},
    )


@pytest.fixture
def failing_payment() -> Iterator[str]:
    yield from _nginx_pod(
        "payment",
        "server { listen 3000; location / { add_header x-served-by payment/broken always; return 500; } }",
    )


def _user_retry_rate(client) -> float:
    client.metrics_settle()
    rows = [r for r in stat_outbound(f"pod/{client.name}") if r.get("service") == "user" and "retryRate" in r]
    assert rows, "stat-outbound shows no route to the user service"
    return max(r["retryRate"] or 0.0 for r in rows)


@pytest.mark.timeout(600)
def test_retries_hide_a_flaky_user_endpoint(l5d_client, flaky_user) -> None:
    client = l5d_client("frontend-sa")
    replies = client.requests("http://user:3000/healthz", 100)
    ok = sum(r.status == 200 for r in replies)
    # Without retries about 30 % of the attempts that reach the flaky pod fail (it gets most of them: it is
    # the fastest). With retry.linkerd.io/limit 3 a request fails only when 4 attempts in a row fail (< 1 %).
    assert ok >= 95, f"only {ok}/100 succeeded: retries are not applied"
    assert any(r.served_by == "user/flaky" for r in replies), "the flaky pod got no traffic: nothing tested"
    assert _user_retry_rate(client) > 0, "linkerd viz stat-outbound counted no retries"


@pytest.mark.timeout(900)
def test_timeouts_cut_a_hanging_user_endpoint(l5d_client, hanging_user) -> None:
    client = l5d_client("frontend-sa")
    # 2 s apart, for 80 s: after an attempt hung, the balancer avoids the hanging pod (its latency estimate
    # jumps) until the estimate has decayed, so a quick burst of requests would meet it once at most.
    replies = client.requests("http://user:3000/healthz", 40, pause=2)
    slowest = max(r.seconds for r in replies)
    ok = sum(r.status == 200 for r in replies)
    if slowest < 1.5:
        pytest.skip(
            "no attempt hung in 80 s: the balancer never picked the hanging pod, or this node network "
            "rejects 10.255.255.1 instead of dropping it"
        )
    # retry.linkerd.io/timeout 2s ends an attempt on the hanging pod and retries elsewhere; the request
    # timeout of 10s is the upper bound. Without them curl would wait its own 15 s.
    assert slowest < 10.5, f"a request took {slowest:.1f}s: timeouts are not applied"
    assert ok >= 38, f"only {ok}/40 succeeded"
    assert _user_retry_rate(client) > 0, "timed-out attempts were not retried"


@pytest.mark.timeout(600)
def test_failure_accrual_stops_sending_to_a_failing_payment_endpoint(l5d_client, failing_payment) -> None:
    replies = l5d_client("order-sa").requests("http://payment:3000/healthz", 200)
    from_payment = [r for r in replies if r.served_by.startswith("payment/")]
    broken = sum(r.served_by == "payment/broken" for r in from_payment)
    # Without circuit breaking the broken pod would get about half (more: it answers fastest). After 3
    # consecutive failures it is ejected for at least 30 s, so only a handful reach it.
    assert len(from_payment) >= 150, f"too few answers from payment pods: {len(from_payment)}"
    assert broken <= 0.1 * len(from_payment), f"broken endpoint still got {broken}/{len(from_payment)}"


@pytest.mark.timeout(1200)
def test_error_injector_takes_about_10_percent_of_payment_calls(l5d_client) -> None:
    n = 500
    client = l5d_client("order-sa")
    replies = client.requests("http://payment:3000/healthz", n)
    injected = sum(not r.served_by.startswith("payment/") for r in replies)
    # Injected = answered by the error injector (500) or failed fast (503) once its circuit is open.
    assert all(r.status in (500, 503) for r in replies if not r.served_by.startswith("payment/"))
    assert binomial_ok(injected, n, 0.10), f"{injected}/{n} injected failures, expected about 10 %"
    client.metrics_settle()
    backends = {
        r.get("backend") for r in stat_outbound(f"pod/{client.name}") if r.get("service") == "payment"
    }
    assert "error-injector" in backends, f"stat-outbound backends of payment: {backends}"
