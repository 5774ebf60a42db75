#!/usr/bin/env bash
# make lab MESH=<mesh> LAB=<lab>        apply a lab (a kustomize Component) on top of the mesh overlay
# make lab-reset MESH=<mesh> [LAB=..]   delete everything labelled `lab` and re-apply the plain overlay
# Without MESH (or MESH=none) the mesh installed in the cluster is used.
# A lab may ship mesh/<mesh>/labs/<lab>/pre-apply.sh (e.g. to create a TLS Secret), run first, and
# post-apply.sh (e.g. to restart pods that read an annotation only at start), run after the apply, and
# post-reset.sh, run by `make lab-reset` when that lab was applied. A lab listed in
# mesh/<mesh>/labs/standalone.txt runs alone (refused before its hooks run). The lifecycle itself (lab kinds,
# applied labs, deletion, the standalone rule) is scripts/labs.sh, shared with the mesh uninstall scripts.
source "$(dirname "$0")/lib.sh"
# shellcheck source=labs.sh
source "$(dirname "$0")/labs.sh"

ACTION="${1:-}"
MESH="${2:-${MESH:-}}"
LAB="${3:-${LAB:-}}"
usage="usage: lab.sh apply|reset MESH [LAB]"
[[ "$ACTION" == apply || "$ACTION" == reset ]] || die "$usage"

require_cluster
if ((NO_CLUSTER)); then
  [[ "$MESH" == istio || "$MESH" == linkerd ]] || die "DRY_RUN without a cluster: say which mesh (MESH=istio|linkerd)"
  installed="$MESH"
  log "DRY_RUN: assuming a cluster with mesh $MESH, the shop running and no lab applied"
else
  installed="$(current_mesh)"
fi
if [[ -z "$MESH" || "$MESH" == none ]]; then MESH="$installed"; fi
[[ "$MESH" == istio || "$MESH" == linkerd ]] || die "labs need a mesh: make mesh MESH=istio|linkerd$(cluster_arg) first ($usage)"
[[ "$installed" == "$MESH" ]] || die "the cluster runs mesh '$installed', not $MESH: run make mesh MESH=$MESH$(cluster_arg) first"
# The images the shop runs now (make up's content tags) stay: a lab must not change the code.
read -r -a images <<<"$(deployed_images | tr '\n' ' ')"

if [[ "$ACTION" == apply ]]; then
  dir="mesh/$MESH/labs/$LAB"
  if [[ -z "$LAB" || ! -f "$ROOT/$dir/kustomization.yaml" ]]; then
    die "unknown lab '$LAB'; labs for $MESH: $(cd "$ROOT/mesh/$MESH/labs" && ls -d */ 2>/dev/null | tr -d / | xargs)"
  fi
  # Labs stack: the labs already applied are rendered again with the new one, so applying a second lab
  # keeps the first one's changes to existing resources (kubectl apply would otherwise undo them).
  labs=()
  for other in $(applied_labs "$MESH" "$(lab_kinds_known)"); do [[ "$other" == "$LAB" ]] || labs+=("$other"); done
  # Before anything runs: a standalone lab (mesh/<mesh>/labs/standalone.txt) never joins another.
  refuse_mixing_with_standalone "$MESH" "$LAB" ${labs[@]+"${labs[@]}"}
  if [[ -x "$ROOT/$dir/pre-apply.sh" ]]; then "$ROOT/$dir/pre-apply.sh"; fi
  labs+=("$LAB")
  tmp=".cache/lab/$MESH-$LAB"
  write_app_kustomization "$tmp" "$MESH" "${labs[*]}" ${images[@]+"${images[@]}"}
  apply_app_kustomization "$tmp"
  if [[ -x "$ROOT/$dir/post-apply.sh" ]]; then "$ROOT/$dir/post-apply.sh"; fi
  finish "lab $LAB applied; undo with: make lab-reset MESH=$MESH$(cluster_arg)"
  exit 0
fi

# reset: delete what the labs added, in the shop's namespace and istio-system, then re-apply the overlay.
kinds="$(lab_kinds_known)"
was_applied="$(applied_labs "$MESH" "$kinds")"
delete_lab_resources "$kinds"
write_app_kustomization ".cache/app/$MESH" "$MESH" "" ${images[@]+"${images[@]}"}
apply_app_kustomization ".cache/app/$MESH"
# A lab whose effect outlives its resources ships post-reset.sh (Linkerd's security lab: pods keep the
# default inbound policy they started with, so the shop is restarted).
for name in $was_applied; do
  if [[ -x "$ROOT/mesh/$MESH/labs/$name/post-reset.sh" ]]; then "$ROOT/mesh/$MESH/labs/$name/post-reset.sh"; fi
done
finish "labs removed; $MESH overlay re-applied"
