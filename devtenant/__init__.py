"""A local Auth0 tenant emulator for development, demos and tests (built in a later issue)."""
