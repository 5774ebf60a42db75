#!/usr/bin/env bash
# Install Linkerd (pinned edge release of 2.20, see scripts/versions.env) and mesh the shop.
# Called by `make up MESH=linkerd` and `make mesh MESH=linkerd` (scripts/mesh.sh removes Istio first); they
# then apply mesh/linkerd/overlay (namespace annotated for injection), restart and wait for the workloads,
# and run post-install.sh (`linkerd check --proxy`). DRY_RUN=1 prints every command, pipelines included.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

ensure_tool linkerd

log "Gateway API $GATEWAY_API CRDs (Linkerd's routes are Gateway API HTTPRoutes; must exist before Linkerd)"
if [[ "$CLUSTER" == sim ]] && ! online; then
  crds="$(crd_dir "gateway-api-$GATEWAY_API")" || die "no internet and no Gateway API CRDs: run make crds"
  log "CLUSTER=sim without internet: the same pinned CRDs from $crds"
else
  crds="$GATEWAY_API_URL"
fi
run $K apply --server-side -f "$crds"
# Objects of a new kind are refused ("no matches for kind") until the API server serves it: wait for that.
run $K wait --for=condition=Established --timeout=60s -f "$crds"

if namespace_exists linkerd; then
  # Re-running `linkerd install` would generate a NEW trust anchor and break the running proxies' mTLS.
  log "Linkerd is already installed: not installing it again (change it with \`linkerd upgrade\`)"
else
  log "Linkerd $LINKERD control plane (the CLI generates the identity trust anchor at install time)"
  run $L check --pre
  run_sh "$L install --crds | $K apply -f -"
  run_sh "$L install --crds | $K wait --for=condition=Established --timeout=60s -f -"
  # Proxy tracing is part of the control plane's configuration (the proxy injector reads it).
  run_sh "$L install --values $TRACING_VALUES | $K apply -f -"
fi
skip_on_sim "linkerd check (it checks the control plane's running proxies, which a simulated pod has not)" ||
  run $L check

# The collector the proxies and the apps send spans to: meshed, so it needs the proxy injector running.
log "Jaeger $JAEGER (trace collector, query API and UI; linkerd-jaeger is gone upstream since edge-25.10.1)"
run $K apply -k "$ROOT/mesh/linkerd/jaeger"
run $K -n linkerd-jaeger rollout status deployment/jaeger --timeout=300s

if ! namespace_exists linkerd-viz; then
  log "Linkerd viz (dashboard, metrics, tap)"
  run_sh "$L viz install --values $VIZ_VALUES | $K apply -f -"
fi
skip_on_sim "linkerd viz check (it queries the viz pods, which run no container here)" || run $L viz check

# viz ships no Grafana since 2.12: the shop's, meshed, admitted to viz's Prometheus (mesh/linkerd/grafana).
log "the shop's Grafana dashboard (namespace grafana, reading viz's Prometheus)"
run $K apply -k "$ROOT/mesh/linkerd/grafana"

if namespace_exists "$NAMESPACE"; then
  # Imperative twin of the annotation mesh/linkerd/overlay declares; pods get proxies when restarted.
  run $K annotate namespace "$NAMESPACE" linkerd.io/inject=enabled --overwrite
fi
