"""auth: registration, login with throttling, refresh-token rotation, RS256 access tokens and JWKS."""
