"""Order service: a cart per user and the idempotent checkout (product, payment, shipping, notification)."""
