#!/usr/bin/env bash
# Egress lab: the stand-in provider's namespace and its self-signed TLS certificate (Secret
# provider-tls), generated at run time; the key never touches the repo.
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../common.sh"

NS=payments-provider
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

run "${K[@]}" apply -f "$ISTIO_DIR/labs/egress/namespace-provider.yaml"
run openssl req -x509 -newkey rsa:2048 -sha256 -days 30 -nodes \
  -subj "/CN=api.payments.example" \
  -addext "subjectAltName=DNS:api.payments.example,DNS:provider.$NS.svc.cluster.local" \
  -keyout "$TMP/tls.key" -out "$TMP/tls.crt"
run "${K[@]}" -n "$NS" delete secret provider-tls --ignore-not-found
run "${K[@]}" -n "$NS" create secret tls provider-tls --cert="$TMP/tls.crt" --key="$TMP/tls.key"
