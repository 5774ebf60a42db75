# shellcheck shell=bash
# Shared helpers for the cluster scripts. Source it:  source "$(dirname "$0")/lib.sh"
#   run CMD...      print the command, then run it unless DRY_RUN=1
#   run_sh 'A | B'  same for a shell pipeline / redirect (never put secret values in it)
#   query CMD...    read-only command that also runs under DRY_RUN=1 (kind get clusters, docker info)
#   ensure_tool T   install the pinned kind|kubectl|istioctl|linkerd into ./bin, checksum verified
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SHOP_BIN:-$ROOT/bin}" # tests point this at an empty folder
export PATH="$BIN:$PATH"
DRY_RUN="${DRY_RUN:-0}"

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
KUBE_CONTEXT="kind-$CLUSTER_NAME"
# The services that own a MongoDB database (all but WITHOUT_DATABASE), e.g. for their Secrets.
database_services() {
  local svc
  for svc in $SERVICES; do [[ " $WITHOUT_DATABASE " == *" $svc "* ]] || printf '%s\n' "$svc"; done
}

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
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

# The version a tool in ./bin reports, or "" when it is missing.
tool_version() {
  local bin="$BIN/$1"
  [[ -x "$bin" ]] || return 0
  case "$1" in
    kind) "$bin" version 2>/dev/null | awk '{print $2}' ;;
    kubectl) "$bin" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' ;;
    istioctl) "$bin" version --remote=false 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 ;;
    linkerd) "$bin" version --client --short 2>/dev/null ;;
  esac
}

pinned_version() {
  case "$1" in
    kind) echo "$KIND" ;; kubectl) echo "$KUBECTL" ;; istioctl) echo "$ISTIO" ;; linkerd) echo "$LINKERD" ;;
    *) die "unknown tool $1" ;;
  esac
}

# URL of the binary (or archive) and of the upstream checksum file published next to it.
tool_urls() {
  local tool="$1" os="$2" arch="$3" url
  case "$tool" in
    kind)
      url="https://github.com/kubernetes-sigs/kind/releases/download/$KIND/kind-$os-$arch"
      echo "$url $url.sha256sum"
      ;;
    kubectl) url="https://dl.k8s.io/release/$KUBECTL/bin/$os/$arch/kubectl" && echo "$url $url.sha256" ;;
    istioctl)
      local ios="$os"
      [[ "$os" == darwin ]] && ios=osx
      url="https://github.com/istio/istio/releases/download/$ISTIO/istioctl-$ISTIO-$ios-$arch.tar.gz"
      echo "$url $url.sha256"
      ;;
    linkerd)
      local suffix="$os-$arch"
      [[ "$suffix" == darwin-amd64 ]] && suffix=darwin
      url="https://github.com/linkerd/linkerd2/releases/download/$LINKERD/linkerd2-cli-$LINKERD-$suffix"
      echo "$url $url.sha256"
      ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | awk '{print $1}'; else shasum -a 256 "$1" | awk '{print $1}'; fi
}

# Download, verify against the upstream checksum file, install into ./bin. Skipped when the pinned
# version is already there. No checksums are hard-coded: the published .sha256 files are the source.
ensure_tool() {
  local tool="$1" want have os arch url sum_url
  want="$(pinned_version "$tool")"
  have="$(tool_version "$tool")"
  if [[ "$have" == "$want" ]]; then
    log "$tool $want already in ./bin"
    return 0
  fi
  local platform urls
  platform="$(os_arch)" || exit 1
  read -r os arch <<<"$platform"
  urls="$(tool_urls "$tool" "$os" "$arch")"
  read -r url sum_url <<<"$urls"
  log "installing $tool $want into ./bin${have:+ (found $have)}"
  local tmp="$ROOT/.cache/download"
  run mkdir -p "$BIN" "$tmp"
  run curl -fsSL --retry 3 -o "$tmp/$tool.download" "$url"
  run curl -fsSL --retry 3 -o "$tmp/$tool.sha256" "$sum_url"
  [[ "$DRY_RUN" == 1 ]] && {
    echo "+ verify sha256 of $tmp/$tool.download against $tmp/$tool.sha256"
    return 0
  }
  local expected actual
  expected="$(awk '{print $1; exit}' "$tmp/$tool.sha256")"
  actual="$(sha256_of "$tmp/$tool.download")"
  [[ -n "$expected" && "$expected" == "$actual" ]] ||
    die "checksum mismatch for $tool $want: expected '$expected', got '$actual' ($url)"
  if [[ "$tool" == istioctl ]]; then
    tar -xzf "$tmp/$tool.download" -C "$tmp" istioctl && mv "$tmp/istioctl" "$BIN/istioctl"
  else
    mv "$tmp/$tool.download" "$BIN/$tool"
  fi
  chmod +x "$BIN/$tool"
  rm -f "$tmp/$tool.sha256" "$tmp/$tool.download"
}

cluster_exists() { query kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; }

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

shop_url() { echo "http://localhost"; }

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
