"""Development: SQLite file, debug pages, tasks in-process when no broker is configured, and a
signing key generated on first use."""

from governance.settings.base import *  # noqa: F403
from governance.settings.base import BASE_DIR, MEDIA_ROOT, REST_FRAMEWORK, VAR_DIR
from governance.settings.env import envlist

DEBUG = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

AUDIT_SIGNING_KEY_FILE = envlist("AUDIT_SIGNING_KEY_FILE", [str(VAR_DIR / "audit-signing.key")])
AUDIT_SIGNING_KEY_AUTOGENERATE = True

# Reports read registered datasets only inside these directories: the project's data/ and the
# splits the demo registers (seed_demo writes them under MEDIA_ROOT/demo-datasets).
REPORTS_DATASET_ROOTS = envlist(
    "REPORTS_DATASET_ROOTS", [str(BASE_DIR / "data"), str(MEDIA_ROOT / "demo-datasets")]
)
