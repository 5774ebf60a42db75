# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # R_<field> are set with printf -v; MINOR, PATCH... are read by _expand
# The pinned cluster tools, sourced by scripts/lib.sh (which sets BIN, DRY_RUN, the pins, log, die, run).
#
#   ensure_tool NAME   make ./bin/NAME the pinned tool of scripts/tools.conf, trying in this order:
#                      ./bin already has it; the tool cache has it; the `NAME` on PATH is exactly the pinned
#                      version; download the release (checksum verified); build the pinned Go module source
#                      with the `go` on PATH; the recipe's `fallback`. Otherwise stop with one line naming
#                      what is missing. Every binary installed must print its pinned version (`check`/`expect`).
#
# The cache lives outside the clone, so a fresh clone (CI) is warm: SHOP_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/shop-lab; tools/<tool>/<version>-<recipe hash>/<tool>, ./bin/<tool> links there.
# Bash 3.2 compatible (macOS): no associative arrays.

SHOP_CACHE="${SHOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-lab}"
TOOLS_CONF="$ROOT/scripts/tools.conf"
# Seconds between "still building" lines during a long step.
TOOLS_HEARTBEAT="${TOOLS_HEARTBEAT:-30}"

RECIPE_FIELDS="version label check expect download checksum archive platforms module source package published files tags ldflags cgo fallback"

