#!/usr/bin/env bash
# make sim-down: delete the simulated cluster of make sim-up and leave nothing behind: it ends the helper
# process (and the istiod it runs) and the control plane (kwokctl delete cluster), checks that none of their
# processes is still alive and none of their ports still listens, and removes .cache/sim. Idempotent.
export CLUSTER=sim
source "$(dirname "$0")/lib.sh"

KWOK_DIR="$SIM_DIR/kwok"
PIDFILE="$SIM_DIR/controlplane.pid"

if [[ ! -e "$SIM_DIR" ]]; then
  log "no simulated cluster ($SIM_DIR does not exist): nothing to delete"
  finish
  exit 0
fi

# The processes of this cluster: the helper's process group (it runs istiod) and kwokctl's components (their
# pid files), and the TCP ports they listen on. Read before anything is stopped, checked after.
sim_pids() {
  local pid
  if [[ -f "$PIDFILE" ]] && pid="$(cat "$PIDFILE")" && [[ "$pid" =~ ^[0-9]+$ ]]; then
    ps -o pid= -g "$pid" 2>/dev/null || true
  fi
  local file
  for file in "$KWOK_DIR"/clusters/*/pids/*.pid; do
    [[ -f "$file" ]] && printf '%s\n' "$(cat "$file")"
  done
  return 0
}
listening_ports_of() {
  local pids="$1"
  [[ -n "$pids" ]] || return 0
  ss -ltnpH 2>/dev/null | awk -v pids=" $(tr '\n' ' ' <<<"$pids") " '{
    n = split($0, f, "pid="); for (i = 2; i <= n; i++) { split(f[i], p, ","); if (index(pids, " " p[1] " ")) { sub(/.*:/, "", $4); print $4 } } }' |
    sort -un
}
pids="$(sim_pids | awk '$1 ~ /^[0-9]+$/ {print $1}' | sort -un)"
ports="$(listening_ports_of "$pids")"
log "simulated cluster $CLUSTER_NAME: processes $(xargs <<<"$pids"), listening on ports $(xargs <<<"$ports")"

log "[1/3] the helper (egress proxy, istiod)"
if [[ -f "$PIDFILE" ]] && pid="$(cat "$PIDFILE")" && [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
  run kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break && sleep 0.5; done
  # What outlives 30 s is ended: the helper's process group, which this script's sim-up started.
  if ps -o pid= -g "$pid" >/dev/null 2>&1; then run kill -KILL -- "-$pid"; fi
else
  log "the helper is not running"
fi

# What the programs the helper ran (istiod) cost, from its log.
grep -h " used .* s CPU" "$SIM_DIR/logs/controlplane.log" 2>/dev/null | sed 's/^[^ ]* [^ ]* [^ ]* INFO /  /' || true

log "[2/3] control plane: kwokctl delete cluster $CLUSTER_NAME"
if [[ -d "$KWOK_DIR/clusters/$CLUSTER_NAME" ]]; then
  # kwokctl logs in JSON lines: into a temporary file, shown when it fails.
  kwokctl_log="$(mktemp)"
  run env KWOK_WORKDIR="$KWOK_DIR" kwokctl --name "$CLUSTER_NAME" delete cluster --kubeconfig "$KUBECONFIG" \
    2>"$kwokctl_log" || {
    cat "$kwokctl_log" >&2
    log "kwokctl delete cluster failed: ending its processes by their pid files"
  }
  rm -f "$kwokctl_log"
fi
# kwokctl stops its components with SIGTERM; give them 20 s to exit, then end what is left by its pid.
for _ in $(seq 1 40); do
  alive=""
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive+=" $pid"; done
  [[ -z "$alive" ]] && break
  sleep 0.5
done
for pid in $alive; do run kill -KILL "$pid"; done

log "[3/3] files: $SIM_DIR"
run rm -rf "$SIM_DIR"

[[ "$DRY_RUN" == 1 ]] && finish && exit 0
sleep 0.5
alive=""
for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive+=" $pid"; done
# A port counts as left behind when one of the cluster's processes still listens on it (a port another
# program took afterwards is not ours).
open="$(listening_ports_of "$pids" | xargs)"
[[ -z "$alive" ]] || die "processes of the simulated cluster still run:$alive"
[[ -z "$open" ]] || die "ports of the simulated cluster still listen:$open"
[[ ! -e "$SIM_DIR" ]] || die "$SIM_DIR still exists"
# Said at any depth: `make down` runs this script from scripts/down.sh, and a student wants to see it happen.
log "simulated cluster deleted: $(wc -w <<<"$pids") processes ended, ports $(xargs <<<"$ports") closed," \
  "$SIM_DIR removed"
