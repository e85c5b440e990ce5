"""Catalog of services, APIs, resources and the teams that own them (built in a later issue)."""
