#!/usr/bin/env bash
# Open Linkerd viz (http://localhost:50750) through a port-forward the CLI manages; Ctrl-C stops it.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

ensure_tool linkerd
log "viz: Namespaces > ecommerce shows success rate, RPS, latency per workload; Ctrl-C to stop"
run $L viz dashboard --port 50750
finish
