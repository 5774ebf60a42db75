# shellcheck shell=bash disable=SC2034 # ENGINE_UNAVAILABLE, BUILDER: set for the caller
# The Docker engine for `make images` and `make image-test`. Source it after scripts/lib.sh:
#   engine_start      use the running engine, or install (root + apt: Debian's docker.io) and start one;
#                     returns 3 with the reason in ENGINE_UNAVAILABLE when neither is possible
#   engine_stop       stop the engine again, only if engine_start started it and no other run uses it
#   pick_docker       sets DOCKER to a docker CLI that builds with BuildKit and BUILDER to how it does
#   build_network     prints `--network=host` when the engine has no bridge network (RUN steps need one)
#
# An engine we start runs as `dockerd --bridge=none --iptables=false --ip-forward=false`: no docker0
# bridge, no NAT/FORWARD rules, no sysctl change on a machine it shares with others. That is all it needs
# here: containers run with --network host (traffic stays on 127.0.0.1), builds use the host's network. Its log is
# $SHOP_CACHE/docker-engine/dockerd.log. Every run that uses the engine holds a shared lock on
# $SHOP_CACHE/docker-engine/lock, so the run that started it stops it only when no other run still needs it.

SHOP_CACHE="${SHOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-lab}"
ENGINE_DIR="$SHOP_CACHE/docker-engine"
ENGINE_UNAVAILABLE=""
ENGINE_STARTED=0
DOCKER="${DOCKER:-docker}"
BUILDER=""

engine_running() { "$DOCKER" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# The engine's own package when none is installed: root and apt-get only (a student installs Docker Desktop
# or Docker Engine themselves; docs/kubernetes.md says how).
_install_engine() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    ENGINE_UNAVAILABLE="no Docker engine is running, and this user cannot install one (needs root and apt-get)"
    return 3
  fi
  log "installing Debian's docker.io (the Docker engine) with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }; then
    ENGINE_UNAVAILABLE="apt-get install docker.io failed"
    return 3
  fi
}

# fd 8 holds the lock for the rest of the calling script (flock(1) is util-linux: Linux only, where we
# may start the engine; elsewhere the engine is Docker Desktop's and nobody here stops it).
_lock() { command -v flock >/dev/null 2>&1 && flock "$@" 8; }

engine_start() {
  mkdir -p "$ENGINE_DIR"
  exec 8>"$ENGINE_DIR/lock"
  _lock -s || true
  if engine_running; then
    log "Docker engine: $("$DOCKER" info --format 'running, {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}')"
    return 0
  fi
  if [[ "$(uname -s)" != Linux ]]; then
    ENGINE_UNAVAILABLE="no Docker engine is running (start Docker Desktop)"
    return 3
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    _install_engine || return 3
    pick_docker # the package brings a docker CLI too
  fi
  if [[ "$(id -u)" != 0 ]]; then
    ENGINE_UNAVAILABLE="the Docker engine is installed but not running, and only root can start it here"
    return 3
  fi
  if [[ -S /var/run/docker.sock ]] && ! engine_running; then
    rm -f /var/run/docker.sock # left by an engine that died; dockerd refuses to start next to it otherwise
  fi
  log "starting dockerd --bridge=none --iptables=false --ip-forward=false (log: $ENGINE_DIR/dockerd.log)"
  setsid dockerd --bridge=none --iptables=false --ip-forward=false >"$ENGINE_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$ENGINE_DIR/dockerd.pid"
  local waited=0
  until engine_running; do
    if ! kill -0 "$(cat "$ENGINE_DIR/dockerd.pid")" 2>/dev/null; then
      tail -n 20 "$ENGINE_DIR/dockerd.log" >&2
      ENGINE_UNAVAILABLE="dockerd exited at start (log above: $ENGINE_DIR/dockerd.log)"
      return 3
    fi
    ((waited++ < 60)) || {
      ENGINE_UNAVAILABLE="dockerd did not answer within 60 s ($ENGINE_DIR/dockerd.log)"
      return 3
    }
    sleep 1
  done
  ENGINE_STARTED=1
  log "Docker engine: $("$DOCKER" info --format 'started, {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}')"
}

engine_stop() {
  [[ "$ENGINE_STARTED" == 1 ]] || return 0
  # Another run that holds the shared lock still uses the engine: leave it to run, say so.
  if ! _lock -x -n; then
    log "leaving dockerd running: another run is using it"
    return 0
  fi
  local pid waited=0
  pid="$(cat "$ENGINE_DIR/dockerd.pid")"
  log "stopping the dockerd this run started (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((waited++ < 30)); do sleep 1; done
  kill -0 "$pid" 2>/dev/null && log "dockerd (pid $pid) did not stop within 30 s"
  rm -f "$ENGINE_DIR/dockerd.pid"
  ENGINE_STARTED=0
}

# A docker CLI that builds with BuildKit, as students' Docker does: one with the buildx plugin, else one whose
# built-in builder is BuildKit (clients before 23.0 with DOCKER_BUILDKIT=1, e.g. Debian's docker.io, which
# may sit behind a newer client without buildx on PATH), else the classic builder (said loudly).
pick_docker() {
  local candidate major
  while read -r candidate; do
    if "$candidate" buildx version >/dev/null 2>&1; then
      DOCKER="$candidate" BUILDER="BuildKit (buildx)"
      return 0
    fi
  done < <(type -ap docker)
  while read -r candidate; do
    major="$("$candidate" --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')"
    if [[ -n "$major" ]] && ((major < 23)); then
      DOCKER="$candidate" BUILDER="BuildKit (built into docker $major)"
      export DOCKER_BUILDKIT=1
      return 0
    fi
  done < <(type -ap docker)
  DOCKER="docker" BUILDER="classic builder (no BuildKit: install the docker buildx plugin)"
  export DOCKER_BUILDKIT=0
}

build_network() {
  "$DOCKER" network inspect bridge >/dev/null 2>&1 || echo "--network=host"
}
