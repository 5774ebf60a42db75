#!/usr/bin/env bash
# `make dashboards MESH=istio`: port-forward Kiali, Grafana, Jaeger and Prometheus to localhost and
# print their URLs. Ctrl-C stops all port-forwards.
source "$(dirname "$0")/common.sh"

# service local-port:service-port  (the addons' Service names and ports in istio-system)
forwards=(
  "kiali 20001:20001"
  "grafana 3000:3000"
  "tracing 16686:80"
  "prometheus 9090:9090"
)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for f in "${forwards[@]}"; do
  read -r svc ports <<<"$f"
  if [[ "$DRY_RUN" == 1 ]]; then
    run "${K[@]}" -n "$ISTIO_NS" port-forward "svc/$svc" "$ports"
  else
    run "${K[@]}" -n "$ISTIO_NS" port-forward "svc/$svc" "$ports" >/dev/null &
    pids+=($!)
  fi
done
if [[ "$DRY_RUN" == 1 ]]; then
  finish
  exit 0
fi
cat <<URLS
Kiali       http://localhost:20001/kiali   (Graph > namespace ecommerce; Display: Security, Traffic Distribution)
Grafana     http://localhost:3000    (Dashboards > Istio > Istio Service Dashboard)
Jaeger      http://localhost:16686/jaeger   (empty: tracing is not enabled yet, docs/lesson-corrections.md#tracing)
Prometheus  http://localhost:9090    (e.g. istio_requests_total{destination_app="product"})
URLS
wait
