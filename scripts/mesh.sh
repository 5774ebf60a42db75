#!/usr/bin/env bash
# make mesh MESH=none|istio|linkerd: switch the running shop to another mesh (or none).
# Uninstalls the current mesh (mesh/<current>/uninstall.sh), installs the target (mesh/<target>/install.sh),
# re-applies the app overlay and restarts the pods so they get (or lose) their sidecar / proxy.
source "$(dirname "$0")/lib.sh"

TARGET="${1:-${MESH:-}}"
[[ -n "$TARGET" ]] || die "which mesh? make mesh MESH=istio|linkerd|none$(cluster_arg)"
check_mesh_name "$TARGET"
require_cluster

CURRENT="$(current_mesh)"
((NO_CLUSTER)) && log "DRY_RUN: assuming a cluster with mesh $CURRENT and the shop running"
log "current mesh: $CURRENT, target: $TARGET"

leave_mesh "$CURRENT" "$TARGET"

if [[ "$TARGET" != none && "$CURRENT" != "$TARGET" ]]; then
  case "$TARGET" in istio) ensure_tool istioctl ;; linkerd) ensure_tool linkerd ;; esac
  [[ -x "$ROOT/mesh/$TARGET/install.sh" ]] || die "mesh/$TARGET/install.sh is missing"
  "$ROOT/mesh/$TARGET/install.sh"
fi

overlay="$(app_overlay "$TARGET")"
# The images the shop runs now (make up's content tags) stay: switching meshes must not change the code.
read -r -a images <<<"$(deployed_images | tr '\n' ' ')"
write_app_kustomization ".cache/app/$TARGET" "$TARGET" "" ${images[@]+"${images[@]}"}
apply_app_kustomization ".cache/app/$TARGET"
restart_shop_pods
wait_rollouts "$overlay"
run_post_install "$TARGET"
finish "mesh is now: $TARGET   shop: $(shop_url)"
