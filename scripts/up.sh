#!/usr/bin/env bash
# make up [MESH=none|istio|linkerd]: tools, cluster, build, load, secrets, apply, wait; prints the shop URL.
# DRY_RUN=1 prints every command instead of running it (read-only checks still run).
source "$(dirname "$0")/lib.sh"

MESH="${1:-${MESH:-none}}"
check_mesh_name "$MESH"

# A failed preflight check stops a real run. A dry run is a preview, also on a machine without Docker: it says
# where a real run would stop and goes on printing the commands.
refuse() {
  if [[ "$DRY_RUN" == 1 ]]; then
    log "DRY_RUN: a real make up would stop here: $*"
    return 0
  fi
  die "$@"
}

preflight() {
  [[ "${SKIP_PREFLIGHT:-0}" == 1 ]] && return 0
  skip_on_sim "the Docker preflight (the simulated cluster needs no Docker, no ports 80/443, no internet)" && return 0
  local mem
  mem="$(query docker info --format '{{.MemTotal}}' 2>/dev/null)" ||
    refuse "Docker is not running (or not installed). Start Docker Desktop / the docker service and retry."
  # Docker Desktop set to 8 GB reports a little less; 7.5 GB is the floor for the shop + Istio demo.
  if [[ "$mem" =~ ^[0-9]+$ ]] && ((mem < 7500000000)); then
    refuse "Docker has $((mem / 1000000)) MB of memory; give it at least 8 GB (Docker Desktop > Settings > Resources)."
  fi
  if ! cluster_exists; then
    local port
    for port in 80 443; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        refuse "port $port on 127.0.0.1 is in use; kind maps http://localhost:$port into the cluster. Stop what uses it" \
          "(see: sudo lsof -i :$port) or delete an old kind cluster (kind get clusters)."
      fi
    done
    # A new cluster pulls kind's node image, the shop's base images and the meshes' images from registries.
    if [[ "$DRY_RUN" != 1 ]] && ! query docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1 && ! online; then
      die "no internet: a new cluster needs kind's node image ($KIND_NODE_IMAGE), the shop's base images and" \
        "the mesh images from their registries. Connect and run make up again (offline, make dev and make test work)."
    fi
  fi
}

preflight

log "[1/7] tools (pinned, into ./bin)"
skip_on_sim "kind (make sim-up creates the simulated cluster)" || ensure_tool kind
ensure_tool kubectl
case "$MESH" in istio) ensure_tool istioctl ;; linkerd) ensure_tool linkerd ;; esac

log "[2/7] cluster $CLUSTER_NAME"
if [[ "$CLUSTER" == sim ]]; then
  "$ROOT/scripts/sim-up.sh" # keeps a healthy simulated cluster, creates one otherwise
elif cluster_exists; then
  log "kind cluster $CLUSTER_NAME exists: not creating it again"
  require_cluster # it must answer (a stopped node container does not)
else
  run kind create cluster --name "$CLUSTER_NAME" --config "$ROOT/kind/cluster.yaml" --wait 120s
fi
export SHOP_CLUSTER_CHECKED=1 # secrets.sh and the mesh scripts need not check again

log "[3/7] build images, tagged by content (a changed image gets a new tag, so the apply rolls it out)"
images=() dev_images=()
mkdir -p "$ROOT/.cache/images"
if ! skip_on_sim "the image builds (no container runs on simulated nodes: pods keep the manifests' shop/<service>:dev)"; then
  for svc in $SERVICES; do
    run docker build --build-arg "SERVICE=$svc" --iidfile "$ROOT/.cache/images/$svc.iid" -t "shop/$svc:dev" "$ROOT"
    tag="$(image_content_tag "$ROOT/.cache/images/$svc.iid")"
    run docker tag "shop/$svc:dev" "shop/$svc:$tag"
    images+=("shop/$svc:$tag")
    dev_images+=("shop/$svc:dev")
  done
  [[ "$DRY_RUN" == 1 ]] && log "DRY_RUN: IMAGE_ID stands for the first 12 hex digits of each built image's ID"
fi

log "[4/7] load images into the kind node"
# :dev too (the same images): the live checks start helper pods from shop/order:dev.
skip_on_sim "kind load (there is no node container to load images into)" ||
  load_images "${images[@]}" "${dev_images[@]}"

log "[5/7] secrets (generated here, never committed)"
"$ROOT/scripts/secrets.sh"

overlay="$(app_overlay "$MESH")"
if [[ "$CLUSTER" == sim ]]; then
  log "[6/7] apply $overlay (its pods keep the manifests' shop/<service>:dev images: nothing was built)"
else
  log "[6/7] apply $overlay with the images just built"
fi
# Over a shop that already runs on another mesh (or none), make up switches it as make mesh does: the old mesh
# leaves, the new one is installed, and the pods restart to get (or lose) their proxies.
switching=0
if grep -qx deployment.apps/frontend <<<"$(app_deployments)"; then
  current="$(current_mesh)"
  if [[ "$current" != "$MESH" ]]; then
    switching=1
    log "the shop runs on mesh $current: switching it to $MESH (as make mesh MESH=$MESH$(cluster_arg) does)"
    leave_mesh "$current" "$MESH"
  fi
fi
if [[ "$MESH" != none ]]; then
  [[ -x "$ROOT/mesh/$MESH/install.sh" ]] || die "mesh/$MESH/install.sh is missing"
  "$ROOT/mesh/$MESH/install.sh"
fi
write_app_kustomization ".cache/app/$MESH" "$MESH" "" ${images[@]+"${images[@]}"}
apply_app_kustomization ".cache/app/$MESH"
if ((switching)); then restart_shop_pods; fi

log "[7/7] wait for every rollout"
wait_rollouts "$overlay"
run_post_install "$MESH"

echo
if [[ "$CLUSTER" == sim ]]; then
  finish "The shop is deployed on the simulated cluster (mesh: $MESH): its objects are real, its pods simulated" \
    "(no container runs). make status CLUSTER=sim; make sim-down deletes it."
else
  finish "The shop is up: $(shop_url)   (mesh: $MESH; make status, make logs S=order, make down)"
fi
