"""The catalog: Backstage-format descriptors read from locations, shown in pages and the API."""