# The raw `key = value` lines of one [section] of tools.conf, as key=value.
_recipe_raw() {
  awk -v want="$1" '
    /^[[:space:]]*(#|$)/ { next }
    /^\[.*\]$/ { section = substr($0, 2, length($0) - 2); next }
    section == want {
      i = index($0, "=")
      if (i == 0) next
      key = substr($0, 1, i - 1); value = substr($0, i + 1)
      gsub(/^[[:space:]]+|[[:space:]]+$/, "", key); gsub(/^[[:space:]]+|[[:space:]]+$/, "", value)
      print key "=" value
    }' "$TOOLS_CONF"
}

# Names of every [section] of tools.conf, in file order.
recipe_names() { sed -n 's/^\[\(.*\)\]$/\1/p' "$TOOLS_CONF"; }

# The tools `make tools` installs: every recipe that is not only another one's fallback.
tool_names() {
  local fallbacks
  fallbacks="$(sed -n 's/^fallback *= *\(..*\)$/\1/p' "$TOOLS_CONF")"
  recipe_names | while read -r name; do grep -qxF "$name" <<<"$fallbacks" || echo "$name"; done
}

# Replace ${NAME} with the value of the shell variable NAME (pins, R_* placeholders); unknown names fail.
_expand() {
  local s="$1" name value
  while [[ "$s" =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; do
    name="${BASH_REMATCH[1]}"
    value="${!name-}"
    [[ -n "$value" ]] || die "scripts/tools.conf: \${$name} is not set (recipe $RECIPE)"
    s="${s//\$\{$name\}/$value}"
  done
  printf '%s' "$s"
}

# Load recipe SECTION into R_<field> variables (a `like = other` recipe starts from the other's fields).
recipe_load() {
  local section="$1" field line key raw parents="" parent
  # Already loaded (ensure_tool loads the same recipe several times).
  [[ "${RECIPE:-}" == "$section" && -n "${R_key:-}" ]] && return 0
  RECIPE="$section"
  R_key=""
  grep -qxF "$section" <<<"$(recipe_names)" || die "no recipe '$section' in scripts/tools.conf (see: scripts/tools.sh --list)"
  parent="$section"
  while parent="$(_recipe_raw "$parent" | sed -n 's/^like=//p')" && [[ -n "$parent" ]]; do
    parents="$parent $parents"
  done
  for field in $RECIPE_FIELDS; do printf -v "R_$field" '%s' ""; done
  for parent in $parents "$section"; do
    while IFS= read -r line; do
      key="${line%%=*}"
      [[ "$key" == like ]] && continue
      [[ " $RECIPE_FIELDS " == *" $key "* ]] || die "scripts/tools.conf [$parent]: unknown field '$key'"
      printf -v "R_$key" '%s' "${line#*=}"
    done < <(_recipe_raw "$parent")
  done
  R_name="$(_recipe_tool "$section")"
  # Placeholders: the pins first, then what derives from this recipe's version and the platform.
  raw="$R_version"
  VERSION="$(_expand "$raw")"
  SEMVER="${VERSION#v}"
  MAJOR="${SEMVER%%.*}"
  MINOR="$(cut -d. -f2 <<<"$SEMVER")"
  PATCH="$(cut -d. -f3 <<<"$SEMVER" | sed 's/[^0-9].*//')"
  read -r OS ARCH <<<"$(os_arch)"
  PLATFORM="$OS-$ARCH"
  for raw in $R_platforms; do [[ "${raw%%:*}" == "$PLATFORM" ]] && PLATFORM="${raw#*:}"; done
  for field in $RECIPE_FIELDS; do
    printf -v "R_$field" '%s' "$(_expand "$(eval "printf '%s' \"\$R_$field\"")")"
  done
  R_label="${R_label:-$R_version}"
  R_cgo="${R_cgo:-0}"
  [[ -n "$R_check" && -n "$R_expect" ]] || die "scripts/tools.conf [$section]: 'check' and 'expect' are required"
  R_key="$({
    for field in $RECIPE_FIELDS; do eval "printf '%s=%s\n' $field \"\$R_$field\""; done
    echo "$OS/$ARCH"
    # A module of this repository (module = ./path): its files are part of the recipe.
    if [[ "$R_module" == ./* ]]; then find "$ROOT/$R_module" -type f | LC_ALL=C sort | xargs cat; fi
  } | _sha256_stdin | cut -c1-12)"
  R_dir="$SHOP_CACHE/tools/$R_name/$R_label-$R_key"
}

# The binary a recipe installs: its own name, or for a fallback recipe the tool it stands in for.
_recipe_tool() {
  local name="$1" owner
  owner="$(awk -v want="$1" '/^\[.*\]$/ { s = substr($0, 2, length($0) - 2) }
    $0 ~ "^fallback *= *" want "$" { print s; exit }' "$TOOLS_CONF")"
  if [[ -n "$owner" ]]; then _recipe_tool "$owner"; else echo "$name"; fi
}

_sha256_stdin() {
  if command -v sha256sum >/dev/null; then sha256sum | awk '{print $1}'; else shasum -a 256 | awk '{print $1}'; fi
}

sha256_of() { _sha256_stdin <"$1"; }

# Does BINARY print what the loaded recipe expects (its pinned version) when run with `check`?
_passes_check() {
  local out
  [[ -x "$1" ]] || return 1
  # shellcheck disable=SC2086  # check holds several arguments
  out="$("$1" $R_check 2>&1)" || true
  grep -qFw -- "$R_expect" <<<"$out"
}

# The version a binary reports, for messages ("found v0.27.0"); empty when it reports none.
_reported_version() {
  local out
  # shellcheck disable=SC2086
  out="$("$1" $R_check 2>/dev/null)" || true
  grep -oE '(v|edge-|stable-)?[0-9]+\.[0-9]+\.[0-9]+[^ ,"]*' <<<"$out" | head -n1 || true
}

# CPU seconds (user + system) of this shell's finished children, into the variable named $1. `times` runs in
# this shell (a command substitution would count a subshell's children: none).
_children_cpu() {
  local f="${TMPDIR:-/tmp}/shop-tools-times.$$"
  times >"$f"
  printf -v "$1" '%s' "$(tail -n1 "$f" | awk '{ t = 0; for (i = 1; i <= NF; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } printf "%d", t }')"
  rm -f "$f"
}

_elapsed() {
  local s=$((SECONDS - $1))
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# Run CMD... with its output in LOG, printing "still <what> (elapsed)" every TOOLS_HEARTBEAT seconds.
_with_progress() {
  local what="$1" logfile="$2" start=$SECONDS pid rc=0 n=0
  shift 2
  "$@" >"$logfile" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    n=$((n + 1))
    if ((n % TOOLS_HEARTBEAT == 0)); then log "    ... still $what ($(_elapsed "$start"))"; fi
  done
  wait "$pid" || rc=$?
  trap - INT TERM
  return "$rc"
}

# Point ./bin/<tool> at BINARY.
_link() {
  run mkdir -p "$BIN"
  run ln -sfn "$1" "$BIN/$R_name"
}

# Put the verified binary NEW (in a temporary directory next to the cache folder) into the cache, atomically.
_cache_put() {
  local tmpdir="$1" origin="$2"
  if ! _passes_check "$tmpdir/$R_name"; then
    TOOL_REASON="the $3 $R_name does not print '$R_expect' for '$R_name $R_check'"
    return 1
  fi
  printf '%s\n' "$origin" >"$tmpdir/origin"
  mkdir -p "$(dirname "$R_dir")"
  # Another process may have finished the same recipe first: keep theirs.
  mv "$tmpdir" "$R_dir" 2>/dev/null || rm -rf "$tmpdir"
}

# One line about why a curl download failed.
_curl_reason() {
  case "$1" in
    6) echo "cannot resolve $2 (no internet?)" ;;
    7 | 28) echo "cannot connect to $2 (no internet, or a proxy/firewall?)" ;;
    22) echo "$2 answered with an HTTP error (no such release file?)" ;;
    *) echo "curl failed with exit code $1 for $2" ;;
  esac
}

_host_of() { sed -E 's#^[a-z]+://([^/]+).*#\1#' <<<"$1"; }

# Release download of the loaded recipe into the cache (checksum verified against the published file).
_download() {
  local tmpdir file sums expected actual rc=0 curl=(curl -fsSL --connect-timeout 10 --retry 2 --speed-limit 1024 --speed-time 60)
  if [[ -z "$R_download" || -z "$R_checksum" ]]; then
    TOOL_REASON="download: none published with a checksum"
    return 1
  fi
  if [[ "$DRY_RUN" == 1 ]]; then
    run "${curl[@]}" -o "$SHOP_CACHE/download/$R_name" "$R_download"
    run "${curl[@]}" -o "$SHOP_CACHE/download/$R_name.sha256" "$R_checksum"
    echo "+ verify sha256 of $SHOP_CACHE/download/$R_name against $SHOP_CACHE/download/$R_name.sha256"
    return 0
  fi
  log "  $R_name $R_label: download $R_download"
  mkdir -p "$SHOP_CACHE/tools/$R_name"
  tmpdir="$(mktemp -d "$SHOP_CACHE/tools/$R_name/.download.XXXXXX")"
  file="$tmpdir/$(basename "$R_download")"
  "${curl[@]}" -o "$file" "$R_download" 2>/dev/null || rc=$?
  ((rc == 0)) && { "${curl[@]}" -o "$tmpdir/SHA256" "$R_checksum" 2>/dev/null || rc=$?; }
  if ((rc != 0)); then
    rm -rf "$tmpdir"
    TOOL_REASON="download: $(_curl_reason "$rc" "$(_host_of "$R_download")")"
    return 1
  fi
  # A checksum file holds one hash, or `hash  name` lines (SHA256SUMS): take the line of our file.
  sums="$tmpdir/SHA256"
  expected="$(awk -v f="$(basename "$R_download")" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")"
  [[ -n "$expected" ]] || expected="$(awk '{ print $1; exit }' "$sums")"
  actual="$(sha256_of "$file")"
  if [[ -z "$expected" || "$expected" != "$actual" ]]; then
    rm -rf "$tmpdir"
    die "checksum mismatch for $R_name $R_label: expected '$expected', got '$actual' ($R_download)"
  fi
  case "$file" in
    *.tar.gz | *.tgz) tar -xzf "$file" -C "$tmpdir" "$R_archive" && mv "$tmpdir/$R_archive" "$tmpdir/$R_name.new" ;;
    *.zip) unzip -q -o "$file" "$R_archive" -d "$tmpdir" && mv "$tmpdir/$R_archive" "$tmpdir/$R_name.new" ;;
    *) mv "$file" "$tmpdir/$R_name.new" ;;
  esac
  rm -f "$file" "$sums"
  [[ -z "$R_archive" ]] || rm -rf "${tmpdir:?}/${R_archive%%/*}"
  mv "$tmpdir/$R_name.new" "$tmpdir/$R_name"
  chmod +x "$tmpdir/$R_name"
  _cache_put "$tmpdir" "downloaded $R_download (sha256 $actual)" downloaded || {
    rm -rf "$tmpdir"
    return 1
  }
}

# Why `go mod download` failed, in a few words.
_go_reason() {
  local err
  err="$(sed -n 's/.*"Error": "\(.*\)".*/\1/p' "$1" | head -n1)"
  [[ -n "$err" ]] || err="$(grep -v '^\s*$' "$1" | tail -n1)"
  case "$err" in
    *"403 Forbidden"* | *"404 Not Found"* | *"410 Gone"* | *"not available"* | *"unknown revision"*)
      echo "the Go module proxy does not serve $R_module@$R_source" ;;
    *"no such host"* | *"dial tcp"* | *"timeout"* | *"connection refused"*)
      echo "cannot reach the Go module proxy ($(go env GOPROXY 2>/dev/null))" ;;
    *) echo "go mod download $R_module@$R_source: ${err:0:200}" ;;
  esac
}

# The module source ready to build: the module cache's read-only copy, or a copy in $SHOP_CACHE/src with
# `published`: its local replace directives (staging dirs the module zip lacks) become requirements of the
# published modules; `files`: the files upstream's release build generates before `go build` (path:content,
# e.g. FerretDB's build/version/version.txt). Prints the directory.
_prepare_source() {
  local moddir="$1" logfile="$2" dir tmp mod spec edits=()
  if [[ -z "$R_published" && -z "$R_files" ]]; then
    echo "$moddir"
    return 0
  fi
  dir="$SHOP_CACHE/src/$(basename "$R_module")@$R_source${R_published:+-published-$R_published}"
  [[ -z "$R_files" ]] || dir+="-files-$(printf '%s' "$R_files" | _sha256_stdin | cut -c1-8)"
  if [[ -f "$dir/.ready" ]]; then
    echo "$dir"
    return 0
  fi
  mkdir -p "$SHOP_CACHE/src"
  tmp="$(mktemp -d "$SHOP_CACHE/src/.prepare.XXXXXX")"
  cp -R "$moddir/." "$tmp/" && chmod -R u+w "$tmp"
  if [[ -n "$R_published" ]]; then
    # Local replaces (`X => ./dir` or `X => ../dir`) of modules the go.mod requires.
    for mod in $(awk '
        /^require[[:space:]]*\(/ { inreq = 1; next } inreq && /^\)/ { inreq = 0; next }
        inreq && NF >= 2 { req[$1] = 1 } /^require[[:space:]]+[^(]/ { req[$2] = 1 }
        /^replace[[:space:]]*\(/ { inrep = 1; next } inrep && /^\)/ { inrep = 0; next }
        { line = $0; sub(/^[[:space:]]+/, "", line); sub(/^replace[[:space:]]+/, "", line)
          if ((inrep || $1 == "replace") && line ~ /=>[[:space:]]*\.\.?\//) { split(line, f, /[[:space:]]+/); rep[f[1]] = 1 } }
        END { for (m in rep) if (m in req) print m }' "$tmp/go.mod" | sort); do
      edits+=("-dropreplace=$mod" "-require=$mod@$R_published")
    done
    if ((${#edits[@]} == 0)); then
      rm -rf "$tmp"
      log "    recipe $RECIPE has 'published' but $R_module's go.mod has no local replace directives"
      return 1
    fi
    if ! (cd "$tmp" && go mod edit "${edits[@]}") >>"$logfile" 2>&1; then
      rm -rf "$tmp"
      return 1
    fi
    log "    replaced $((${#edits[@]} / 2)) local replace directives with the published modules at $R_published"
  fi
  for spec in $R_files; do
    printf '%s\n' "${spec#*:}" >"$tmp/${spec%%:*}"
    log "    wrote ${spec%%:*} (${spec#*:}), as upstream's release build generates it"
  done
  touch "$tmp/.ready"
  mv "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  echo "$dir"
}

# Build the loaded recipe's pinned module source with the `go` on PATH into the cache.
_build() {
  local start=$SECONDS cpu cpu_end t logfile moddir srcdir tmpdir modflag=-mod=readonly step
  _children_cpu cpu
  if [[ -z "$R_module" || -z "$R_source" ]]; then
    TOOL_REASON="build: no Go module source in its recipe"
    return 1
  fi
  if ! command -v go >/dev/null 2>&1; then
    TOOL_REASON="build: no Go toolchain on PATH"
    return 1
  fi
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ go build $R_module@$R_source $R_package (when the download fails)"
    return 0
  fi
  mkdir -p "$SHOP_CACHE/logs" "$SHOP_CACHE/tools/$R_name"
  logfile="$SHOP_CACHE/logs/$R_name-$R_label-$R_key.log"
  : >"$logfile"
  log "  $R_name $R_label: build from Go module $R_module@$R_source ($(go env GOVERSION), log $logfile)"

  step="[1/5] go mod download $R_module@$R_source"
  t=$SECONDS
  log "    $step"
  if [[ "$R_module" == ./* ]]; then
    moddir="$ROOT/${R_module#./}"
    log "    $step: a module of this repository ($moddir)"
  elif ! _with_progress "downloading $R_module" "$logfile.download" go mod download -json "$R_module@$R_source"; then
    TOOL_REASON="build: $(_go_reason "$logfile.download")"
    cat "$logfile.download" >>"$logfile"
    return 1
  else
    moddir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' "$logfile.download")"
    cat "$logfile.download" >>"$logfile" && rm -f "$logfile.download"
    log "    $step: done ($(_elapsed "$t"))"
  fi

  step="[2/5] source"
  if ! srcdir="$(_prepare_source "$moddir" "$logfile")"; then
    TOOL_REASON="build: preparing the source of $R_module failed (see $logfile)"
    return 1
  fi
  [[ -n "$R_published" ]] && modflag=-mod=mod
  log "    $step: $srcdir"

  step="[3/5] go list -deps $R_package (downloads the modules it needs)"
  t=$SECONDS
  log "    $step"
  if ! (cd "$srcdir" && _with_progress "downloading modules for $R_name" "$logfile.deps" env GOWORK=off \
    CGO_ENABLED="$R_cgo" go list "$modflag" ${R_tags:+-tags "$R_tags"} -deps "$R_package" >/dev/null); then
    cat "$logfile.deps" >>"$logfile"
    TOOL_REASON="build: $(_go_reason "$logfile.deps")"
    return 1
  fi
  cat "$logfile.deps" >>"$logfile" && rm -f "$logfile.deps"
  log "    $step: done ($(_elapsed "$t"))"

  step="[4/5] go build $R_package"
  t=$SECONDS
  log "    $step (tags: ${R_tags:-none}, CGO_ENABLED=$R_cgo)"
  tmpdir="$(mktemp -d "$SHOP_CACHE/tools/$R_name/.build.XXXXXX")"
  if ! (cd "$srcdir" && _with_progress "building $R_name" "$logfile.build" env GOWORK=off CGO_ENABLED="$R_cgo" \
    go build "$modflag" -buildvcs=false -trimpath ${R_tags:+-tags "$R_tags"} -ldflags "$R_ldflags" \
    -o "$tmpdir/$R_name" "$R_package"); then
    cat "$logfile.build" >>"$logfile"
    rm -rf "$tmpdir"
    printf '%s\n' "    go build failed; last lines of $logfile:" >&2
    tail -n 15 "$logfile" | sed 's/^/      /' >&2
    TOOL_REASON="build: go build $R_package failed (see $logfile)"
    return 1
  fi
  cat "$logfile.build" >>"$logfile" && rm -f "$logfile.build"
  log "    $step: done ($(_elapsed "$t"))"

  log "    [5/5] check: $R_name $R_check"
  _cache_put "$tmpdir" "built from $R_module@$R_source with $(go env GOVERSION) in $(_elapsed "$start")" built || {
    rm -rf "$tmpdir"
    return 1
  }
  _children_cpu cpu_end
  cpu=$((cpu_end - cpu))
  log "  $R_name $R_label: built in $(_elapsed "$start") (CPU time $((cpu / 60))m$((cpu % 60))s)"
}

# The recipes to try for a tool: its own, then its fallbacks.
_recipe_chain() {
  local section="$1"
  while [[ -n "$section" ]]; do
    echo "$section"
    section="$(_recipe_raw "$section" | sed -n 's/^fallback=//p')"
  done
}

ensure_tool() {
  local tool="$1" section chain found candidate reasons=""
  chain="$(_recipe_chain "$tool")"
  [[ -n "$chain" ]] || die "no recipe '$tool' in scripts/tools.conf"
  recipe_load "$tool"
  local want="$R_label"
  # 1. ./bin already has a binary of one of the recipes.
  for section in $chain; do
    recipe_load "$section"
    if _passes_check "$BIN/$tool"; then
      log "$tool $R_label already in ./bin"
      return 0
    fi
  done
  recipe_load "$tool"
  found="$(_reported_version "$BIN/$tool")"
  # 2. The cache has it.
  for section in $chain; do
    recipe_load "$section"
    if [[ -x "$R_dir/$tool" ]]; then
      log "$tool $R_label from the tool cache ($(cat "$R_dir/origin" 2>/dev/null || echo "$R_dir"))"
      _link "$R_dir/$tool"
      return 0
    fi
  done
  # 3. The tool on PATH (outside ./bin) is exactly the pinned version.
  candidate="$(PATH="$(_path_without_bin)" command -v "$tool" 2>/dev/null || true)"
  if [[ -n "$candidate" ]]; then
    for section in $chain; do
      recipe_load "$section"
      if _passes_check "$candidate"; then
        log "$tool $R_label: using $candidate (on PATH, the pinned version)"
        _link "$candidate"
        return 0
      fi
    done
  fi
  # 4. Download, else build, per recipe of the chain.
  recipe_load "$tool"
  log "installing $tool $want into ./bin${found:+ (found $found)}"
  for section in $chain; do
    recipe_load "$section"
    TOOL_REASON=""
    if _download; then
      [[ "$DRY_RUN" == 1 ]] && return 0
      _link "$R_dir/$tool"
      return 0
    fi
    reasons+="${reasons:+; }${TOOL_REASON}"
    if [[ -n "$R_download" ]]; then log "  $tool $R_label: ${TOOL_REASON}: building it from source instead"; fi
    TOOL_REASON=""
    if _build; then
      [[ "$DRY_RUN" == 1 ]] && return 0
      _link "$R_dir/$tool"
      return 0
    fi
    reasons+=", ${TOOL_REASON}"
    log "  $tool $R_label: ${TOOL_REASON}${R_fallback:+; trying recipe $R_fallback}"
  done
  die "$tool $want is not available: $reasons. Connect to the internet (release download), or install Go with" \
    "access to the Go module proxy (source build), or put $tool $want on PATH; then retry."
}

# PATH without ./bin, so a tool found there is one the user installed.
_path_without_bin() {
  local out="" dir
  local IFS=:
  for dir in $PATH; do [[ "$dir" == "$BIN" ]] || out+="${out:+:}$dir"; done
  printf '%s' "$out"
}
