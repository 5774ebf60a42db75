"""Shipping service: quotes by zone and weight, idempotent shipments whose status moves with time."""
