#!/usr/bin/env bash
# make images: build the eight service images with the Dockerfile, print their sizes against the budget
# and the runtime base they were built on. Fails when an image is larger than IMAGE_BUDGET_MB (150).
#
#   IMAGE_REPO=shop/ IMAGE_TAG=dev scripts/images.sh        -> shop/<service>:dev (the defaults)
#   IMAGE_LABEL=key=value                                     label every image (make image-test cleans up by it)
#
# Bases: scripts/base-images.sh (the real ones when they can be pulled, else cached stand-ins), passed as the
# Dockerfile's own build args BUILD_IMAGE and RUNTIME_IMAGE. The builder stage is the same for every service,
# so it is built once and reused from the build cache.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/docker-engine.sh"
source "$ROOT/scripts/base-images.sh"

IMAGE_REPO="${IMAGE_REPO:-shop/}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
IMAGE_BUDGET_MB="${IMAGE_BUDGET_MB:-150}"

pick_docker
engine_start || die "$ENGINE_UNAVAILABLE"
[[ "$ENGINE_STARTED" == 1 ]] && log "dockerd keeps running: the images live in it (stop it with: kill \$(cat $ENGINE_DIR/dockerd.pid))"
log "builder: $BUILDER ($DOCKER)"
resolve_bases
log "bases: $BASES_ORIGIN"
log "  BUILD_IMAGE=$BUILD_BASE"
log "  RUNTIME_IMAGE=$RUNTIME_BASE"

args=(--build-arg "BUILD_IMAGE=$BUILD_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE")
network="$(build_network)"
[[ -n "$network" ]] && args+=("$network") # an engine without a bridge (ours here): RUN steps use the host's
[[ -n "${IMAGE_LABEL:-}" ]] && args+=(--label "$IMAGE_LABEL")

read -ra services <<<"$SERVICES"
n=0
for svc in "${services[@]}"; do
  n=$((n + 1))
  log "[$n/${#services[@]}] $IMAGE_REPO$svc:$IMAGE_TAG"
  started=$SECONDS
  if ! "$DOCKER" build --quiet "${args[@]}" --build-arg "SERVICE=$svc" -t "$IMAGE_REPO$svc:$IMAGE_TAG" "$ROOT" \
    >"$SHOP_CACHE/base-images/build.log" 2>&1; then
    tail -n 40 "$SHOP_CACHE/base-images/build.log" >&2
    die "docker build of $svc failed"
  fi
  log "    built in $((SECONDS - started))s"
done

echo
width=$((${#IMAGE_REPO} + ${#IMAGE_TAG} + 14)) # the longest name, notification
printf "%-${width}s %10s %10s\n" "image" "size (MB)" "budget"
over=()
for svc in "${services[@]}"; do
  image="$IMAGE_REPO$svc:$IMAGE_TAG"
  bytes="$("$DOCKER" image inspect --format '{{.Size}}' "$image")"
  verdict="ok"
  if ((bytes > IMAGE_BUDGET_MB * 1000000)); then
    verdict="OVER"
    over+=("$svc")
  fi
  printf "%-${width}s %10s %7s MB %s\n" "$image" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')" \
    "$IMAGE_BUDGET_MB" "$verdict"
done
echo "runtime base: $(describe_base "$RUNTIME_BASE")"
echo "build base:   $(describe_base "$BUILD_BASE")"
((${#over[@]} == 0)) || die "over the ${IMAGE_BUDGET_MB} MB budget: ${over[*]}"
