"""warden-gate: the deployment gate's client for CI pipelines (standard library only)."""
