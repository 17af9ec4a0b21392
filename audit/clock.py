"""The audit log's clock; tests replace ``now`` to step time backwards."""

import datetime as dt


def now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)
