"""Development: SQLite file, debug pages, tasks in-process when no broker is configured."""

from governance.settings.base import *  # noqa: F403
from governance.settings.base import REST_FRAMEWORK

DEBUG = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
