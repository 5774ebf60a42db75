# shellcheck shell=bash
# Shared helpers for the cluster scripts. Source it:  source "$(dirname "$0")/lib.sh"
#   run CMD...      print the command, then run it unless DRY_RUN=1
#   run_sh 'A | B'  same for a shell pipeline / redirect (never put secret values in it)
#   query CMD...    read-only command that also runs under DRY_RUN=1 (kind get clusters, docker info)
#   ensure_tool T   the pinned tool T of scripts/tools.conf into ./bin: from the tool cache, PATH, a verified
#                   release download, or a build of its Go module source (scripts/lib-tools.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SHOP_BIN:-$ROOT/bin}" # tests point this at an empty folder
export PATH="$BIN:$PATH"
DRY_RUN="${DRY_RUN:-0}"
# 0 in the script a student (or make) started, 1 in a script it runs, and so on (see finish).
SHOP_SCRIPT_DEPTH=$((${SHOP_SCRIPT_DEPTH:--1} + 1))
export SHOP_SCRIPT_DEPTH

# Plain KEY=value files shared with make and Python: the pinned versions (scripts/versions.env) and the
# shop's topology (services/topology.env: CLUSTER_NAME, NAMESPACE, SERVICES, WITHOUT_DATABASE, ...).
# Only CLUSTER_NAME may come from the environment (`CLUSTER_NAME=x make up`); everything else is the file's.
load_env_file() {
  local _key _value
  while IFS='=' read -r _key _value; do
    [[ -z "$_key" || "$_key" == \#* ]] && continue
    if [[ "$_key" != CLUSTER_NAME || -z "${CLUSTER_NAME:-}" ]]; then printf -v "$_key" '%s' "$_value"; fi
    export "${_key?}"
  done <"$1"
}
load_env_file "$ROOT/scripts/versions.env"
load_env_file "$ROOT/services/topology.env"
# Which cluster the scripts act on. CLUSTER=kind (the default): the kind cluster `make up` creates.
# CLUSTER=sim: the simulated cluster `make sim-up` creates (kwok: the real Kubernetes control plane with
# simulated nodes and pods, no Docker; docs/kubernetes.md, "The simulated cluster"). Its kubeconfig is a file of
# its own in .cache/sim, so ~/.kube/config is never touched; steps that need Docker or containers are skipped
# there with the reason (skip_on_sim).
CLUSTER="${CLUSTER:-kind}"
SIM_DIR="${SHOP_SIM_DIR:-$ROOT/.cache/sim}" # SHOP_SIM_DIR: another folder (the tests)
case "$CLUSTER" in
  kind) KUBE_CONTEXT="kind-$CLUSTER_NAME" ;;
  sim)
    KUBE_CONTEXT="kwok-$CLUSTER_NAME"
    export KUBECONFIG="$SIM_DIR/kubeconfig"
    ;;
  *)
    printf 'ERROR: CLUSTER must be kind or sim (got %s)\n' "$CLUSTER" >&2
    exit 1
    ;;
esac
export CLUSTER
# The services that own a MongoDB database (all but WITHOUT_DATABASE), e.g. for their Secrets.
database_services() {
  local svc
  for svc in $SERVICES; do [[ " $WITHOUT_DATABASE " == *" $svc "* ]] || printf '%s\n' "$svc"; done
}

log() { printf '==> %s\n' "$*" >&2; }
# DIE_LABEL: the word before the message (scripts/tools.sh says an optional tool is missing without "ERROR").
die() {
  printf '%s: %s\n' "${DIE_LABEL:-ERROR}" "$*" >&2
  exit 1
}

# Quote an argument only when the shell would need it, so printed commands stay readable.
_quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

run() {
  local out="+" arg
  for arg in "$@"; do out+=" $(_quote "$arg")"; done
  printf '%s\n' "$out"
  [[ "$DRY_RUN" == 1 ]] && return 0
  "$@"
}

run_sh() {
  printf '+ %s\n' "$1"
  [[ "$DRY_RUN" == 1 ]] && return 0
  bash -o pipefail -c "$1"
}

query() { "$@"; }

os_arch() {
  local os arch
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported CPU architecture $(uname -m)" ;;
  esac
  [[ "$os" == linux || "$os" == darwin ]] || die "unsupported OS $os (use Linux, macOS or WSL2)"
  printf '%s %s\n' "$os" "$arch"
}

# The pinned cluster tools: ensure_tool NAME (recipes in scripts/tools.conf, cache in SHOP_CACHE).
# shellcheck source=lib-tools.sh
source "$ROOT/scripts/lib-tools.sh"

