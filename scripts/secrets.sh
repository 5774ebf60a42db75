#!/usr/bin/env bash
# Create the shop's Secrets in the cluster at deploy time (never committed, never printed).
# Idempotent: existing Secrets are kept (no rotation). `make down` deletes them with the cluster.
#   mongodb-root (username, password)   mongodb-users (one password per service)
#   mongo-<service> (url)               auth-jwt (private.pem, RSA 2048)   frontend-session (secret)
#   service-clients (clients: `<id>=<secret>,...` for auth; <id>: that service's own secret)
source "$(dirname "$0")/lib.sh"

require_cluster # skipped when make up already checked
DB_SERVICES="$(database_services)" # services/topology.env: every service but WITHOUT_DATABASE
K=(kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

exists() { query "${K[@]}" get secret "$1" >/dev/null 2>&1; }
# kubectl create ... --dry-run=client | kubectl apply: creates or updates without failing on re-runs.
apply_secret() {
  run_sh "${K[*]} create secret generic $* --dry-run=client -o yaml | ${K[*]} apply -f -"
}

run_sh "kubectl --context $KUBE_CONTEXT create namespace $NAMESPACE --dry-run=client -o yaml \
| kubectl --context $KUBE_CONTEXT apply -f -"

# The MongoDB secrets belong together (the init script creates users with these passwords once).
if exists mongodb-root; then
  log "MongoDB secrets exist: kept (make down deletes the cluster and its data to start over)"
else
  run mkdir -p "$TMP/users"
  run_sh "openssl rand -hex 24 > $TMP/root-password"
  for svc in $DB_SERVICES; do
    run_sh "openssl rand -hex 24 > $TMP/users/$svc"
    run_sh "printf 'mongodb://%s:%s@mongodb:27017/%s?authSource=%s' $svc \"\$(cat $TMP/users/$svc)\" $svc $svc \
> $TMP/url-$svc"
  done
  apply_secret mongodb-root --from-literal=username=root "--from-file=password=$TMP/root-password"
  apply_secret mongodb-users "--from-file=$TMP/users"
  for svc in $DB_SERVICES; do
    apply_secret "mongo-$svc" "--from-file=url=$TMP/url-$svc"
  done
fi

if exists auth-jwt; then
  log "auth-jwt exists: kept"
else
  run_sh "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $TMP/private.pem 2>/dev/null"
  apply_secret auth-jwt "--from-file=private.pem=$TMP/private.pem"
fi

if exists frontend-session; then
  log "frontend-session exists: kept"
else
  run_sh "openssl rand -hex 32 > $TMP/session-secret"
  apply_secret frontend-session "--from-file=secret=$TMP/session-secret"
fi

# OAuth 2.0 client secrets of the services that act as themselves (SERVICE_CLIENTS: order refunds and
# looks up payments with its own token). auth mounts key `clients`, each client only its own key.
if exists service-clients; then
  log "service-clients exists: kept"
else
  client_files=()
  for client in $SERVICE_CLIENTS; do
    run_sh "openssl rand -hex 32 > $TMP/client-$client"
    client_files+=("--from-file=$client=$TMP/client-$client")
  done
  run_sh "for c in $SERVICE_CLIENTS; do printf '%s=%s,' \"\$c\" \"\$(cat $TMP/client-\$c)\"; done > $TMP/clients"
  apply_secret service-clients "--from-file=clients=$TMP/clients" "${client_files[@]}"
fi

finish "Secrets in namespace $NAMESPACE: mongodb-root, mongodb-users, mongo-<service>, auth-jwt, frontend-session, service-clients"
