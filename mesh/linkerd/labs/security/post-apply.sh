#!/usr/bin/env bash
# Linkerd reads `config.linkerd.io/default-inbound-policy` when a pod starts: restart the shop so the
# namespace's current default takes effect (the lab's all-authenticated after `make lab`, the overlay's
# after `make lab-reset`, via post-reset.sh), and wait until every pod is back.
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "$0")/../../common.sh"
run $K -n "$NAMESPACE" rollout restart deployment
run $K -n "$NAMESPACE" rollout restart statefulset
wait_rollouts "mesh/linkerd/overlay"