# Does the internet answer (Docker Hub's registry; any HTTP answer counts)? Gives up after a 5 s connect timeout.
online() { curl -s -o /dev/null --connect-timeout 5 --max-time 15 https://registry-1.docker.io/v2/; }

cluster_exists() { grep -qx "$CLUSTER_NAME" <<<"$(query kind get clusters 2>/dev/null)"; }

# The state of the kind cluster, read-only (also under DRY_RUN): up, absent, no-kind, docker-down or
# unreachable; of the simulated cluster (CLUSTER=sim): up, sim-absent or unreachable.
cluster_state() {
  local clusters
  if [[ "$CLUSTER" == sim ]]; then
    if [[ ! -f "$KUBECONFIG" ]]; then
      echo sim-absent
    elif query kubectl --context "$KUBE_CONTEXT" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
      echo up
    else
      echo unreachable
    fi
    return 0
  fi
  command -v kind >/dev/null || {
    echo no-kind
    return 0
  }
  clusters="$(query kind get clusters 2>/dev/null)" || {
    echo docker-down
    return 0
  }
  grep -qx "$CLUSTER_NAME" <<<"$clusters" || {
    echo absent
    return 0
  }
  if query kubectl --context "$KUBE_CONTEXT" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
    echo up
  else
    echo unreachable
  fi
}

# " CLUSTER=sim" when the scripts act on the simulated cluster, for the make commands they suggest.
cluster_arg() { if [[ "$CLUSTER" == sim ]]; then printf ' CLUSTER=sim'; fi; }

# Why there is no usable cluster, in one line starting with "no cluster:" ("" when it is up). Without
# CLUSTER=sim while a simulated cluster exists, the line says so (a student who left out CLUSTER=sim).
no_cluster_reason() {
  local reason
  reason="$(_no_cluster_reason)"
  if [[ -n "$reason" && "$CLUSTER" != sim && -f "$SIM_DIR/kubeconfig" ]]; then
    reason+="; a simulated cluster exists (make sim-up): add CLUSTER=sim to act on it"
  fi
  printf '%s' "$reason"
}

_no_cluster_reason() {
  case "$(cluster_state)" in
    up) ;;
    absent) echo "no cluster: run make up (kind has no cluster named $CLUSTER_NAME)" ;;
    sim-absent) echo "no cluster: run make sim-up (no simulated cluster: $KUBECONFIG does not exist)" ;;
    no-kind) echo "no cluster: run make up (kind is not installed yet; make up installs it into ./bin)" ;;
    docker-down) echo "no cluster: Docker is not running (kind cannot list clusters); start Docker, then make up" ;;
    unreachable)
      if [[ "$CLUSTER" == sim ]]; then
        echo "no cluster: the simulated cluster's API server does not answer (make sim-down && make sim-up)"
        return 0
      fi
      echo "no cluster: kind cluster $CLUSTER_NAME exists but its API server does not answer" \
        "(container stopped? docker start $CLUSTER_NAME-control-plane, or make down && make up)"
      ;;
  esac
}

# Every script that acts on a running cluster calls this first (the mesh scripts through their common.sh).
# A real run stops with the reason. A dry run says it prints what would run on a cluster and goes on with
# NO_CLUSTER=1 (scripts then assume what they would read from the cluster, and say so). Scripts started by
# another script that already checked (SHOP_CLUSTER_CHECKED=1, exported) do not check again.
# shellcheck disable=SC2034  # read by the scripts that source this file
NO_CLUSTER=0
require_cluster() {
  [[ "${SHOP_CLUSTER_CHECKED:-0}" == 1 ]] && return 0
  local reason
  reason="$(no_cluster_reason)"
  if [[ -n "$reason" ]]; then
    [[ "$DRY_RUN" == 1 ]] || die "$reason"
    # shellcheck disable=SC2034
    NO_CLUSTER=1
    log "DRY_RUN: $reason; printing what would run on a cluster"
  fi
  export SHOP_CLUSTER_CHECKED=1
}

