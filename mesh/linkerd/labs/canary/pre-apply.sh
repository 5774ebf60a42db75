#!/usr/bin/env bash
# Before `make lab LAB=canary MESH=linkerd` (scripts/lab.sh): refuse while the standalone legacy lab is applied.
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "$0")/../../common.sh"
refuse_mixing_with_standalone canary
