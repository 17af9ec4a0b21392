"""Fixtures of the workspace pages: the seeded environments and policies, a second validator
and CI reporting deployments (shared with the approval tests)."""

from tests.approvals.conftest import ci, seeded_defaults, vera  # noqa: F401 - fixtures
