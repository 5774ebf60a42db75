"""Istio live checks (a package, so their module names do not clash with tests/cluster/linkerd)."""
