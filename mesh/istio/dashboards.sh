#!/usr/bin/env bash
# `make dashboards MESH=istio`: port-forward Kiali, Istio's Grafana, Jaeger, Prometheus and the shop's Grafana to
# localhost and print their URLs. Ctrl-C stops all port-forwards.
source "$(dirname "$0")/common.sh"

# namespace service local-port:service-port  (the addons' Services in istio-system, the shop's Grafana)
forwards=(
  "$ISTIO_NS kiali 20001:20001"
  "$ISTIO_NS grafana 3000:3000"
  "$ISTIO_NS tracing 16686:80"
  "$ISTIO_NS prometheus 9090:9090"
  "grafana grafana 3001:3000"
)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for f in "${forwards[@]}"; do
  read -r ns svc ports <<<"$f"
  if [[ "$DRY_RUN" == 1 ]]; then
    run "${K[@]}" -n "$ns" port-forward "svc/$svc" "$ports"
  else
    run "${K[@]}" -n "$ns" port-forward "svc/$svc" "$ports" >/dev/null &
    pids+=($!)
  fi
done
if [[ "$DRY_RUN" == 1 ]]; then
  finish
  exit 0
fi
cat <<URLS
Kiali       http://localhost:20001/kiali   (Graph > namespace ecommerce, Versioned app graph; Display: Traffic Distribution)
Grafana     http://localhost:3000    (Istio's dashboards: Dashboards > Istio > Istio Service Dashboard)
Shop        http://localhost:3001    (the shop's dashboard: rate, errors, duration per service and route, checkouts)
Jaeger      http://localhost:16686/jaeger   (Service frontend.ecommerce or istio-ingressgateway.istio-system; docs/istio/observability.md)
Prometheus  http://localhost:9090    (e.g. istio_requests_total{destination_app="product"}, http_requests_total{app="order"})
URLS
wait
