"""user: the caller's profile and addresses; user listing for admins."""
