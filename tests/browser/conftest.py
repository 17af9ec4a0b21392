"""The browser tests use the sign-off fixtures: the seeded environments and policies (put
back after a transactional test's flush), alice's high-risk model and its version, and CI."""

from tests.approvals.conftest import ci, model, seeded_defaults, version  # noqa: F401
