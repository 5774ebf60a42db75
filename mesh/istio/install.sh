#!/usr/bin/env bash
# Install the pinned Istio on the kind cluster (called by `make up MESH=istio` and `make mesh MESH=istio`):
# istioctl into ./bin, precheck, install (demo profile + kind NodePorts), injection label, addons,
# and, when the shop already runs, restart it so every pod gets a sidecar and check that it did.
source "$(dirname "$0")/common.sh"

log "Istio $ISTIO: install"
ensure_tool istioctl
run "${ISTIOCTL[@]}" x precheck
run "${ISTIOCTL[@]}" install -y -f "$ISTIO_DIR/install/istio-kind.yaml"

log "sidecar injection for namespace $NAMESPACE"
run_sh "kubectl --context $KUBE_CONTEXT create namespace $NAMESPACE --dry-run=client -o yaml | kubectl --context $KUBE_CONTEXT apply -f -"
run "${K[@]}" label namespace "$NAMESPACE" istio-injection=enabled --overwrite

log "addons of Istio $ISTIO: ${ADDONS[*]}"
for addon in "${ADDONS[@]}"; do
  run "${K[@]}" apply -f "$ADDONS_URL/$addon.yaml"
done
run "${K[@]}" -n "$ISTIO_NS" wait --for=condition=available --timeout=600s deployment --all

deployments="$(app_deployments)"
if [[ -z "$deployments" ]]; then
  log "no shop workloads yet: they get sidecars when they are created"
  exit 0
fi
log "restart the shop so every pod gets an istio-proxy sidecar"
run "${K[@]}" -n "$NAMESPACE" rollout restart deployment
run "${K[@]}" -n "$NAMESPACE" rollout restart statefulset
for d in $deployments; do
  run "${K[@]}" -n "$NAMESPACE" rollout status "$d" --timeout=300s
done
run "${K[@]}" -n "$NAMESPACE" rollout status statefulset/mongodb --timeout=300s
"$ISTIO_DIR/check-sidecars.sh"
