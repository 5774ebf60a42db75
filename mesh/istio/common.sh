# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file
# Sourced by the Istio scripts: the shared helpers of scripts/lib.sh (run, query, log, die,
# ensure_tool, pinned versions, $KUBE_CONTEXT) plus what only Istio needs.
# shellcheck source=../../scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"

ISTIO_DIR="$ROOT/mesh/istio"
ISTIO_NS=istio-system
# Observability addons of the pinned release: samples/addons at the release's git tag.
ADDONS_URL="https://raw.githubusercontent.com/istio/istio/$ISTIO/samples/addons"
ADDONS=(prometheus grafana jaeger kiali)
K=(kubectl --context "$KUBE_CONTEXT")
ISTIOCTL=(istioctl --context "$KUBE_CONTEXT")

# Every Istio script acts on the cluster: a real run without one stops here with the reason.
require_cluster
