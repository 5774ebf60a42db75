# `make load`: Locust shoppers against the running shop (make dev, or any HOST=, e.g. a cluster).
HOST ?= http://127.0.0.1:8080
USERS ?= 20
SPAWN_RATE ?= 5
RUN_TIME ?= 30s

.PHONY: load

load: $(STAMP) ## load test HOST (default: make dev) with USERS shoppers for RUN_TIME; prints the summary
	$(VENV)/bin/locust -f loadtest/locustfile.py --headless -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME) \
	  --host $(HOST) --only-summary
