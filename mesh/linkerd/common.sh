# shellcheck shell=bash
# shellcheck disable=SC2034  # K, L, GATEWAY_API_URL, *_VALUES are used by the scripts that source this file
# Sourced by the Linkerd scripts: scripts/lib.sh (run, run_sh, query, log, die, ensure_tool, pinned
# versions from scripts/versions.env) plus the names the Linkerd scripts share.
# shellcheck source=../../scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"

# Every command names the kind cluster's context explicitly, so a student's other clusters are never touched.
K="kubectl --context $KUBE_CONTEXT"
L="linkerd --context $KUBE_CONTEXT"
# Helm values of `linkerd install` (proxy tracing) and `linkerd viz install` (Prometheus scrapes the shop).
TRACING_VALUES="$ROOT/mesh/linkerd/install/tracing-values.yaml"
VIZ_VALUES="$ROOT/mesh/linkerd/install/viz-values.yaml"
GATEWAY_API_URL="https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API/standard-install.yaml"
# Every Linkerd script acts on the cluster: a real run without one stops here with the reason.
require_cluster
# Read-only: also runs under DRY_RUN=1 (lib.sh `query`).
namespace_exists() { query kubectl --context "$KUBE_CONTEXT" get namespace "$1" >/dev/null 2>&1; }
