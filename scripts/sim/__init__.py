"""The simulated cluster (make sim-up): the API server's egress proxy and the meshes' webhook servers."""
