"""One chat-completions request over HTTP, and every way it can go wrong, sorted: an answer;
a fault another try may fix (`RetryableError`: 408, 409, 425, 429, 5xx, a connection that
failed, a timeout, a body that is not a chat completion); a fault no try fixes for this prompt
(`RequestFailed`: e.g. a prompt too long); or one that no retry can fix for any
(`LLMSetupError`: a rejected key, an unknown model). No transport fault (a body cut short, a
broken chunk, a redirect loop) escapes as a traceback.

A server that refuses the schema's `response_format` (an HTTP error naming it) is asked again
with the next form, then with none; the settings remember it, so that happens once per run.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from typing import Any

import requests

from ...core.redaction import redact
from .settings import RESPONSE_FORMATS, ChatSettings, LLMSetupError, safe_url

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
EXCERPT = 200  # characters of a server's error message quoted in ours


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
            self._local.session = session
        return session

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
        """POST the request; every way the transport can fail becomes one of our errors:
        retried when another try may go through, recorded on the document when it will not."""
        timeout = self.settings.timeout
        url = f"{self.settings.base_url}/chat/completions"
        try:
            return self._session().post(url, json=body, headers=headers, timeout=timeout)
        except requests.ConnectTimeout:
            raise RetryableError(f"no connection within {timeout:g} s", unreachable=True) from None
        except requests.Timeout:
            raise RetryableError(f"no answer within {timeout:g} s") from None
        except requests.ConnectionError as err:
            raise RetryableError(
                f"connection failed: {_connection_problem(err)}", unreachable=True
            ) from None
        except requests.exceptions.ChunkedEncodingError:
            raise RetryableError("the answer broke off before its end") from None
        except requests.exceptions.ContentDecodingError:
            raise RequestFailed(
                "the answer's body is not encoded as its Content-Encoding header says"
            ) from None
        except requests.TooManyRedirects:
            raise RequestFailed("the server redirects in a loop") from None
        except requests.RequestException as err:
            raise RequestFailed(f"the request failed: {type(err).__name__}") from None

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
