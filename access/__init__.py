"""Access to Auth0 roles: the mirror, requests, approvals, grants, their policy, the audit log."""
