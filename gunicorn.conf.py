"""gunicorn's production settings for Warden's web processes (read from the working directory
by default: ``gunicorn governance.wsgi:application``; command-line flags win over them).

- **Worker class ``gthread``, ``WEB_CONCURRENCY`` processes of ``WEB_THREADS`` threads**
  (defaults: one process per CPU this process may run on, at least 2, and 4 threads).
  Warden's requests spend much of their time waiting on PostgreSQL round trips, during which
  a thread releases the GIL, so a few threads per process overlap those waits; separate
  processes use the cores. Unlike sync workers, gthread keeps client connections alive
  between requests, so a proxy or a CI client's keep-alive connection is not torn down and
  reopened for each answer. Set ``WEB_CONCURRENCY`` explicitly in containers: the CPU count
  there is the host's.
- **Database connections follow**: prod settings keep one PostgreSQL connection per thread
  (``DATABASE_CONN_MAX_AGE``), so each web container holds workers x threads connections
  (8 with the compose file's defaults); with the Celery processes this must stay below the
  server's ``max_connections``.
- **A thread switch every 0.5 ms** (``WEB_SWITCH_INTERVAL``, seconds; Python's default is
  5 ms), set in each worker after the fork: a thread whose database answer has arrived gets
  the GIL back sooner from a thread busy in Python. It matters most to a gate check holding
  the audit log's head row, which every other check waits for: on the gate benchmark this
  machine gave 206 recorded checks/s with p99 141 ms against 167/s and 196 ms at 5 ms.
- **``keepalive`` 75 s**: longer than the idle timeout of the proxies usually put in front
  (60 s for nginx's upstream keep-alive and AWS load balancers), so the proxy, not gunicorn,
  closes an idle connection and never sends a request on one gunicorn is closing. An idle
  connection costs gthread a file descriptor in its poller, not a thread.
- **``timeout`` 30 s**: a worker silent for longer is killed and replaced; gthread's main
  loop keeps reporting while its threads serve, so this catches a stuck process, not a slow
  request. **``graceful_timeout`` 25 s**: on SIGTERM (a deployment) requests in flight have
  this long to finish, each audit append committing or rolling back whole; below the 30 s
  ``stop_grace_period`` docker-compose.yml gives the web service.
- **``max_requests`` 10000 (``WEB_MAX_REQUESTS``; 0 turns recycling off) with
  ``max_requests_jitter`` 1000**: each worker is replaced after
  10,000 to 11,000 requests, which bounds the memory a long-lived process could accumulate;
  the jitter keeps the workers from restarting together. Not lower: a new worker imports
  Django and Warden again (a second or more of CPU) and opens its database connections anew,
  a cost the gate's callers would pay every few seconds at a few hundred requests a second.
- **``bind``** from ``WARDEN_BIND`` (comma-separated addresses), else ``0.0.0.0:$PORT``
  (``PORT`` defaulting to 8000): the container's published port.
- **Logs on the container's streams**: the access log on stdout, gunicorn's own log on stderr
  (where Django's logging also goes), at ``WARDEN_LOG_LEVEL``; nothing written to files.
- **Heartbeat files in ``/dev/shm``** where it exists: on a container's overlay file system
  the per-request heartbeat can stall a worker. **No control socket**: the orchestrator, not
  ``gunicornc``, manages the processes, and several servers on one host must not share
  ``$HOME/.gunicorn/gunicorn.ctl``.
"""

import os


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


wsgi_app = "governance.wsgi:application"
worker_class = "gthread"
workers = _env_int("WEB_CONCURRENCY", max(2, _cpus()))
threads = _env_int("WEB_THREADS", 4)
keepalive = 75
timeout = 30
graceful_timeout = 25
max_requests = _env_int("WEB_MAX_REQUESTS", 10000)
max_requests_jitter = 1000
_addresses = os.environ.get("WARDEN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
bind = [address.strip() for address in _addresses.split(",") if address.strip()]
accesslog = "-"
errorlog = "-"
loglevel = (os.environ.get("WARDEN_LOG_LEVEL") or "info").lower()
# gunicorn creates its heartbeat files with mkstemp there, as in any temporary directory.
_SHARED_MEMORY = "/dev/shm"  # noqa: S108
if os.path.isdir(_SHARED_MEMORY):
    worker_tmp_dir = _SHARED_MEMORY
control_socket_disable = True


def post_fork(server: object, worker: object) -> None:
    """In each worker: hand the GIL over sooner (see the module's docstring)."""
    import sys

    sys.setswitchinterval(float(os.environ.get("WEB_SWITCH_INTERVAL", "0.0005")))
