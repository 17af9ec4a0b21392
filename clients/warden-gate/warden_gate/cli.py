"""warden-gate: ask Warden whether an artifact may be deployed, for CI pipelines.

    WARDEN_API_KEY=wdn_... warden-gate check --url https://warden.example.org \\
        --model credit-score --version 7 --environment prod --digest sha256:<64 hex> \\
        [--wait SECONDS] [--json]

Exit status: 0 allowed, 1 denied (the reasons are printed one per line), 2 configuration or
authentication error (missing key, malformed arguments, 400, 401, 403, 404, certificate
rejected), 3 Warden unreachable (connection refused, DNS failure, timeout, 429 or 5xx after
retries). HTTP errors never mean "denied": only a 200 answer with ``allowed: false`` does.

Standard library only and runs on Python 3.9+, so this file also works copied on its own
(``python3 cli.py check ...``). The key comes from the environment, never from the command
line, where it would show in process listings and CI logs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__version__ = "0.1.0"

EXIT_ALLOWED = 0
EXIT_DENIED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3

KEY_VARIABLE = "WARDEN_API_KEY"
GATE_PATH = "/api/v1/gate"
# The same question, answered without recording it: what --wait polls.
STATUS_PATH = "/api/v1/gate/status"
USER_AGENT = (
    f"warden-gate/{__version__} (Python {platform.python_version()}; urllib; "
    f"{platform.system() or 'unknown'})"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
MODEL_NAME = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*\Z")
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

# Transient failures of one check are retried (--retries, default 3) after pauses doubling
# from FIRST_RETRY seconds before giving up with exit 3; a longer Retry-After header is
# honoured up to MAX_PAUSE.
RETRIES = 3
FIRST_RETRY = 1.0
MAX_PAUSE = 60.0
# --wait polls the unrecorded status again after FIRST_POLL seconds, growing by POLL_GROWTH up
# to MAX_POLL, so a long wait does not hammer Warden; only the final check is recorded.
FIRST_POLL = 5.0
POLL_GROWTH = 1.5
MAX_POLL = 30.0
# Denials that waiting cannot change: the registered digest is immutable and retirement is
# final, so --wait stops at once instead of burning the pipeline's time.
FINAL_REASONS = frozenset({"digest_mismatch", "retired"})

# What each reason code means, for people reading a CI log (Warden answers with the codes).
MESSAGES: dict[str, str] = {
    "not_requested": "no deployment request for this version and environment",
    "pending_step": "sign-off pending at step {arg!r}",
    "rejected": "the deployment request was rejected",
    "expired": "the approval has expired; a new deployment request is needed",
    "revoked": "the approval was revoked",
    "digest_mismatch": "the artifact's digest is not the registered version's digest",
    "previous_environment_missing": "not deployed to the previous environment yet",
    "retired": "the model or this version is retired",
    "waiting_until": "approved; the policy's wait period runs until {arg}",
    "evidence_missing": "required evidence is missing: no {arg} report",
    "evidence_failed": "the {arg} report does not pass the policy's thresholds",
    "evidence_stale": "the {arg} report is older than the policy allows",
    "open_finding": "open high-severity finding {arg} blocks deployment",
}


class GateError(Exception):
    """The question could not be answered: ``exit_code`` is 2 (configuration or
    authentication) or 3 (unreachable)."""

    def __init__(
        self, message: str, exit_code: int, *, http_status: int | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.http_status = http_status
        self.code = code

    def as_data(self) -> dict[str, Any]:
        return {
            "error": {
                "exit_code": self.exit_code,
                "message": self.message,
                "http_status": self.http_status,
                "code": self.code or None,
            }
        }


@dataclass(frozen=True)
class Question:
    """One gate question, validated before anything is sent."""

    url: str
    model: str
    version: int
    environment: str
    digest: str
    key: str
    timeout: float
    retries: int = RETRIES
    pipeline_run: str = ""
    commit: str = ""
    ca_file: str | None = None

    def query_url(self, *, recorded: bool = True) -> str:
        """The recorded gate check, or (``recorded=False``) the unrecorded status."""
        params = {
            "model": self.model,
            "version": str(self.version),
            "environment": self.environment,
            "digest": self.digest,
        }
        if not recorded:
            return self.url + STATUS_PATH + "?" + urllib.parse.urlencode(params)
        if self.pipeline_run:
            params["pipeline_run"] = self.pipeline_run
        if self.commit:
            params["commit"] = self.commit
        return self.url + GATE_PATH + "?" + urllib.parse.urlencode(params)


@dataclass(frozen=True)
class Verdict:
    """Warden's answer (HTTP 200): the body as received."""

    answer: dict[str, Any]

    @property
    def allowed(self) -> bool:
        return self.answer.get("allowed") is True

    @property
    def reasons(self) -> list[str]:
        return [str(r) for r in self.answer.get("reasons") or []]