# The last line of a script a student started (scripts started by other scripts print nothing here): what it
# did, or nothing. A dry run changed nothing, so it says that instead of any claim.
finish() {
  ((SHOP_SCRIPT_DEPTH == 0)) || return 0
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "DRY_RUN=1: nothing was changed; the '+' lines above are the commands a real run would execute."
  elif (($#)); then
    echo "$*"
  fi
}

# The simulated cluster runs no containers and needs no Docker: a step that builds or loads images, or that
# needs a data plane (a sidecar that runs, traffic), is skipped there, saying what and why; elsewhere this
# returns 1. Usage:  skip_on_sim "what (why)" || the step
skip_on_sim() {
  [[ "$CLUSTER" == sim ]] || return 1
  log "CLUSTER=sim: skipped $*"
}

# The folder of pinned upstream CRDs NAME (e.g. gateway-api-v1.2.1): ../shared/crds (CI) or .cache/crds (make crds).
crd_dir() {
  local dir
  for dir in "$ROOT/../shared/crds/$1" "$ROOT/.cache/crds/$1"; do
    [[ -d "$dir" ]] && echo "$dir" && return 0
  done
  return 1
}

# Is the simulated cluster whole: its kubeconfig, an API server that answers, and the helper process
# (scripts/sim: the API server's egress proxy and the meshes' webhook servers) with its socket?
sim_healthy() {
  local pid
  [[ -f "$SIM_DIR/kubeconfig" && -S "$SIM_DIR/egress.sock" && -f "$SIM_DIR/controlplane.pid" ]] || return 1
  pid="$(cat "$SIM_DIR/controlplane.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  kubectl --kubeconfig "$SIM_DIR/kubeconfig" --context "kwok-$CLUSTER_NAME" get --raw /readyz \
    --request-timeout=5s >/dev/null 2>&1
}

# Which mesh runs in the cluster: istio, linkerd or none.
current_mesh() {
  if query kubectl --context "$KUBE_CONTEXT" -n istio-system get deploy istiod >/dev/null 2>&1; then
    echo istio
  elif query kubectl --context "$KUBE_CONTEXT" get namespace linkerd >/dev/null 2>&1; then
    echo linkerd
  else
    echo none
  fi
}

# Deployments that exist in the app namespace, one `deployment.apps/<name>` a line (read-only, also under
# DRY_RUN; empty without a cluster).
app_deployments() {
  query kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get deployments -o name 2>/dev/null || true
}

# Restart the shop's pods so they are created again through the admission webhooks: they get (or lose) the
# mesh's proxy (make mesh, and make up over a shop on another mesh).
restart_shop_pods() {
  run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" rollout restart deployment
  run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" rollout restart statefulset
}

# leave_mesh CURRENT TARGET: what must happen before the running shop moves from mesh CURRENT to TARGET, shared
# by make mesh and make up over a running shop: the current mesh's uninstall, and the frontend's NodePort 30080
# given back before Istio's ingress gateway takes it (kind maps host port 80 to it; two Services cannot share it).
leave_mesh() {
  local current="$1" target="$2"
  if [[ "$current" != none && "$current" != "$target" ]]; then
    [[ -x "$ROOT/mesh/$current/uninstall.sh" ]] || die "mesh/$current/uninstall.sh is missing"
    "$ROOT/mesh/$current/uninstall.sh"
  fi
  if [[ "$target" == istio && "$(query kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get service frontend \
    -o jsonpath='{.spec.type}' 2>/dev/null)" == NodePort ]]; then
    run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" patch service frontend --type merge \
      -p '{"spec":{"type":"ClusterIP"}}'
  fi
}

check_mesh_name() {
  case "$1" in
    none | istio | linkerd) ;;
    *) die "MESH must be none, istio or linkerd (got '$1')" ;;
  esac
}

# The kustomize directory the app is deployed from for a mesh.
app_overlay() {
  if [[ "$1" == none ]]; then echo "k8s/overlays/dev"; else echo "mesh/$1/overlay"; fi
}

shop_url() {
  if [[ "$CLUSTER" == sim ]]; then
    echo "none (CLUSTER=sim: the simulated cluster runs no containers)"
  else
    echo "http://localhost"
  fi
}

# The tag `make up` gives an image it built: the first 12 hex digits of its image ID, as `docker images`
# shows it. Unchanged code -> the same image ID -> the same tag -> `kubectl apply` changes nothing; changed
# code -> a new tag -> the pod templates change and the Deployments roll out. Reads the file written by
# `docker build --iidfile`. Nothing is built under DRY_RUN: the tag is then the placeholder IMAGE_ID.
image_content_tag() {
  if [[ "$DRY_RUN" == 1 ]]; then
    echo IMAGE_ID
    return 0
  fi
  local id
  id="$(cat "$1")" && id="${id#sha256:}"
  [[ "$id" =~ ^[0-9a-f]{12} ]] || die "docker build wrote no image ID to $1"
  echo "${id:0:12}"
}

