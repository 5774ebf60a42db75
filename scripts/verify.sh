#!/usr/bin/env bash
# make verify [MESH=none|istio|linkerd] [LAB=<lab>]: the live checks of tests/cluster on the running cluster.
# pytest runs with --live (tests/cluster/conftest.py): no reachable cluster is a failure with the reason, and
# so is a run in which every check was skipped (e.g. the lab is not applied). DRY_RUN=1 prints the pytest
# command and the checks it would run, without a cluster.
source "$(dirname "$0")/lib.sh"

MESH="${1:-${MESH:-none}}"
LAB="${2:-${LAB:-}}"
PYTEST="${PYTEST:-$ROOT/.venv/bin/pytest}"
check_mesh_name "$MESH"
cd "$ROOT" || exit 1

if [[ "$MESH" == none ]]; then
  [[ -z "$LAB" ]] || die "labs run on a mesh: make verify MESH=istio|linkerd LAB=$LAB$(cluster_arg)"
  paths=(tests/cluster/test_*.py)
elif [[ -n "$LAB" ]]; then
  paths=("tests/cluster/$MESH/test_${LAB//-/_}.py")
  [[ -f "${paths[0]}" ]] || die "no live checks for lab '$LAB' of $MESH; labs for $MESH:" \
    "$(cd "mesh/$MESH/labs" && ls -d */ 2>/dev/null | tr -d / | xargs)"
else
  paths=("tests/cluster/$MESH")
fi

cmd=("$PYTEST" --live -q -rs "${paths[@]}")
# The live checks send traffic through the shop and its proxies: the simulated cluster runs no container.
if [[ "$CLUSTER" == sim && "$DRY_RUN" != 1 ]]; then
  die "make verify needs a data plane, and the simulated cluster (CLUSTER=sim) runs no containers: every live" \
    "check sends traffic through the shop. What the simulated cluster can check, make sim-test checks; run the" \
    "live checks on a kind cluster (make up)."
fi
if [[ "$DRY_RUN" == 1 ]]; then
  run "${cmd[@]}"
  log "the checks it would run:"
  query "$PYTEST" --collect-only -q "${paths[@]}" | sed -n '/::/s/^/  /p'
  finish
  exit 0
fi
printf '+ %s\n' "${cmd[*]}"
exec "${cmd[@]}"