def describe(reason: str) -> str:
    """A reason code and what it means, for one line of output."""
    name, _, arg = reason.partition(":")
    template = MESSAGES.get(name)
    if template is None:
        return reason
    return f"{reason}: {template.format(arg=arg)}"


def _base_url(raw: str) -> str:
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GateError(
            f"--url must be an http(s) URL such as https://warden.example.org, not {raw!r}",
            EXIT_CONFIG,
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise GateError("--url must not carry a query, fragment or credentials", EXIT_CONFIG)
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise GateError(f"--url has a bad port: {exc}", EXIT_CONFIG) from None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _key(environ: dict[str, str]) -> str:
    key = environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise GateError(
            f"{KEY_VARIABLE} is not set: export the API key (scope gate:read) from a CI secret",
            EXIT_CONFIG,
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise GateError(f"{KEY_VARIABLE} contains whitespace or control characters", EXIT_CONFIG)
    return key


def _ci_defaults(environ: dict[str, str]) -> tuple[str, str]:
    """The pipeline run URL and commit of GitHub Actions or GitLab CI, when running there."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        run = f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
        return run, environ.get("GITHUB_SHA", "")
    if environ.get("CI_PIPELINE_URL"):
        return environ["CI_PIPELINE_URL"], environ.get("CI_COMMIT_SHA", "")
    return "", ""


def build_question(args: argparse.Namespace, environ: dict[str, str]) -> Question:
    """Check every argument locally: a malformed question is exit 2 without a request."""
    url = _base_url(args.url)
    if not MODEL_NAME.match(args.model) or len(args.model) > 100:
        raise GateError(f"--model {args.model!r} is not a model name (a slug)", EXIT_CONFIG)
    if args.version < 1:
        raise GateError("--version must be a whole number >= 1", EXIT_CONFIG)
    environment = args.environment.strip()
    if not environment or len(environment) > 50:
        raise GateError("--environment must be 1 to 50 characters", EXIT_CONFIG)
    digest = args.digest.strip()
    if not DIGEST.match(digest):
        raise GateError(
            f"--digest must be 'sha256:' followed by 64 lowercase hex digits, not {digest!r} "
            "(for example: \"sha256:$(sha256sum model.tar.gz | cut -d' ' -f1)\")",
            EXIT_CONFIG,
        )
    if args.wait < 0 or args.timeout <= 0 or not 0 <= args.retries <= 10:
        raise GateError(
            "--wait must be >= 0, --timeout > 0 and --retries from 0 to 10", EXIT_CONFIG
        )
    if args.ca_file and not os.path.isfile(args.ca_file):
        raise GateError(f"--ca-file {args.ca_file!r} does not exist", EXIT_CONFIG)
    run, commit = _ci_defaults(environ)
    return Question(
        url=url,
        model=args.model,
        version=args.version,
        environment=environment,
        digest=digest,
        key=_key(environ),
        timeout=args.timeout,
        retries=args.retries,
        pipeline_run=args.pipeline_run if args.pipeline_run is not None else run,
        commit=args.commit if args.commit is not None else commit,
        ca_file=args.ca_file,
    )


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")
    return str(data)[:200]


def _error_code(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8"))
        return str(data["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Following a redirect could send the key elsewhere (or turn https into http); a gate
    # behind a redirect is a misconfigured --url.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(question: Question) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(cafile=question.ca_file)
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())


def ask_once(
    question: Question, opener: urllib.request.OpenerDirector, *, recorded: bool = True
) -> dict[str, Any]:
    """One GET of the gate (or of its unrecorded status): the 200 answer, or ``GateError``.
    ``retry_after`` on a transient error (exit 3) says how long the server asked us to wait,
    when it did."""
    request = urllib.request.Request(  # noqa: S310 - _base_url allows http(s) only
        question.query_url(recorded=recorded),
        headers={
            "Authorization": f"Bearer {question.key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
        method="GET",
    )
    try:
        with opener.open(request, timeout=question.timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body = exc.read() if exc.fp is not None else b""
        raise _http_error(exc.code, body, exc.headers.get("Retry-After")) from None
    except ssl.SSLCertVerificationError as exc:
        raise GateError(
            f"the server's TLS certificate was rejected ({exc.verify_message}); "
            "give the CA with --ca-file or SSL_CERT_FILE",
            EXIT_CONFIG,
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise GateError(
                f"the server's TLS certificate was rejected ({reason.verify_message}); "
                "give the CA with --ca-file or SSL_CERT_FILE",
                EXIT_CONFIG,
            ) from None
        if isinstance(reason, socket.gaierror):
            raise GateError(
                f"cannot resolve the host of {question.url}: {reason}", EXIT_UNREACHABLE
            ) from None
        raise GateError(f"cannot reach {question.url}: {reason}", EXIT_UNREACHABLE) from None
    except (socket.timeout, TimeoutError):
        raise GateError(
            f"no answer from {question.url} within {question.timeout:g} s", EXIT_UNREACHABLE
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise GateError(f"connection to {question.url} failed: {exc!r}", EXIT_UNREACHABLE) from None
    if status != 200:
        raise _http_error(status, body, None)
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("allowed"), bool):
        raise GateError(
            f"{question.url} answered 200 without a gate answer: is --url Warden?",
            EXIT_UNREACHABLE,
            http_status=200,
        )
    return answer


class _Transient(GateError):
    def __init__(self, message: str, *, http_status: int, retry_after: float | None) -> None:
        super().__init__(message, EXIT_UNREACHABLE, http_status=http_status)
        self.retry_after = retry_after


def _http_error(status: int, body: bytes, retry_after: str | None) -> GateError:
    message = _error_message(body)
    code = _error_code(body)
    if status == 401:
        text = f"401 not authenticated: {message or 'missing or bad key'} (check {KEY_VARIABLE})"
    elif status == 403:
        text = f"403 forbidden: {message or 'the key lacks the scope gate:read'}"
    elif status == 404:
        text = f"404 not found: {message or 'unknown model or version'}"
    elif status == 400:
        text = f"400 bad request: {message}"
    elif status == 429 or status >= 500:
        return _Transient(
            f"{status} from Warden: {message or 'try again later'}",
            http_status=status,
            retry_after=_retry_after(retry_after),
        )
    else:
        text = f"unexpected HTTP {status}: {message}"
    return GateError(text, EXIT_CONFIG, http_status=status, code=code)


def ask(
    question: Question,
    *,
    opener: urllib.request.OpenerDirector,
    sleep: Callable[[float], None],
    log: Callable[[str], None],
    deadline: float | None = None,
    recorded: bool = True,
) -> dict[str, Any]:
    """Ask, retrying transient failures (unreachable, 429, 5xx) ``question.retries`` times;
    configuration and authentication errors are raised at once."""
    attempt = 0
    while True:
        try:
            return ask_once(question, opener, recorded=recorded)
        except GateError as exc:
            if exc.exit_code != EXIT_UNREACHABLE or attempt >= question.retries:
                raise
            pause = FIRST_RETRY * 2**attempt
            hinted = getattr(exc, "retry_after", None)
            if hinted is not None:
                pause = min(max(hinted, pause), MAX_PAUSE)
            if deadline is not None and time.monotonic() + pause > deadline:
                raise
            log(f"warden-gate: {exc.message}; retrying in {pause:g} s")
            sleep(pause)
            attempt += 1


def _waiting_until(reasons: Sequence[str]) -> dt.datetime | None:
    for reason in reasons:
        name, _, stamp = reason.partition(":")
        if name == "waiting_until":
            try:
                return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=dt.timezone.utc
                )
            except ValueError:
                return None
    return None


def next_poll(reasons: Sequence[str], previous: float) -> float:
    """Seconds until the next check while waiting: when the only thing left is the policy's
    wait period, just after it ends; otherwise the growing backoff."""
    until = _waiting_until(reasons)
    if until is not None and len(reasons) == 1:
        remaining = (until - dt.datetime.now(dt.timezone.utc)).total_seconds()
        return max(1.0, remaining + 1.0)
    return min(MAX_POLL, previous * POLL_GROWTH) if previous else FIRST_POLL


def check(
    question: Question,
    *,
    wait: float,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """The gate's recorded verdict. With ``wait`` > 0, first poll the unrecorded status until
    it allows, a denial that waiting cannot change, or the time is up; then ask the gate once,
    recorded, and return that answer (the one a deployment report cites). Raises
    ``GateError`` when there is none."""
    opener = _opener(question)
    if wait > 0:
        _wait_for_status(question, wait=wait, opener=opener, log=log, sleep=sleep)
    return Verdict(answer=ask(question, opener=opener, sleep=sleep, log=log))


def _wait_for_status(
    question: Question,
    *,
    wait: float,
    opener: urllib.request.OpenerDirector,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> None:
    """Poll the unrecorded status until it allows, denies for a reason waiting cannot change,
    or ``wait`` seconds have passed; keep trying through an outage until then."""
    deadline = time.monotonic() + wait
    interval = 0.0
    last: Verdict | None = None
    while True:
        try:
            answer = ask(
                question, opener=opener, sleep=sleep, log=log, deadline=deadline, recorded=False
            )
        except GateError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:
                raise
            log(f"warden-gate: {exc.message}")
        else:
            last = Verdict(answer=answer)
            if last.allowed or FINAL_REASONS.intersection(last.reasons):
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log("warden-gate: the wait is over; asking the gate for the recorded answer")
            return
        interval = next_poll(last.reasons if last else [], interval)
        pause = min(interval, remaining)
        if last is not None:
            log(
                f"warden-gate: denied ({', '.join(last.reasons)}); asking again in "
                f"{pause:.0f} s ({remaining:.0f} s left)"
            )
        sleep(pause)


def render(question: Question, verdict: Verdict) -> list[str]:
    """The verdict for people: a headline, then one line per reason."""
    answer = verdict.answer
    subject = f"{question.model} v{question.version} to {question.environment}"
    where = f"check {answer.get('check_id')}, audit seq {answer.get('audit_seq')}"
    if verdict.allowed:
        return [f"ALLOWED: {subject} ({where})"]
    lines = [f"DENIED: {subject}, status {answer.get('status')} ({where})"]
    lines.extend(f"  {describe(reason)}" for reason in verdict.reasons)
    if not verdict.reasons:
        lines.append("  (Warden gave no reason)")
    return lines


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="warden-gate",
        description="Ask Warden's deployment gate whether an artifact may be deployed.",
        epilog=f"The API key is read from ${KEY_VARIABLE}. Exit: 0 allowed, 1 denied, "
        "2 configuration or authentication error, 3 Warden unreachable.",
    )
    top.add_argument("-V", "--client-version", action="version", version=USER_AGENT)
    commands = top.add_subparsers(dest="command", metavar="check")
    commands.required = True
    sub = commands.add_parser("check", help="ask the gate (see warden-gate check --help)")
    sub.add_argument("--url", required=True, help="Warden's base URL, e.g. https://warden.org")
    sub.add_argument("--model", required=True, help="registered model name")
    sub.add_argument("--version", required=True, type=int, help="model version number")
    sub.add_argument("--environment", required=True, help="target environment, e.g. prod")
    sub.add_argument("--digest", required=True, help="artifact digest sha256:<64 hex>")
    sub.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="poll the unrecorded status until allowed or SECONDS have passed, then make the "
        "one recorded check (default: ask once)",
    )
    sub.add_argument("--json", action="store_true", help="print Warden's answer as JSON")
    sub.add_argument(
        "--timeout", type=float, default=15.0, metavar="SECONDS", help="per request (15)"
    )
    sub.add_argument(
        "--retries",
        type=int,
        default=RETRIES,
        help=f"retries of a check after a network error, 429 or 5xx ({RETRIES})",
    )
    sub.add_argument("--ca-file", default=None, help="CA bundle to verify Warden's TLS")
    sub.add_argument(
        "--pipeline-run",
        default=None,
        help="run URL recorded with the check (default: from GitHub Actions / GitLab CI)",
    )
    sub.add_argument("--commit", default=None, help="commit recorded with the check")
    return top


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        question = build_question(args, env)
        if question.url.startswith("http://") and (
            urllib.parse.urlsplit(question.url).hostname not in LOOPBACK
        ):
            log("warden-gate: warning: plain http sends the API key unencrypted; use https")
        verdict = check(question, wait=args.wait, log=log)
    except GateError as exc:
        log(f"warden-gate: error: {exc.message}")
        if args.json:
            print(json.dumps(exc.as_data(), indent=2, sort_keys=True))
        return exc.exit_code
    except KeyboardInterrupt:
        log("warden-gate: interrupted")
        return 130
    out = sys.stderr if args.json else sys.stdout
    for line in render(question, verdict):
        print(line, file=out)
    if args.json:
        print(json.dumps(verdict.answer, indent=2, sort_keys=True))
    return EXIT_ALLOWED if verdict.allowed else EXIT_DENIED


if __name__ == "__main__":
    sys.exit(main())
