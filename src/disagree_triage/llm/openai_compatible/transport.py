"""One chat-completions request over HTTP, and every way it can go wrong, sorted: an answer;
a fault another try may fix (`RetryableError`: 408, 409, 425, 429, 5xx, a connection that
failed, a timeout, a body that is not a chat completion); a fault no try fixes for this prompt
(`RequestFailed`: e.g. a prompt too long); or one that no retry can fix for any
(`LLMSetupError`: a rejected key, an unknown model). No transport fault (a body cut short, a
broken chunk, a redirect loop) escapes as a traceback. A redirect is followed only where it
keeps the request and its credentials on the configured origin (`send`); one to another server
stops the run. A request ends at its `timeout` however slowly the server sends (`Deadline`), and
at most `max_response_bytes` of an answer are read (`read_body`).

A server that refuses the schema's `response_format` (an HTTP error naming it) is asked again
with the next form, then with none; the settings remember it, so that happens once per run.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from ...core.redaction import redact
from .settings import RESPONSE_FORMATS, ChatSettings, LLMSetupError, safe_url

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
EXCERPT = 200  # characters of a server's error message quoted in ours
MAX_REDIRECTS = 5  # same-origin redirects followed in a row; more is taken for a loop
ERROR_BODY_BYTES = 64_000  # of an error answer: its message is quoted in EXCERPT characters
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RetryableError(Exception):
    def __init__(
        self, reason: str, retry_after: float | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable  # no connection at all, as opposed to a busy server


class RequestFailed(Exception):
    """A request that fails the same way whatever we do (e.g. prompt too long): not retried."""


class ChatTransport:
    """Requests for one backend: a session per thread, its settings' key and headers."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()

    def request(self, prompt: str) -> tuple[str, Any]:
        """The answer to `prompt` (secrets removed) and the server's `usage`."""
        settings = self.settings
        headers = {"Content-Type": "application/json", **settings.auth_headers()}
        form = settings.schema_form(prompt)
        response = self._post(settings.request_body(prompt), headers)
        status = response.status_code
        # A refusal names the field: vLLM and OpenAI answer 400, FastAPI servers 422, and
        # llama-cpp-python's server a 500 that quotes its validation error.
        if form is not None and status in (400, 422, 500) and _names_the_format(response):
            self._refused(form, f"HTTP {status}: {error_message(response)}")
            return self.request(prompt)
        if form is not None and status < 400:
            settings.stats.add(constrained=1)
        _raise_for_status(settings, response)
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise RetryableError("the server's answer is not a chat completion") from None
        if not isinstance(content, str):
            raise RetryableError("the server's answer has no text content")
        # A proxy may echo the key into the answer: never store it.
        return redact(content), data.get("usage")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = _DeadlineAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
        """POST the request and read its answer within `timeout`, at most max_response_bytes
        of it; every way the transport can fail becomes one of our errors: retried when
        another try may go through, recorded on the document when it will not."""
        settings = self.settings
        url = f"{settings.base_url}/chat/completions"
        deadline = Deadline(settings.timeout)
        try:
            with deadline:
                response = send(
                    self._session(),
                    "POST",
                    url,
                    json=body,
                    headers=headers,
                    timeout=settings.timeout,
                    stream=True,
                )
                error = response.status_code >= 400
                limit = settings.max_response_bytes
                # Of an error, only the message is read: a long one is cut, not a failure.
                read_body(response, min(ERROR_BODY_BYTES, limit) if error else limit, cut=error)
        except RedirectRefused as err:
            raise LLMSetupError(f"{safe_url(url)} {err}") from None
        except BodyTooLarge:
            raise RequestFailed(
                f"the answer is over {settings.max_response_bytes:,} bytes (max_response_bytes); "
                "the rest was not read"
            ) from None
        except requests.RequestException as err:
            raise _transport_error(err, settings.timeout, expired=deadline.expired) from None
        if deadline.expired:  # a body without a length ends early when its socket is shut
            raise RetryableError(f"no complete answer within {settings.timeout:g} s")
        return response

    def _refused(self, form: str, reason: str) -> None:
        """The server refused `form`: every later request sends the next form, or none. Other
        threads may see the same refusal; only the first moves the setting on."""
        settings = self.settings
        with self._lock:
            if settings.structured_output != form:
                return
            position = RESPONSE_FORMATS.index(form)
            following = RESPONSE_FORMATS[position + 1 :]
            settings.structured_output = following[0] if following else None
            then = f"sent {following[0]} instead" if following else "answers are unconstrained"
            refused = f"{form} refused ({reason}); {then}"
            stats = settings.stats
            stats.structured_refused = (
                f"{stats.structured_refused}; {refused}" if stats.structured_refused else refused
            )


