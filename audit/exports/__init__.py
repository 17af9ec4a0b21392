"""Export bundles of the audit log."""

from audit.exports.services import *  # noqa: F403
from audit.exports.services import (  # noqa: F401
    EXPORTED,
    _check_request,
)
