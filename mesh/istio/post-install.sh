#!/usr/bin/env bash
# After the shop's pods were (re)created under Istio: every pod has an istio-proxy connected to istiod.
source "$(dirname "$0")/common.sh"
"$ISTIO_DIR/check-sidecars.sh"
[[ "$DRY_RUN" == 1 || "$CLUSTER" == sim ]] || log "shop: $(shop_url) through the ingress gateway. Dashboards: make dashboards MESH=istio"
