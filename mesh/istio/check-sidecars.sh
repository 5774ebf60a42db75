#!/usr/bin/env bash
# Check that every running shop pod has an istio-proxy (a native sidecar: an init container with
# restartPolicy Always since Istio 1.27, or a classic container) and is connected to istiod.
source "$(dirname "$0")/common.sh"

skip_on_sim "istioctl proxy-status (it lists the sidecars connected to istiod; no sidecar runs on simulated pods," \
  "so only their injected spec is checked below)" || run "${ISTIOCTL[@]}" proxy-status
[[ "$DRY_RUN" == 1 ]] && exit 0
missing=()
while read -r pod names; do
  [[ " $names " == *" istio-proxy "* ]] || missing+=("$pod")
done < <("${K[@]}" -n "$NAMESPACE" get pods --field-selector=status.phase=Running \
  -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.initContainers[*].name}{" "}{.spec.containers[*].name}{"\n"}{end}')
((${#missing[@]} == 0)) || die "pods without istio-proxy: ${missing[*]} (restart them: kubectl -n $NAMESPACE rollout restart deployment)"
log "every pod in $NAMESPACE has an istio-proxy sidecar"
