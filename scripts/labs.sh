# shellcheck shell=bash
# The lab lifecycle both meshes share. Sourced (after scripts/lib.sh) by scripts/lab.sh (make lab, make
# lab-reset) and mesh/*/uninstall.sh (a mesh switch removes the old mesh's labs):
#   lab_kinds_known              the kinds of mesh/lab-kinds.txt the cluster serves, comma-separated
#   applied_labs MESH KINDS      the labs of MESH applied now (the `lab` labels found in the cluster)
#   delete_lab_resources KINDS   delete everything labelled `lab`, and the namespaces labs created
#   refuse_mixing_with_standalone MESH LAB APPLIED...   a lab in mesh/MESH/labs/standalone.txt runs alone
# Read-only queries also run under DRY_RUN (lib.sh `query`); without a cluster they find nothing.

LAB_KINDS_FILE="$ROOT/mesh/lab-kinds.txt"
LAB_NAMESPACES=("$NAMESPACE" istio-system) # where lab resources live (the gateway's TLS Secret: istio-system)

lab_kinds_known() {
  local known selected=() kind
  known="$(query kubectl --context "$KUBE_CONTEXT" api-resources --namespaced -o name 2>/dev/null || true)"
  while read -r kind; do
    [[ -z "$kind" || "$kind" == \#* ]] && continue
    if [[ "$DRY_RUN" == 1 && -z "$known" ]] || grep -qx "$kind" <<<"$known"; then selected+=("$kind"); fi
  done <"$LAB_KINDS_FILE"
  ((${#selected[@]})) || die "the cluster knows none of the lab resource kinds of mesh/lab-kinds.txt"
  local IFS=,
  echo "${selected[*]}"
}

applied_labs() {
  local mesh="$1" kinds="$2" ns name
  for ns in "${LAB_NAMESPACES[@]}"; do
    query kubectl --context "$KUBE_CONTEXT" -n "$ns" get "$kinds" -l lab \
      -o jsonpath='{range .items[*]}{.metadata.labels.lab}{"\n"}{end}' 2>/dev/null || true
  done | sed '/^$/d' | sort -u | while read -r name; do
    if [[ -f "$ROOT/mesh/$mesh/labs/$name/kustomization.yaml" ]]; then echo "$name"; fi
  done
}

delete_lab_resources() {
  local kinds="$1" ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    run kubectl --context "$KUBE_CONTEXT" -n "$ns" delete "$kinds" -l lab --ignore-not-found
  done
  # Namespaces a lab created (the egress lab's stand-in provider) go too.
  run kubectl --context "$KUBE_CONTEXT" delete namespace -l lab --ignore-not-found
}

refuse_mixing_with_standalone() {
  local mesh="$1" lab="$2" other others=() file="$ROOT/mesh/$1/labs/standalone.txt"
  shift 2
  [[ -f "$file" ]] || return 0
  for other in "$@"; do
    [[ "$other" == "$lab" ]] && continue
    if grep -qx "$lab" "$file" || grep -qx "$other" "$file"; then others+=("$other"); fi
  done
  ((${#others[@]} == 0)) || die "lab $lab cannot run together with lab ${others[*]} (a standalone lab, see" \
    "mesh/$mesh/labs/standalone.txt and docs/$mesh/): run make lab-reset MESH=$mesh$(cluster_arg) first"
}
