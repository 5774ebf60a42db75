"""The make targets that need no cluster, and why.

The dry-run tests (tests/k8s/test_scripts_dry_run.py) check that every other documented target stops without
one; the simulated-cluster suite (tests/sim/guides.py) does not run these guide commands against its cluster
(make test runs them, or they are benchmarks)."""

NO_CLUSTER_NEEDED = {
    "up": "creates the cluster",
    "down": "deletes it if there is one",
    "images": "docker build only",
    "image-test": "builds the images and runs them with Docker on this machine",
    "tools": "downloads or builds the CLIs",
    "load": "load test against any HOST (make dev by default)",
    "crds": "downloads schemas",
    "validate": "renders manifests offline",
    "bench": "benchmarks the shop as local processes",
    "bench-smoke": "benchmarks the shop as local processes",
    "bench-profile": "profiles the shop as local processes",
    "mutation": "mutation testing of the shop's code",
    "mutation-smoke": "mutation testing of the shop's code",
    "trace-test": "traces the shop as local processes (make dev TRACING=jaeger)",
    "chaos": "local scenarios run the shop as local processes; cluster ones take HOST=/MESH=",
    "chaos-test": "kills the shop's local processes on FerretDB",
    "integration-ferretdb": "runs the shop as local processes on FerretDB",
    "sim-up": "creates the simulated cluster",
    "sim-down": "deletes the simulated cluster if there is one",
    "sim-test": "creates a simulated cluster, tests against it, deletes it",
}
