#!/usr/bin/env bash
# Remove Istio completely (called by `make mesh MESH=none|linkerd`): no more injection, addons and
# control plane gone (with every Istio resource: --purge removes the CRDs). scripts/mesh.sh then applies
# the target's overlay and restarts the shop ONCE, so the pods come back without sidecar.
source "$(dirname "$0")/common.sh"

log "remove Istio $ISTIO"
run "${K[@]}" label namespace "$NAMESPACE" istio-injection-
for addon in "${ADDONS[@]}"; do
  run "${K[@]}" delete -f "$ADDONS_URL/$addon.yaml" --ignore-not-found
done
run "${K[@]}" delete namespace payments-provider --ignore-not-found
run "${ISTIOCTL[@]}" uninstall --purge -y
run "${K[@]}" delete namespace "$ISTIO_NS" --ignore-not-found
