"""Chaos runs: Locust shoppers against the shop while a scenario injects faults on a schedule, then an SLO
report from the data (chaos/README.md). `python -m chaos.run` (make chaos) lists and runs the scenarios."""
