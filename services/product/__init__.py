"""product service: catalog REST API and the gRPC Inventory API (docs/architecture.md)."""
