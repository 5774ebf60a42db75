"""Notification service: an outbox of customer notifications in MongoDB (no real email is sent)."""
