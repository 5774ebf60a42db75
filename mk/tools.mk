# The pinned cluster tools (recipes: scripts/tools.conf, docs/tools.md). Each is downloaded where the internet
# works, else built from its pinned Go module source; cached in SHOP_CACHE (default ~/.cache/shop-lab), so a
# second run, or a fresh clone, takes seconds. ./bin/<tool> links to the cache.
#
# Tools whose absence `make tools` reports but survives; what needs them skips, saying why. linkerd: where no
# release can be downloaded, its source build needs github.com/linkerd/linkerd2 from the Go module proxy, and
# this project's CI proxy serves no version of it.
TOOLS_OPTIONAL ?= linkerd

.PHONY: tools

tools: ## pinned kind, kubectl, istioctl, linkerd, kwok(ctl), kube-apiserver/-controller-manager/-scheduler, etcd into ./bin
	@scripts/tools.sh --optional "$(TOOLS_OPTIONAL)" $(TOOLS)
