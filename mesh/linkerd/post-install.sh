#!/usr/bin/env bash
# After the shop's pods were restarted under Linkerd: every pod has a healthy, up-to-date proxy.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

ensure_tool linkerd
skip_on_sim "linkerd check --proxy (it checks running proxies; the simulated pods only carry the injected spec)" ||
  run $L check --proxy -n "$NAMESPACE"
[[ "$DRY_RUN" == 1 || "$CLUSTER" == sim ]] || log "shop: $(shop_url) (frontend NodePort 30080, meshed). Dashboard: make dashboards MESH=linkerd"