def _raise_for_status(settings: ChatSettings, response: requests.Response) -> None:
    """The error an HTTP status other than success means, raised."""
    status = response.status_code
    if status in (401, 403):
        source = f" from {settings.api_key_env}" if settings.api_key_env else ""
        raise LLMSetupError(
            f"{safe_url(settings.base_url)} rejected the API key{source} "
            f"(HTTP {status}: {error_message(response)})"
        )
    if status == 404 or (status == 400 and "model" in error_message(response).lower()):
        raise LLMSetupError(
            f"{safe_url(settings.base_url)} does not serve the model {settings.model!r} "
            f"(HTTP {status}: {error_message(response)})"
        )
    if status in RETRY_STATUS:
        raise RetryableError(
            f"HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 400:
        raise RequestFailed(f"HTTP {status}: {error_message(response)}")


def _transport_error(err: requests.RequestException, timeout: float, *, expired: bool) -> Exception:
    """Our error for a failure of the transport (`expired`: the Deadline shut the socket)."""
    if isinstance(err, requests.ConnectTimeout):
        return RetryableError(f"no connection within {timeout:g} s", unreachable=True)
    if expired or isinstance(err, requests.Timeout):
        return RetryableError(f"no complete answer within {timeout:g} s")
    if isinstance(err, requests.ConnectionError):
        return RetryableError(f"connection failed: {_connection_problem(err)}", unreachable=True)
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return RetryableError("the answer broke off before its end")
    if isinstance(err, requests.exceptions.ContentDecodingError):
        return RequestFailed("the answer's body is not encoded as its Content-Encoding header says")
    if isinstance(err, requests.TooManyRedirects):
        return RequestFailed("the server redirects in a loop")
    return RequestFailed(f"the request failed: {type(err).__name__}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds (`inf` included: the
    caller caps it) or an HTTP date; None when it is neither, or NaN."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _connection_problem(err: requests.ConnectionError) -> str:
    """What went wrong, in a few words: requests wraps the cause in layers of urllib3 errors
    whose text is long (and names the host, which the message already does)."""
    text = str(err)
    for marker, problem in _CONNECTION_PROBLEMS:
        if marker in text:
            return problem
    return type(err).__name__


_CONNECTION_PROBLEMS = (
    ("refused", "connection refused"),
    ("RemoteDisconnected", "closed without an answer"),
    ("reset by peer", "connection reset"),
    ("Name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("getaddrinfo failed", "host name not found"),
    ("SSL", "TLS handshake failed"),
    ("ProxyError", "the proxy failed"),
)


def _names_the_format(response: requests.Response) -> bool:
    """Whether an error answer is about response_format (the server does not take it), as
    opposed to a bad model name or a prompt too long."""
    message = error_message(response).lower()
    return any(word in message for word in ("response_format", "json_schema", "json_object"))


def error_message(response: requests.Response) -> str:
    """The server's error message, secrets removed before it is cut to EXCERPT characters (a
    cut first could leave a piece of a key too short to recognise)."""
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        text = str(message)
    except (ValueError, RecursionError):
        text = response.text.strip() or response.reason or ""
    # Redacting the first 10,000 characters is enough for a 200-character excerpt, and keeps a
    # megabyte of HTML error page cheap.
    return redact(text[: 50 * EXCERPT])[:EXCERPT]


# --- HTTP with the origin kept and a deadline -----------------------------------------


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `url`, the default port made explicit; None for a URL whose
    port is not a number."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


class RedirectRefused(Exception):
    """A redirect that is not followed; the message says where it led and what to do."""


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """`session.request`, following only the redirects that keep the request as it was sent:
    to the same origin (scheme, host, port), with the same method. requests follows any
    redirect and strips only `Authorization` when the host changes, so a key in
    `api_key_header` or `headers` went along to whatever server a redirect named; and no
    redirect to another server is followed here at all, since the documents travel too. A
    301/302/303 of a POST would become a GET, which no chat endpoint answers: refused, with
    the address to put in base_url instead."""
    for _ in range(MAX_REDIRECTS + 1):
        response = session.request(method, url, allow_redirects=False, **kwargs)
        location = session.get_redirect_target(response)
        if location is None:
            return response
        status = response.status_code
        response.close()
        target = requote_uri(urljoin(url, location))
        if origin(target) is None or origin(target) != origin(url):
            raise RedirectRefused(
                f"redirects (HTTP {status}) to another server, {redact(safe_url(target))}; "
                "neither the API key nor the documents are sent there: if it is the right "
                "server, set base_url to its address"
            )
        if status in (301, 302, 303) and method not in ("GET", "HEAD"):
            raise RedirectRefused(
                f"redirects (HTTP {status}) to {redact(safe_url(target))}, which would turn "
                f"the {method} into a GET: set base_url to the address it moved to"
            )
        url = target
    raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


class BodyTooLarge(Exception):
    """An answer's body is longer than the limit; the rest of it is not read."""


def read_body(response: requests.Response, limit: int, *, cut: bool = False) -> None:
    """Read the (decoded) body of a `stream=True` response into `response.content`, at most
    `limit` bytes: past them BodyTooLarge, or with `cut` the first `limit` bytes."""
    declared = response.headers.get("Content-Length", "")
    if not cut and declared.isdigit() and int(declared) > limit:
        response.close()
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            response.close()  # the connection goes with the rest of the body
            if not cut:
                raise BodyTooLarge(limit)
            break
    # requests' own store of a read body: .content, .text and .json() answer from it.
    response._content = b"".join(chunks)[:limit]


_current = threading.local()  # the Deadline of the request this thread is sending


class Deadline:
    """Ends a request `seconds` after it began, however slowly the server answers. requests'
    timeout bounds each read of the socket, so a server sending a byte every half second was
    never timed out; at the deadline a timer shuts the connection's socket down, which ends
    the read in progress (an error, or an early end of a body without a length) and any later
    one. `expired` says whether it did."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self._over = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._over = True  # a timer that fires now must not shut a pooled connection
        _current.deadline = None

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._over:
                return
            self.expired = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection: HTTPConnection) -> None:
    if connection.sock is not None:
        # socket.socket's own shutdown, below TLS: an SSLSocket's would drop its state under
        # the thread that is reading.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)


def _watch(connection: HTTPConnection) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection the request's Deadline can shut: made known to it when it connects (a
    new one) and when it sends (one kept alive from an earlier request)."""

    def connect(self) -> None:
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections a Deadline can shut (direct, or through an HTTP
    proxy; a SOCKS proxy's pools are its own, and keep requests' per-read timeout only)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager
