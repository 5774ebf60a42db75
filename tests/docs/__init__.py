"""The guides as tested tasks (offline checks of every shell block, path, link and sample)."""
