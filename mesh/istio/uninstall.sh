#!/usr/bin/env bash
# Remove Istio completely (called by `make mesh MESH=none|linkerd`): no more injection, addons and
# control plane gone (with every Istio resource: --purge removes the CRDs), pods restarted without sidecar.
source "$(dirname "$0")/common.sh"

log "remove Istio $ISTIO"
run "${K[@]}" label namespace "$NAMESPACE" istio-injection-
for addon in "${ADDONS[@]}"; do
  run "${K[@]}" delete -f "$ADDONS_URL/$addon.yaml" --ignore-not-found
done
run "${K[@]}" delete namespace payments-provider --ignore-not-found
run "${ISTIOCTL[@]}" uninstall --purge -y
run "${K[@]}" delete namespace "$ISTIO_NS" --ignore-not-found
run "${K[@]}" -n "$NAMESPACE" rollout restart deployment
run "${K[@]}" -n "$NAMESPACE" rollout restart statefulset
