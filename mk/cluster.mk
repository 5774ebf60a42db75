# Cluster targets (kind + kustomize). Included by the root Makefile. Every target honours DRY_RUN=1.
# Scripts live in scripts/*.sh; pinned versions in scripts/versions.env.
MESH ?= none
LAB ?=
S ?=
DRY_RUN ?= 0
export DRY_RUN
CRD_CACHE := .cache/crds
ISTIO_VERSION := $(shell sed -n 's/^ISTIO=//p' scripts/versions.env)
GATEWAY_API_VERSION := $(shell sed -n 's/^GATEWAY_API=//p' scripts/versions.env)
LINKERD_VERSION := $(shell sed -n 's/^LINKERD=//p' scripts/versions.env)
LINKERD_SMI_VERSION := $(shell sed -n 's/^LINKERD_SMI=//p' scripts/versions.env)

.PHONY: up down status logs secrets crds validate mesh lab lab-reset dashboards verify

up: ## create the kind cluster and deploy the shop (MESH=none|istio|linkerd, DRY_RUN=1 to print only, CLUSTER=sim: the simulated cluster)
	scripts/up.sh $(MESH)

down: ## delete the kind cluster (and its data)
	scripts/down.sh

status: ## mesh, pods, services and the shop URL
	scripts/status.sh

logs: ## logs of a service: make logs S=order [FOLLOW=1]
	scripts/logs.sh $(S)

secrets: ## create the Secrets in the cluster (generated, idempotent, never committed)
	scripts/secrets.sh

crds: ## download the pinned CRD schemas `make validate` needs into .cache/crds (when ../shared/crds is absent)
	scripts/crds.sh $(CRD_CACHE)

validate: $(STAMP) ## render every kustomize entry point, validate strictly, cross-check, run istioctl analyze/kind's loader, yamllint
	@test -d ../shared/crds || test -d $(CRD_CACHE) || $(MAKE) --no-print-directory crds
	@scripts/tools.sh --optional "$(TOOLS_OPTIONAL)" kubectl kind istioctl istio-analyze linkerd
	$(PY) -m scripts.k8svalidate
	TOOLS_OPTIONAL="$(TOOLS_OPTIONAL)" $(PY) -m scripts.k8svalidate.analyzers
	$(VENV)/bin/yamllint --strict .

mesh: ## switch the running shop to another mesh: make mesh MESH=istio|linkerd|none
	scripts/mesh.sh $(MESH)

lab: ## apply a lab on the mesh overlay: make lab MESH=istio LAB=canary
	scripts/lab.sh apply $(MESH) $(LAB)

lab-reset: ## remove every lab resource and re-apply the mesh overlay: make lab-reset MESH=istio
	scripts/lab.sh reset $(MESH) $(LAB)

dashboards: ## open the mesh dashboards: make dashboards MESH=istio|linkerd
	@test "$(MESH)" != none || { echo "dashboards need MESH=istio or MESH=linkerd" >&2; exit 1; }
	@test "$(CLUSTER)" != sim || test "$(DRY_RUN)" = 1 || { echo "ERROR: make dashboards port-forwards to the" \
	  "dashboards' pods, and the simulated cluster (CLUSTER=sim) runs no containers: nothing would answer." \
	  "Open the dashboards on a kind cluster (make up)." >&2; exit 1; }
	mesh/$(MESH)/dashboards.sh

verify: $(STAMP) ## live checks on the running cluster, fails without one: make verify MESH=istio [LAB=canary]
	PYTEST=$(VENV)/bin/pytest scripts/verify.sh $(MESH) $(LAB)
