# The simulated cluster (kwok): the real Kubernetes control plane with simulated nodes and pods, no Docker.
# CLUSTER=sim makes the cluster targets (up, mesh, lab, lab-reset, status, verify, down) act on it.
# docs/kubernetes.md, "The simulated cluster".
CLUSTER ?= kind
export CLUSTER

.PHONY: sim-up sim-down sim-test

sim-up: $(STAMP) ## create the simulated cluster (real Kubernetes API, kwok nodes, no Docker); then make up/mesh/lab... CLUSTER=sim
	scripts/sim-up.sh

sim-down: ## delete the simulated cluster: no process, port or file of it is left
	scripts/sim-down.sh

sim-test: $(STAMP) ## sim-up, the tests/sim suite against the real API server (make up/mesh/lab... for real), sim-down
	scripts/sim-test.sh $(PYTEST_ARGS)
