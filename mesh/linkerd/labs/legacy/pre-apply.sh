#!/usr/bin/env bash
# Before `make lab LAB=legacy MESH=linkerd`: install the deprecated linkerd-smi extension (pinned
# LINKERD_SMI in scripts/versions.env), which serves the TrafficSplit CRD and turns TrafficSplits into
# ServiceProfiles. Its CLI goes into ./bin, checked against the .sha256 file published with the release.
# (This lab runs alone: scripts/lab.sh refuses before this hook runs, see labs/standalone.txt.)
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "$0")/../../common.sh"

smi_version="${LINKERD_SMI#v}"
if [[ ! -x "$BIN/linkerd-smi-$smi_version" ]]; then
  read -r os arch < <(os_arch)
  suffix="$os-$arch"
  [[ "$suffix" == darwin-amd64 ]] && suffix=darwin
  url="https://github.com/linkerd/linkerd-smi/releases/download/$LINKERD_SMI/linkerd-smi-$smi_version-$suffix"
  tmp="$ROOT/.cache/download"
  log "installing linkerd-smi $LINKERD_SMI into ./bin"
  run mkdir -p "$BIN" "$tmp"
  run curl -fsSL --retry 3 -o "$tmp/linkerd-smi.download" "$url"
  run curl -fsSL --retry 3 -o "$tmp/linkerd-smi.sha256" "$url.sha256"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ verify sha256 of $tmp/linkerd-smi.download against $tmp/linkerd-smi.sha256"
  else
    expected="$(awk '{print $1; exit}' "$tmp/linkerd-smi.sha256")"
    actual="$(sha256_of "$tmp/linkerd-smi.download")"
    [[ -n "$expected" && "$expected" == "$actual" ]] ||
      die "checksum mismatch for linkerd-smi: expected '$expected', got '$actual' ($url)"
    chmod +x "$tmp/linkerd-smi.download"
    mv "$tmp/linkerd-smi.download" "$BIN/linkerd-smi-$smi_version"
    rm -f "$tmp/linkerd-smi.sha256"
  fi
  run ln -sf "linkerd-smi-$smi_version" "$BIN/linkerd-smi"
fi

run_sh "linkerd-smi --context $KUBE_CONTEXT install | $K apply -f -"
run $K wait --for=condition=Established --timeout=60s crd/trafficsplits.split.smi-spec.io
run $K -n linkerd-smi rollout status deployment/smi-adaptor --timeout=180s
