#!/usr/bin/env bash
# make logs S=<service> [FOLLOW=1] [TAIL=200]: logs of every pod of a service (all its variants).
source "$(dirname "$0")/lib.sh"

S="${1:-${S:-}}"
[[ -n "$S" ]] || die "which service? make logs S=order   (one of: $SERVICES mongodb)"
[[ " $SERVICES mongodb " == *" $S "* ]] || die "unknown service '$S' (one of: $SERVICES mongodb)"
require_cluster
follow=()
[[ "${FOLLOW:-0}" == 1 ]] && follow=(--follow --max-log-requests=10)
run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" logs -l "app=$S" -c "$S" --prefix \
  --tail="${TAIL:-200}" ${follow[@]+"${follow[@]}"}
finish
