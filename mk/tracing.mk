# Tracing (docs/istio/observability.md, docs/linkerd/observability.md): `make dev TRACING=jaeger` runs Jaeger
# beside the shop; `make trace-test` proves a checkout is one trace there. It starts its own Jaeger, FerretDB
# and eight services on free ports (beside a running `make dev` or another test run), so PyMongo's spans are
# real MongoDB wire-protocol operations.

.PHONY: trace-test

trace-test: $(STAMP) ## one checkout = one trace in Jaeger across the services and MongoDB (prints the span tree)
	@scripts/tools.sh jaeger ferretdb
	SHOP_TRACE_TEST=1 $(VENV)/bin/pytest -q -s -rs tests/tracing $(PYTEST_ARGS)
