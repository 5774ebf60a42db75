#!/usr/bin/env bash
# Linkerd reads `config.linkerd.io/default-inbound-policy` when a pod starts: restart the shop so the
# lab's all-authenticated default takes effect, and wait until every pod is back.
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "$0")/../../common.sh"
run $K -n "$NAMESPACE" rollout restart deployment
run $K -n "$NAMESPACE" rollout restart statefulset
wait_rollouts "mesh/linkerd/overlay"
