"""The scopes of Atrium's API (SPEC's "URLs"), shared by the API and the devtenant's demo."""

API_SCOPES = (
    "read:catalog",
    "write:catalog",
    "read:access",
    "request:access",
    "approve:access",
    "read:audit",
    "admin:access",
)
