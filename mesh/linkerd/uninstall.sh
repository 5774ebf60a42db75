#!/usr/bin/env bash
# Remove Linkerd cleanly: lab resources, namespace annotations, (linkerd-smi), Jaeger, viz, control plane + CRDs.
# scripts/mesh.sh then applies the target's overlay and restarts the shop, so pods come back without proxies.
# Gateway API CRDs stay (Istio and other tools use them too).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=../../scripts/labs.sh
source "$ROOT/scripts/labs.sh"

ensure_tool linkerd

if namespace_exists "$NAMESPACE"; then
  log "removing every lab and the Linkerd annotations from namespace $NAMESPACE"
  # The labs go first (the same deletion as make lab-reset): HTTPRoutes outlive Linkerd (Gateway API CRDs
  # stay), and so would a lab's Deployments, Services and ConfigMaps.
  delete_lab_resources "$(lab_kinds_known)"
  run $K annotate namespace "$NAMESPACE" linkerd.io/inject- config.linkerd.io/opaque-ports- \
    config.linkerd.io/default-inbound-policy-
fi

if namespace_exists linkerd-smi; then
  run_sh "linkerd-smi --context $KUBE_CONTEXT uninstall | $K delete -f -"
fi
# The shop's Grafana and the Jaeger that install.sh added (nothing to do when they are not there).
run $K delete -k "$ROOT/mesh/linkerd/grafana" --ignore-not-found
run $K delete -k "$ROOT/mesh/linkerd/jaeger" --ignore-not-found
run_sh "$L viz uninstall | $K delete -f -"
# --force: `linkerd uninstall` refuses (exit 1) while any pod outside the control plane still has a proxy, and
# the shop's pods keep theirs until scripts/mesh.sh restarts them once, right after the target mesh is installed
# (the namespace annotation is gone, so they come back without). Until then their proxies keep the last
# configuration and certificates they received.
run_sh "$L uninstall --force | $K delete -f -"

