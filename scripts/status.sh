#!/usr/bin/env bash
# make status: mesh, pods, services and the shop URL.
source "$(dirname "$0")/lib.sh"

cluster_exists || die "no kind cluster named $CLUSTER_NAME: run make up"
echo "mesh: $(current_mesh)"
run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get pods -o wide
run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get services
echo "shop: $(shop_url)"
