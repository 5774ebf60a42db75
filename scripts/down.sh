#!/usr/bin/env bash
# make down: delete the kind cluster (and with it MongoDB's data and the generated Secrets).
source "$(dirname "$0")/lib.sh"

if cluster_exists; then
  run kind delete cluster --name "$CLUSTER_NAME"
else
  log "no kind cluster named $CLUSTER_NAME: nothing to delete"
fi