# Load images into the kind node. `kind load docker-image` fails on Docker's containerd image store
# (kubernetes-sigs/kind#3795: "content digest ... not found"); then the same images go through an archive:
# `docker save` + `kind load image-archive`. The pods never pull them (imagePullPolicy: Never), so an image
# that did not arrive shows as ErrImageNeverPull, not as a pull of someone else's shop/<service> image.
load_images() {
  if run kind load docker-image --name "$CLUSTER_NAME" "$@"; then return 0; fi
  log "kind load docker-image failed (known with Docker's containerd image store, kubernetes-sigs/kind#3795):" \
    "loading the same images with docker save + kind load image-archive"
  local dir
  dir="$(mktemp -d)"
  run docker save -o "$dir/shop-images.tar" "$@" &&
    run kind load image-archive --name "$CLUSTER_NAME" "$dir/shop-images.tar" || {
    rm -rf "$dir"
    die "could not load the images into the kind node (docs/kubernetes.md, Troubleshooting: images)"
  }
  rm -rf "$dir"
}

# The shop images the cluster's Deployments run (shop/<service>:<tag>, one a line; read-only, empty without
# a cluster), so that make mesh / make lab / make lab-reset keep the images make up loaded last.
deployed_images() {
  { query kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" get deployments \
    -o jsonpath='{range .items[*]}{range .spec.template.spec.containers[*]}{.image}{"\n"}{end}{end}' \
    2>/dev/null || true; } | awk -F: '/^shop\/[a-z-]+:[A-Za-z0-9_.-]+$/ {tag[$1] = $0} END {for (i in tag) print tag[i]}' |
    sort
}

# Write the kustomization every apply of the shop goes through: DIR (a folder three levels below the repo,
# e.g. .cache/app/istio) gets the app overlay of MESH, the lab Components LABS (space-separated, may be
# empty) and kustomize `images:` pinning each shop/<service>:<tag> given after it. Prints one log line.
write_app_kustomization() {
  local dir="$1" mesh="$2" labs="$3" ref name
  shift 3
  mkdir -p "$ROOT/$dir"
  {
    echo "# Generated by scripts/lib.sh write_app_kustomization (make up/mesh/lab/lab-reset); not in git."
    printf 'resources:\n  - ../../../%s\n' "$(app_overlay "$mesh")"
    if [[ -n "$labs" ]]; then
      echo "components:"
      for name in $labs; do printf '  - ../../../mesh/%s/labs/%s\n' "$mesh" "$name"; done
    fi
    if (($#)); then
      echo "images:"
      for ref in "$@"; do printf '  - name: %s\n    newTag: "%s"\n' "${ref%:*}" "${ref##*:}"; done
    fi
  } >"$ROOT/$dir/kustomization.yaml"
  log "kustomization $dir: $(app_overlay "$mesh")${labs:+ + labs $labs}${1:+ + images $*}"
}

# Apply the kustomization DIR (written by write_app_kustomization) to the cluster: every apply of the shop
# (make up, mesh, lab, lab-reset). --openapi-patch=false: kubectl computes the patch of each object from the
# Kubernetes types built into it instead of the cluster's OpenAPI document (the same strategic merge patch for
# the built-in kinds, the same JSON merge patch for custom resources). With the default, kubectl v1.35 decodes
# the whole OpenAPI v3 document of an object's group/version again for every object (upstream
# kubernetes/kubernetes#127095): 3.3 s of CPU for the shop's 32 objects, against 0.4 s.
apply_app_kustomization() {
  run kubectl --context "$KUBE_CONTEXT" apply --openapi-patch=false -k "$ROOT/$1"
}

# Names of the Deployments a kustomize directory renders (offline, also under DRY_RUN).
deployments_in() {
  query kubectl kustomize "$ROOT/$1" | awk '/^kind: /{k=$2} /^  name: /{if (k == "Deployment") print $2; k=""}'
}

# Wait until MongoDB and every Deployment of the overlay have rolled out.
wait_rollouts() {
  local overlay="$1" names d
  names="$(deployments_in "$overlay")" && [[ -n "$names" ]] || die "cannot list the Deployments of $overlay"
  run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" rollout status statefulset/mongodb --timeout=300s
  for d in $names; do
    run kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" rollout status "deployment/$d" --timeout=300s
  done
}

# After the shop's pods were (re)created under a mesh: the mesh's own checks (sidecars, `linkerd check --proxy`).
run_post_install() {
  local mesh="$1"
  if [[ "$mesh" != none && -x "$ROOT/mesh/$mesh/post-install.sh" ]]; then "$ROOT/mesh/$mesh/post-install.sh"; fi
}
