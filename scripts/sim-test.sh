#!/usr/bin/env bash
# make sim-test: a new simulated cluster (make sim-up), the tests/sim suite against its real API server, then
# make sim-down (also when the suite fails or is interrupted). Prints pytest's summary and the wall time;
# exits with pytest's status. Each test may take up to 15 minutes (a make up on a loaded machine). Extra arguments go to pytest (make sim-test PYTEST_ARGS="-k canary").
# SIM_KEEP=1 keeps the cluster up afterwards (to look around: CLUSTER=sim make status).
export CLUSTER=sim
source "$(dirname "$0")/lib.sh"

start=$SECONDS
# A cluster left by an earlier run may hold anything: the suite starts from a new one.
"$ROOT/scripts/sim-down.sh"
rc=1
cleanup() {
  if [[ "${SIM_KEEP:-0}" == 1 ]]; then
    log "SIM_KEEP=1: the simulated cluster stays up (make sim-down removes it)"
  else
    "$ROOT/scripts/sim-down.sh" || log "make sim-down failed (see above)"
  fi
  log "make sim-test: pytest exit status $rc, wall time $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s" \
    "(cluster up and down included)"
}
trap cleanup EXIT
"$ROOT/scripts/sim-up.sh"
rc=0
(cd "$ROOT" && SIM_SUITE=1 "$ROOT/.venv/bin/pytest" -p no:cacheprovider -rs --durations=15 --timeout=900 tests/sim "$@") || rc=$?
exit "$rc"
