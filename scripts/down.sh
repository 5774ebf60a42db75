#!/usr/bin/env bash
# make down: delete the kind cluster (and with it MongoDB's data and the generated Secrets).
source "$(dirname "$0")/lib.sh"

# CLUSTER=sim: the simulated cluster (make sim-down), reporting as if started directly.
[[ "$CLUSTER" == sim ]] && SHOP_SCRIPT_DEPTH=$((SHOP_SCRIPT_DEPTH - 1)) exec "$ROOT/scripts/sim-down.sh"

case "$(cluster_state)" in
  docker-down) die "Docker is not running, so kind cannot see its clusters: start Docker, then make down again" ;;
  absent | no-kind)
    log "no kind cluster named $CLUSTER_NAME: nothing to delete"
    finish
    ;;
  *)
    run kind delete cluster --name "$CLUSTER_NAME"
    finish "kind cluster $CLUSTER_NAME deleted (with MongoDB's data and the Secrets)"
    ;;
esac
