"""Roles mirror, access requests, approvals, grants and the audit log (built in later issues)."""
