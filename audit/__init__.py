"""The append-only, hash-chained audit log (AUDIT_SPEC.md). Imports no other Warden app."""
