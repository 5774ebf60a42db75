#!/usr/bin/env bash
# After `make lab-reset`: the pods still enforce the all-authenticated default inbound policy they started
# with. Restart the shop so it is back to the overlay's default.
exec "$(dirname "$0")/post-apply.sh"
