# `make mutation`: mutation testing (mutmut) of the money, stock, token and card modules, each against the
# tests that cover it; a per-module score table, every survivor classified in tests/mutation/survivors.yaml
# (docs/mutation.md). Slow (tens of minutes on 2 cores), so not in `make test`; `make test` runs the smoke.
.PHONY: mutation mutation-smoke

mutation: $(STAMP) ## mutation testing of the money, stock, token and card modules (slow; MODULE=path for one, FUNCTION='f Class.m' for some of its functions, RETEST=1 for the survivors of earlier runs)
	$(PY) -m scripts.mutation $(if $(MODULE),--module $(MODULE)) $(foreach f,$(FUNCTION),--function $(f)) $(if $(RETEST),--retest)

mutation-smoke: $(STAMP) ## make mutation on one small module (make test runs it)
	$(PY) -m scripts.mutation --smoke
