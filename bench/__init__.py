"""`make bench`: the shop's throughput, latency and CPU per request next to references."""
