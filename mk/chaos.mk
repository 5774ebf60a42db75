# Chaos runs (chaos/README.md) and the process-level tests on the real database server (FerretDB).
SCENARIO ?=

.PHONY: chaos chaos-test integration-ferretdb

chaos: $(STAMP) ## chaos run: make chaos SCENARIO=<name> (no SCENARIO: list them); HOST=/MESH=/DRY_RUN=1 for the cluster ones
	$(PY) -m chaos.run $(SCENARIO)

chaos-test: $(STAMP) ## kill -9 each service once mid-load on FerretDB: no double charge, lost order or held stock
	$(PY) -m chaos.run kill-each-service --short --out artifacts/chaos/chaos-test

integration-ferretdb: $(STAMP) ## the process-level tests (tests/integration) with every service on FerretDB
	SHOP_TEST_STORE=ferretdb $(VENV)/bin/pytest -q -rs tests/integration $(PYTEST_ARGS)
