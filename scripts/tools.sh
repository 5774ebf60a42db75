#!/usr/bin/env bash
# make tools: every pinned cluster tool of scripts/tools.conf into ./bin (or the named ones), then a summary.
#   scripts/tools.sh [--optional "NAME..."] [NAME...]   --optional: report these when missing, but exit 0
#   scripts/tools.sh --list                              recipes: name, pinned version, Go module source
# Downloads where the internet works, else builds from the pinned Go module source (docs/tools.md).
source "$(dirname "$0")/lib.sh"

optional=""
names=()
while (($#)); do
  case "$1" in
    --optional) optional="${2:-}" && shift 2 ;;
    --list)
      for name in $(recipe_names); do
        recipe_load "$name"
        printf '%-24s %-22s %s\n' "$name" "$R_label" "${R_module:+$R_module@$R_source}"
      done
      exit 0
      ;;
    -*) die "unknown option $1 (usage: scripts/tools.sh [--optional NAMES] [--list] [NAME...])" ;;
    *) names+=("$1") && shift ;;
  esac
done
((${#names[@]})) || while read -r name; do names+=("$name"); done < <(tool_names)

log "tools: ${names[*]} (cache: $SHOP_CACHE/tools)"
start=$SECONDS
summary=()
missing=()
for name in "${names[@]}"; do
  t=$SECONDS
  label=ERROR
  [[ " $optional " == *" $name "* ]] && label="MISSING (optional)"
  if (DIE_LABEL="$label" ensure_tool "$name"); then
    if [[ "$DRY_RUN" == 1 ]]; then
      summary+=("$(printf '%-24s %s' "$name" "(dry run)")")
    else
      recipe_load "$name"
      # shellcheck disable=SC2086  # check holds several arguments
      summary+=("$(printf '%-24s %-8s %s' "$name" "$(_elapsed "$t")" "$("$BIN/$name" $R_check 2>&1 | head -n1)")")
    fi
  else
    missing+=("$name")
    summary+=("$(printf '%-24s %-8s %s' "$name" "$(_elapsed "$t")" "MISSING (reason above)")")
  fi
done

log "tools done in $(_elapsed "$start"):"
printf '    %s\n' "${summary[@]}" >&2
failed=()
for name in ${missing[@]+"${missing[@]}"}; do
  if [[ " $optional " == *" $name "* ]]; then
    log "$name is missing: what needs it skips, saying why"
  else
    failed+=("$name")
  fi
done
((${#failed[@]} == 0)) || die "missing tools: ${failed[*]}"
