#!/usr/bin/env bash
# Install the pinned Istio on the kind cluster (called by `make up MESH=istio` and `make mesh MESH=istio`):
# istioctl into ./bin, precheck, install (demo profile + kind NodePorts), injection label, addons, the shop's
# Grafana. Tracing needs no install step: the Jaeger addon is the demo profile's `jaeger` provider and the
# overlay's Telemetry resources switch it on (mesh/istio/overlay/telemetry.yaml).
# The control plane only: creating or restarting the shop is scripts/up.sh's / scripts/mesh.sh's job,
# and they then run post-install.sh (every pod has its sidecar).
source "$(dirname "$0")/common.sh"

log "Istio $ISTIO: install"
ensure_tool istioctl
run "${ISTIOCTL[@]}" x precheck
run "${ISTIOCTL[@]}" install -y -f "$ISTIO_DIR/install/istio-kind.yaml"
[[ "$DRY_RUN" == 1 ]] || echo # istioctl ends its last line without a newline

log "sidecar injection for namespace $NAMESPACE"
run_sh "kubectl --context $KUBE_CONTEXT create namespace $NAMESPACE --dry-run=client -o yaml | kubectl --context $KUBE_CONTEXT apply -f -"
run "${K[@]}" label namespace "$NAMESPACE" istio-injection=enabled --overwrite

log "addons of Istio $ISTIO: ${ADDONS[*]}"
if [[ "$CLUSTER" == sim ]] && ! online; then
  log "CLUSTER=sim: skipped the addons (downloaded from $ADDONS_URL, and there is no internet here)"
else
  for addon in "${ADDONS[@]}"; do
    run "${K[@]}" apply -f "$ADDONS_URL/$addon.yaml"
  done
fi
run "${K[@]}" -n "$ISTIO_NS" wait --for=condition=available --timeout=600s deployment --all

log "the shop's Grafana dashboard (namespace grafana, reading the addon Prometheus)"
run "${K[@]}" apply -k "$ISTIO_DIR/grafana"

# The shop's pods get their sidecars when scripts/up.sh creates them or scripts/mesh.sh restarts them;
# both then run mesh/istio/post-install.sh, which checks that every pod has one.
