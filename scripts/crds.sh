#!/usr/bin/env bash
# make crds: download the pinned upstream CRDs that `make validate` checks mesh resources against,
# into .cache/crds/<folder> (the same layout as ../shared/crds, which CI uses when present).
# Pinned by the exact upstream commits of the tags in scripts/versions.env. Linkerd's files are Helm
# templates: their `{{ ... }}` lines (metadata only) are dropped so they parse as plain YAML.
source "$(dirname "$0")/lib.sh"

DEST="$ROOT/${1:-.cache/crds}"
RAW=https://raw.githubusercontent.com
ISTIO_COMMIT=56df41f63e513f834c9a3af33d8aed82d1d961f2 # istio/istio tag 1.30.3
GATEWAY_COMMIT=a8fe5c8732a37ef471d86afaf570ff8ad0ef0221 # gateway-api tag v1.2.1
LINKERD_COMMIT=eadc1acf79ad2e766afbdceadb77f1594296fd77 # linkerd2 version-2.20 (edge-26.6.3)
SMI_COMMIT=c0c39b1e125d4bc38d690e46d79178317e7d717b # linkerd-smi tag v0.2.7

fetch() { # fetch URL FILE
  run curl -fsSL --retry 3 --create-dirs -o "$2" "$1"
}

fetch "$RAW/istio/istio/$ISTIO_COMMIT/manifests/charts/base/files/crd-all.gen.yaml" \
  "$DEST/istio-$ISTIO/crd-all.gen.yaml"

for kind in gatewayclasses gateways grpcroutes httproutes referencegrants; do
  f="gateway.networking.k8s.io_$kind.yaml"
  fetch "$RAW/kubernetes-sigs/gateway-api/$GATEWAY_COMMIT/config/crd/standard/$f" "$DEST/gateway-api-$GATEWAY_API/$f"
done

ldir="$DEST/linkerd-2.20"
for f in authorization-policy egress-network http-local-ratelimit-policy httproute meshtls-authentication \
  network-authentication server-authorization server; do
  fetch "$RAW/linkerd/linkerd2/$LINKERD_COMMIT/charts/linkerd-crds/templates/policy/$f.yaml" "$ldir/$f.yaml"
done
fetch "$RAW/linkerd/linkerd2/$LINKERD_COMMIT/charts/linkerd-crds/templates/serviceprofile.yaml" \
  "$ldir/serviceprofile.yaml"
fetch "$RAW/linkerd/linkerd-smi/$SMI_COMMIT/charts/linkerd-smi/templates/trafficsplit-crd.yaml" \
  "$DEST/linkerd-smi-$LINKERD_SMI/trafficsplit-crd.yaml"

run_sh "sed -i.bak '/{{/d' $ldir/*.yaml $DEST/linkerd-smi-$LINKERD_SMI/*.yaml && rm -f $ldir/*.bak \
$DEST/linkerd-smi-$LINKERD_SMI/*.bak"
finish "CRDs in $DEST"
