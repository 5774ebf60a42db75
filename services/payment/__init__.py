"""Payment service: idempotent charges through a simulated card processor or an external provider."""
