"""Signing people in and out through Auth0 (OIDC) and checking API bearer tokens."""
