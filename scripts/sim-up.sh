#!/usr/bin/env bash
# make sim-up: the simulated cluster that CLUSTER=sim targets (docs/kubernetes.md, "The simulated cluster").
# kwokctl (binary runtime) runs the pinned etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
# local processes, and kwok plays the kubelet of one simulated node: pods are scheduled, get IPs and become
# Ready, but no container runs. A helper process (python -m scripts.sim) is the API server's route to the
# Services it calls (admission webhooks) and runs the real istiod for Istio's webhooks.
# Everything lives in .cache/sim (kubeconfig included, ~/.kube/config is never touched); every port is a free
# one; make sim-down removes it all. Idempotent: a healthy cluster is kept.
export CLUSTER=sim
source "$(dirname "$0")/lib.sh"

KWOK_DIR="$SIM_DIR/kwok"
SOCKET="$SIM_DIR/egress.sock"
PIDFILE="$SIM_DIR/controlplane.pid"
NODE="$CLUSTER_NAME-control-plane"
PY="${PY:-$ROOT/.venv/bin/python}"

log "[1/5] tools (pinned, into ./bin)"
for tool in kubectl etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl pilot-discovery; do
  ensure_tool "$tool"
done
[[ -x "$PY" ]] || run make -C "$ROOT" --no-print-directory venv

if [[ "$DRY_RUN" != 1 ]] && sim_healthy; then
  log "simulated cluster $CLUSTER_NAME is up ($KUBECONFIG, context $KUBE_CONTEXT): not creating it again"
  finish "simulated cluster: up. Use it with CLUSTER=sim (make up CLUSTER=sim), or kubectl with KUBECONFIG=$KUBECONFIG"
  exit 0
fi
if [[ -e "$SIM_DIR" ]]; then
  log "a broken or half-created simulated cluster is in $SIM_DIR: removing it first"
  run "$ROOT/scripts/sim-down.sh"
fi
# A Unix socket path is at most 107 bytes (sun_path).
((${#SOCKET} < 100)) || die "the clone's path is too long for the egress socket ($SOCKET): clone to a shorter path"

log "[2/5] configuration in $SIM_DIR"
run mkdir -p "$SIM_DIR/logs" "$KWOK_DIR"
# The API server's `cluster` traffic (webhooks, aggregated APIs, kubelet calls) goes to the egress proxy
# (scripts/sim/egress.py): it reaches only the local servers the helper runs, never the simulated pod IPs.
run_sh "cat > $SIM_DIR/egress-selector.yaml <<'EOF'
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
  - name: cluster
    connection:
      proxyProtocol: HTTPConnect
      transport:
        uds:
          udsName: $SOCKET
EOF"
# kwokctl's options: the pinned binaries, 127.0.0.1 only, admission and RBAC on (webhooks, namespaces that
# must exist), the egress selector; etcd without fsync (a throwaway cluster on a shared CI machine).
run_sh "cat > $SIM_DIR/kwokctl.yaml <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeAuthorization: true
  kubeAdmission: true
  etcdBinary: $BIN/etcd
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kwokControllerBinary: $BIN/kwok
  kubectlBinary: $BIN/kubectl
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: egress-selector-config-file
        value: $SIM_DIR/egress-selector.yaml
  - name: etcd
    extraArgs:
      - key: unsafe-no-fsync
        value: \"true\"
EOF"

log "[3/5] control plane: kwokctl create cluster $CLUSTER_NAME (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)"
t=$SECONDS
# kwokctl logs in JSON lines: into its log file, shown when it fails.
run env KWOK_WORKDIR="$KWOK_DIR" kwokctl --name "$CLUSTER_NAME" -c "$SIM_DIR/kwokctl.yaml" create cluster \
  --kubeconfig "$KUBECONFIG" --wait 120s 2>>"$SIM_DIR/logs/kwokctl.log" || {
  tail -n 20 "$SIM_DIR/logs/kwokctl.log" >&2
  die "kwokctl could not create the cluster (log: $SIM_DIR/logs/kwokctl.log)"
}
log "control plane up in $((SECONDS - t))s"

log "[4/5] the helper: egress proxy on $SOCKET, istiod when Istio is installed, volumes" \
  "(log: $SIM_DIR/logs/controlplane.log)"
# The whole background job writes to the log (exec: no shell stays between): a process that kept the caller's
# stdout would hold its pipe open, so `make up CLUSTER=sim | tee up.log` (or any caller reading the output to
# its end) would never finish. tests/sim/test_1_cluster.py checks every process of the cluster for it.
run_sh "(cd $ROOT && exec $PY -m scripts.sim serve --dir $SIM_DIR --kubeconfig $KUBECONFIG --context $KUBE_CONTEXT \
--bin $BIN --socket $SOCKET --pidfile $PIDFILE) </dev/null >>$SIM_DIR/logs/controlplane.log 2>&1 &"
if [[ "$DRY_RUN" != 1 ]]; then
  for _ in $(seq 1 150); do
    [[ -S "$SOCKET" && -s "$PIDFILE" ]] && break
    sleep 0.2
  done
  [[ -S "$SOCKET" && -s "$PIDFILE" ]] || die "the helper did not start: see $SIM_DIR/logs/controlplane.log"
fi

log "[5/5] node $NODE (simulated by kwok: 32 CPUs, 64 GiB, 250 pods; enough for the shop and both meshes)," \
  "StorageClass standard (as kind's)"
run_sh "kubectl --context $KUBE_CONTEXT apply -f - <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $NODE
    kubernetes.io/os: linux
    node-role.kubernetes.io/control-plane: \"\"
    type: kwok
spec:
  podCIDR: 10.244.0.0/24
  podCIDRs: [10.244.0.0/24]
status:
  allocatable: {cpu: \"32\", memory: 64Gi, pods: \"250\", ephemeral-storage: 200Gi}
  capacity: {cpu: \"32\", memory: 64Gi, pods: \"250\", ephemeral-storage: 200Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: $KUBERNETES}
EOF"
run kubectl --context "$KUBE_CONTEXT" wait --for=condition=Ready "node/$NODE" --timeout=60s
# kind's default StorageClass (MongoDB's volume claim uses the default); the helper provisions its volumes.
run_sh "kubectl --context $KUBE_CONTEXT apply -f - <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: rancher.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
EOF"
# The service account controller creates each namespace's `default` ServiceAccount; pods need it.
if [[ "$DRY_RUN" != 1 ]]; then
  for _ in $(seq 1 60); do
    kubectl --context "$KUBE_CONTEXT" -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 1
  done
fi
finish "simulated cluster $CLUSTER_NAME is up: use it with CLUSTER=sim (make up CLUSTER=sim MESH=istio)," \
  "or kubectl with KUBECONFIG=$KUBECONFIG. make sim-down removes it."
