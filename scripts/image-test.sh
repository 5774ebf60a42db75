#!/usr/bin/env bash
# make image-test: build the eight images with the Dockerfile and run them the way the kubelet runs k8s/base
# (tests/containers): probes, gRPC health, purchases through the frontend, load inside the pods' limits, peak
# memory per container, image sizes against the budget.
#
# Starts the Docker engine when none runs and it can (root + apt: scripts/docker-engine.sh), else SKIPS with
# the reason (exit 0). Removes every container and image it made, whatever happens; keeps the cached base
# images (scripts/base-images.sh) and the build cache, so the next run is warm. Stops the engine again if it
# started it (KEEP_DOCKER_ENGINE=1 leaves it running). PYTEST_ARGS=... is passed on (e.g. -k purchase).
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/docker-engine.sh"

RUN_ID="it$(date +%s)-$$"
LABEL="shop.image-test=$RUN_ID"
started_at=$SECONDS

pick_docker
if ! engine_start; then
  echo "make image-test SKIPPED: $ENGINE_UNAVAILABLE"
  exit 0
fi
if [[ "$(uname -s)" != Linux ]]; then
  echo "make image-test SKIPPED: the containers share the host's network (--network host), which needs Linux"
  exit 0
fi

cleanup() {
  local status=$? containers images
  containers="$("$DOCKER" ps -aq --filter "label=$LABEL")"
  images="$("$DOCKER" image ls -q --filter "label=$LABEL" | sort -u)"
  log "cleaning up run $RUN_ID: $(wc -w <<<"$containers") container(s), $(wc -w <<<"$images") image(s)"
  [[ -z "$containers" ]] || "$DOCKER" rm --force --volumes $containers >/dev/null
  [[ -z "$images" ]] || "$DOCKER" image rm --force $images >/dev/null
  [[ "${KEEP_DOCKER_ENGINE:-0}" == 1 ]] || engine_stop
  log "make image-test: $((SECONDS - started_at))s in all"
  exit "$status"
}
trap cleanup EXIT

log "building the images (run $RUN_ID)"
IMAGE_REPO="shop-image-test/" IMAGE_TAG="$RUN_ID" IMAGE_LABEL="$LABEL" DOCKER="$DOCKER" "$ROOT/scripts/images.sh"
log "images built after $((SECONDS - started_at))s; running them as the kubelet would (tests/containers)"

extra=()
eval "extra=(${PYTEST_ARGS:-})" # shell words, quotes allowed: PYTEST_ARGS="-k 'burst or oom'"
# IMAGE_TEST_MONGO_URL: a MongoDB server for the services instead of the in-memory store (tests/containers).
IMAGE_TEST_MONGO_URL="${IMAGE_TEST_MONGO_URL:-}" \
  IMAGE_TEST_RUN="$RUN_ID" IMAGE_REPO="shop-image-test/" IMAGE_TAG="$RUN_ID" DOCKER="$DOCKER" \
  "$ROOT/.venv/bin/pytest" -q -s -rs -p no:cacheprovider --timeout=900 tests/containers "${extra[@]}"
