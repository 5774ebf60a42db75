# shellcheck shell=bash disable=SC2034 # BUILD_BASE, RUNTIME_BASE, BASES_ORIGIN: set for the caller
# The Dockerfile's two base images. Source after scripts/lib.sh and scripts/docker-engine.sh, then:
#   resolve_bases     sets BUILD_BASE and RUNTIME_BASE (image references for the Dockerfile's BUILD_IMAGE and
#                     RUNTIME_IMAGE build args) and BASES_ORIGIN (one line saying where they came from)
#
# The real bases (the Dockerfile's ARG defaults: python:3.13.x-slim-trixie, distroless python3-debian13) are
# used when present or when `docker pull` gets them within PULL_TIMEOUT seconds (120): a student's machine.
# Where no registry answers (CI here), stand-ins are built ONCE from Debian 13 packages by
# scripts/stand-in-bases.sh, cached by a hash of that recipe in $SHOP_CACHE/base-images/<hash>/ (outside git
# and the clone, kept across runs and clones) and imported into the engine as
#   shop-stand-in/python:3.13-trixie-<hash>  and  shop-stand-in/python3-debian13:nonroot-<hash>.
# docs/kubernetes.md ("Stand-in base images") lists how they differ from the real ones.

PULL_TIMEOUT="${PULL_TIMEOUT:-120}"
STAND_IN_RECIPE="$ROOT/scripts/stand-in-bases.sh"

# The default of `ARG NAME=value` in the Dockerfile (the one place the real bases are named).
dockerfile_arg() { sed -n "s/^ARG $1=//p" "$ROOT/Dockerfile" | head -n1; }

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# Use the real image when it is here or can be pulled in time.
_real_base() {
  local ref="$1"
  have_image "$ref" && return 0
  log "pulling $ref (at most ${PULL_TIMEOUT}s)"
  if timeout "$PULL_TIMEOUT" "$DOCKER" pull --quiet "$ref" >/dev/null 2>"$SHOP_CACHE/base-images/pull.err"; then
    return 0
  fi
  log "cannot pull $ref: $(tail -n1 "$SHOP_CACHE/base-images/pull.err")"
  return 1
}

# The cache key: the recipe, and the host's local CAs the builder trusts (scripts/stand-in-bases.sh).
_stand_in_hash() {
  cat "$STAND_IN_RECIPE" /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-12
}

# Import the stand-in images from the cache, building the cache first when it is empty.
_stand_ins() {
  local hash dir
  hash="$(_stand_in_hash)"
  dir="$SHOP_CACHE/base-images/$hash"
  STAND_IN_BUILD="shop-stand-in/python:3.13-trixie-$hash"
  STAND_IN_RUNTIME="shop-stand-in/python3-debian13:nonroot-$hash"
  have_image "$STAND_IN_BUILD" && have_image "$STAND_IN_RUNTIME" && {
    log "stand-in bases $hash: already in the engine"
    return 0
  }
  (
    # One builder at a time; a second run waits and then finds the cache filled.
    command -v flock >/dev/null 2>&1 && flock 7
    if [[ ! -f "$dir/runtime.tar" ]]; then
      log "stand-in bases $hash: not cached, building them from Debian 13 packages (a few minutes, once)"
      local started=$SECONDS
      DEBOOTSTRAP_CACHE="$SHOP_CACHE/debootstrap/trixie" "$STAND_IN_RECIPE" "$dir.new" || exit 1
      rm -rf "$dir" && mv "$dir.new" "$dir"
      log "stand-in bases $hash: built in $((SECONDS - started))s, cached in $dir"
    fi
  ) 7>"$SHOP_CACHE/base-images/.lock" || die "building the stand-in base images failed"
  local name image changes line
  for name in build runtime; do
    image="$STAND_IN_BUILD"
    [[ "$name" == runtime ]] && image="$STAND_IN_RUNTIME"
    changes=()
    while IFS= read -r line; do changes+=(--change "$line"); done <"$dir/$name.config"
    log "stand-in bases $hash: importing $image from the cache"
    "$DOCKER" import "${changes[@]}" "$dir/$name.tar" "$image" >/dev/null
  done
}

resolve_bases() {
  mkdir -p "$SHOP_CACHE/base-images"
  local real_build real_runtime
  real_build="$(dockerfile_arg BUILD_IMAGE)"
  real_runtime="$(dockerfile_arg RUNTIME_IMAGE)"
  [[ -n "$real_build" && -n "$real_runtime" ]] || die "Dockerfile: ARG BUILD_IMAGE= and ARG RUNTIME_IMAGE= not found"
  if _real_base "$real_build" && _real_base "$real_runtime"; then
    BUILD_BASE="$real_build" RUNTIME_BASE="$real_runtime"
    BASES_ORIGIN="the real bases (pulled from their registries)"
    return 0
  fi
  _stand_ins
  BUILD_BASE="$STAND_IN_BUILD" RUNTIME_BASE="$STAND_IN_RUNTIME"
  BASES_ORIGIN="stand-ins built from Debian 13 packages (no registry reachable; docs/kubernetes.md, Stand-in base images)"
}

# How to name the runtime base an image was built on: its registry digest when it has one (pin it with
# --build-arg RUNTIME_IMAGE=<name>@sha256:...), else its local image ID (a locally built stand-in has no digest).
describe_base() {
  local digest id
  digest="$("$DOCKER" image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' "$1" 2>/dev/null | awk '{print $1}')"
  if [[ -n "$digest" ]]; then
    echo "$digest"
  else
    id="$("$DOCKER" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)"
    echo "$1 (built locally, no registry digest; image ${id:-not in the engine})"
  fi
}
