#!/usr/bin/env bash
# `make dashboards MESH=linkerd`: Jaeger and the shop's Grafana through port-forwards, then Linkerd viz
# (http://localhost:50750) through the port-forward the CLI manages; Ctrl-C stops them all.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

ensure_tool linkerd
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for f in "linkerd-jaeger jaeger 16686:16686" "grafana grafana 3001:3000"; do
  read -r ns svc ports <<<"$f"
  if [[ "$DRY_RUN" == 1 ]]; then
    run $K -n "$ns" port-forward "svc/$svc" "$ports"
  else
    run $K -n "$ns" port-forward "svc/$svc" "$ports" >/dev/null &
    pids+=($!)
  fi
done
log "Jaeger http://localhost:16686 (service frontend; proxies report as linkerd-proxy), shop dashboard http://localhost:3001"
log "viz: Namespaces > ecommerce shows success rate, RPS, latency per workload; Ctrl-C to stop"
run $L viz dashboard --port 50750
finish
