#!/usr/bin/env bash
# Generates the gateway's self-signed TLS certificate at run time and stores it as Secret
# `ecommerce-tls-secret` in istio-system (where the ingress gateway reads credentialName from).
# Nothing is written into the repo: the key lives in a temporary directory that is removed.
set -euo pipefail
# shellcheck source=../../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../common.sh"

SECRET=ecommerce-tls-secret
GATEWAY_NS=istio-system
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# openssl's key generation draws progress dots on stderr: kept in a file, shown only when it fails.
run openssl req -x509 -newkey rsa:2048 -sha256 -days 30 -nodes \
  -subj "/CN=ecommerce.example.com" \
  -addext "subjectAltName=DNS:ecommerce.example.com,DNS:localhost" \
  -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>"$TMP/openssl.log" || {
  cat "$TMP/openssl.log" >&2
  die "openssl could not make the gateway's certificate"
}
# delete + create: idempotent, a re-run replaces the certificate.
run "${K[@]}" -n "$GATEWAY_NS" delete secret "$SECRET" --ignore-not-found
run "${K[@]}" -n "$GATEWAY_NS" create secret tls "$SECRET" --cert="$TMP/tls.crt" --key="$TMP/tls.key"
# labelled like every lab resource: `make lab-reset` deletes it (lab resources in istio-system too)
run "${K[@]}" -n "$GATEWAY_NS" label secret "$SECRET" lab=gateway --overwrite
log "HTTPS: curl -k https://localhost/  or  curl -k --resolve ecommerce.example.com:443:127.0.0.1 https://ecommerce.example.com/"
