# shellcheck shell=bash
# shellcheck disable=SC2034  # K, L, GATEWAY_API_URL are used by the scripts that source this file
# Sourced by the Linkerd scripts: scripts/lib.sh (run, run_sh, query, log, die, ensure_tool, pinned
# versions from scripts/versions.env) plus the names the Linkerd scripts share.
# shellcheck source=../../scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"

# Every command names the kind cluster's context explicitly, so a student's other clusters are never touched.
K="kubectl --context $KUBE_CONTEXT"
L="linkerd --context $KUBE_CONTEXT"
GATEWAY_API_URL="https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API/standard-install.yaml"
# Every Linkerd script acts on the cluster: a real run without one stops here with the reason.
require_cluster
# Read-only: also runs under DRY_RUN=1 (lib.sh `query`).
namespace_exists() { query kubectl --context "$KUBE_CONTEXT" get namespace "$1" >/dev/null 2>&1; }

# The `lab` labels of the Linkerd lab resources in the shop's namespace, one a line (read-only; a kind whose CRD
# is not installed counts as none).
lab_labels() {
  local kind
  for kind in httproutes.gateway.networking.k8s.io servers.policy.linkerd.io serviceprofiles.linkerd.io \
    trafficsplits.split.smi-spec.io; do
    query kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get "$kind" -l lab \
      -o jsonpath='{range .items[*]}{.metadata.labels.lab}{"\n"}{end}' 2>/dev/null || true
  done | sed '/^$/d' | sort -u
}

# A lab listed in labs/standalone.txt (legacy: its ServiceProfiles switch off HTTPRoutes, retry/timeout
# annotations and failure accrual for their Services) never shares the namespace with another lab. Run by the
# labs' pre-apply.sh (scripts/lab.sh), before anything is applied.
refuse_mixing_with_standalone() {
  local lab="$1" standalone other others=()
  standalone="$(sed '/^$/d' "$ROOT/mesh/linkerd/labs/standalone.txt")"
  for other in $(lab_labels); do
    [[ "$other" == "$lab" ]] && continue
    if grep -qx "$lab" <<<"$standalone" || grep -qx "$other" <<<"$standalone"; then others+=("$other"); fi
  done
  ((${#others[@]} == 0)) || die "lab $lab cannot run together with lab ${others[*]} (a standalone lab," \
    "see mesh/linkerd/labs/standalone.txt and docs/linkerd/legacy.md): run make lab-reset MESH=linkerd first"
}
