"""A local Auth0 tenant (sign-in, tokens, Management API) for development, demos and tests."""
