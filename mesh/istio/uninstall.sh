#!/usr/bin/env bash
# Remove Istio completely (called by `make mesh MESH=none|linkerd`): no more injection, addons and
# control plane gone (with every Istio resource: --purge removes the CRDs). scripts/mesh.sh then applies
# the target's overlay and restarts the shop ONCE, so the pods come back without sidecar.
source "$(dirname "$0")/common.sh"
# shellcheck source=../../scripts/labs.sh
source "$ROOT/scripts/labs.sh"

log "remove Istio $ISTIO"
run "${K[@]}" label namespace "$NAMESPACE" istio-injection-
run "${K[@]}" delete -k "$ISTIO_DIR/grafana" --ignore-not-found
if [[ "$CLUSTER" == sim ]] && ! online; then
  log "CLUSTER=sim: skipped deleting the addons (make up did not install them without internet)"
else
  for addon in "${ADDONS[@]}"; do
    run "${K[@]}" delete -f "$ADDONS_URL/$addon.yaml" --ignore-not-found
  done
fi
# Every lab goes first, the same deletion as make lab-reset (the egress lab's provider namespace too).
delete_lab_resources "$(lab_kinds_known)"
run "${ISTIOCTL[@]}" uninstall --purge -y
[[ "$DRY_RUN" == 1 ]] || echo # istioctl ends its last line without a newline
run "${K[@]}" delete namespace "$ISTIO_NS" --ignore-not-found
# istiod writes its CA's root certificate (istio-ca-root-cert) and revocation list (istio-ca-crl) into every
# namespace; `istioctl uninstall --purge` leaves them behind (make sim-test found them). istiod is gone now, so
# nothing writes them again.
for configmap in istio-ca-root-cert istio-ca-crl; do
  run "${K[@]}" delete configmap --all-namespaces --field-selector "metadata.name=$configmap" --ignore-not-found
done
