#!/usr/bin/env bash
# make status: mesh, pods, services and the shop URL.
source "$(dirname "$0")/lib.sh"

require_cluster
((NO_CLUSTER)) || echo "mesh: $(current_mesh)"
run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get pods -o wide
run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get services
finish "shop: $(shop_url)"
