"""`disagree.OpenAICompatible.v1`: any OpenAI-compatible chat-completions server.

Works with OpenAI, and with Ollama, vLLM, llama.cpp's server, LM Studio: whatever serves
`POST {base_url}/chat/completions`. Unlike spacy-llm 0.7.4's OpenAI models it makes no request
when built (they call api.openai.com/v1/models even with another endpoint), sends up to
`max_concurrency` requests at once (they send one at a time), retries 429, 5xx, connection
errors, timeouts and malformed bodies with exponential backoff and jitter honouring Retry-After
(they retry only 429/503, with no Retry-After), and reads `usage`.

Errors that no retry can fix — no API key, a key the server rejects, a model it does not know,
a server that cannot be reached on the first request — raise `LLMSetupError` at once, before
hours of work; so does a server that goes away mid-run (`GONE_AFTER`). Settings that could only
fail later (a base_url that is not http(s), a negative timeout, a key name that is a key) fail
when the pipeline is built. A request that still fails after its retries does not stop the run:
it returns a marked response (see `failures`), and predict records the reason in that
document's task. No transport fault (a body cut short, a broken chunk, a redirect loop) escapes
as a traceback. A redirect is followed only where it keeps the request and its credentials on
the configured origin (`send`); one to another server stops the run.

A prompt that carries a JSON schema (`structured.SchemaPrompt`, from our `disagree.NER.v1` /
`disagree.TextCat.v1` tasks) is sent with `response_format`, so that the server constrains the
answer to it: OpenAI's `json_schema` form (OpenAI, vLLM, Ollama, llama.cpp's server), else, where
`structured_output = "json_object"`, the `{"type": "json_object", "schema": ...}` form that
llama-cpp-python's server reads. A server that refuses the form (an HTTP error naming it) is
asked once more with the next form, then with none; that happens once per run, not per request,
and the end-of-run table says so.

Every secret the model is given is registered with `redaction`, and every message and answer
passes through `redact`, so a server that echoes the key cannot make us print or store it.
"""

import contextlib
import email.utils
import math
import os
import random
import re
import socket
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from spacy_llm.registry import registry
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from ..errors import DisagreeError
from ..redaction import (
    is_env_name,
    is_secret_header,
    looks_like_key,
    redact,
    register_secret,
    url_secrets,
)
from .failures import BackendStats, failed_response
from .response_cache import ResponseCache, cache_key, default_cache_path
from .structured import schema_of

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# The server is taken for gone, and the run stops, when this many documents in a row could not
# connect after all their retries, with no answer in between. One or two may be a restart; each
# further one would cost a full round of backoff (defaults: about 24 s) and come back empty,
# which over 10,000 documents is hours of waiting for an output of errors. Stopping keeps the
# finished records in OUTPUT.partial, and --resume asks again for the failed ones.
GONE_AFTER = 3
EXCERPT = 200  # characters of a server's error message quoted in ours
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# How a schema is sent, from the most to the least widely read; a refusal moves one step on.
RESPONSE_FORMATS = ("json_schema", "json_object")
MAX_REDIRECTS = 5  # same-origin redirects followed in a row; more is taken for a loop
# The most of an answer read (after Content-Encoding): a chat answer is kilobytes, and read
# whole, one 100 MB answer took 2 GB (its bytes, text, parsed JSON and redacted copy).
MAX_RESPONSE_BYTES = 8_000_000
ERROR_BODY_BYTES = 64_000  # of an error answer: its message is quoted in EXCERPT characters
_DEFAULT_PORTS = {"http": 80, "https": 443}


class LLMSetupError(DisagreeError):
    """A backend problem no retry can fix: stop the run with one clear line (secrets removed)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class _RetryableError(Exception):
    def __init__(
        self, reason: str, retry_after: float | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable  # no connection at all, as opposed to a busy server


class _RequestFailed(Exception):
    """A request that fails the same way whatever we do (e.g. prompt too long): not retried."""


def safe_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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


def unsendable(value: str) -> str | None:
    """Why `value` cannot travel in an HTTP header value, or None. requests refuses a line
    break with an error that quotes the whole header (the key with it), and http.client fails
    on a character beyond Latin-1 with a UnicodeEncodeError."""
    if value != value.strip():
        return "a leading or trailing space"
    for position, char in enumerate(value, start=1):
        if char in "\r\n":
            return f"a line break (character {position})"
        if ord(char) < 32 or ord(char) == 127:
            return f"a control character (character {position})"
        if ord(char) > 255:
            return f"a character beyond Latin-1 (character {position})"
    return None


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

    def __enter__(self) -> "Deadline":
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


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        return f"base_url {redact(url)!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"base_url must be an http:// or https:// URL with a host, such as "
            f"https://api.openai.com/v1, not {redact(url)!r}"
        )
    return None


def _api_key_env_problem(name: str | None) -> str | None:
    if name is None or (is_env_name(name) and not looks_like_key(name)):
        return None
    # The value may be the key itself, pasted in the wrong place: never show it.
    return (
        "api_key_env must name the environment variable that holds the key (such as "
        "OPENAI_API_KEY), and this value is not such a name (it is not shown, in case it is the "
        'key): put the key in .env as OPENAI_API_KEY=... and write api_key_env = "OPENAI_API_KEY"'
    )


def _headers_problem(headers: dict[str, str], api_key_header: str) -> str | None:
    for name in (api_key_header, *headers):
        if not _HEADER_NAME.match(name):
            return f"{name!r} is not a valid HTTP header name"
    for name, value in headers.items():
        problem = unsendable(value) if isinstance(value, str) else "a value that is not a string"
        if problem is not None:
            return f"headers[{name!r}] holds {problem}; its value is not shown"
    return None


def _numbers_problem(model: "OpenAICompatibleModel") -> str | None:
    minimums = {
        "max_concurrency": (model.max_concurrency, 1),
        "max_retries": (model.max_retries, 0),
        "timeout": (model.timeout, None),  # above 0
        "backoff_base": (model.backoff_base, 0),
        "backoff_max": (model.backoff_max, 0),
        "retry_after_max": (model.retry_after_max, 0),
        "max_response_bytes": (model.max_response_bytes, 1),
    }
    for name, (value, minimum) in minimums.items():
        if not math.isfinite(value):
            return f"{name} must be a finite number, not {value}"
        if minimum is None and value <= 0:
            return f"{name} must be above 0, not {value:g}"
        if minimum is not None and value < minimum:
            return f"{name} must be >= {minimum}, not {value:g}"
    return None


@dataclass
class OpenAICompatibleModel:
    """Callable spacy-llm model: prompts (per doc, per shard) in, responses out, in order."""

    model: str
    base_url: str
    api_key_env: str | None
    api_key_header: str = "Authorization"
    headers: dict[str, str] = field(default_factory=dict)
    max_concurrency: int = 8
    max_retries: int = 6
    timeout: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    max_response_bytes: int = MAX_RESPONSE_BYTES
    temperature: float = 0.0
    max_tokens: int | None = None
    prompt_price_per_million: float | None = None
    completion_price_per_million: float | None = None
    # The Batch API's prices (OpenAI: half the live ones), for the estimate of `--batch collect`;
    # None: the live prices.
    batch_prompt_price_per_million: float | None = None
    batch_completion_price_per_million: float | None = None
    cache_path: str | None = None
    context_length: int | None = None
    structured_output: str | None = "json_schema"  # or "json_object"; None sends no schema
    stats: BackendStats = field(init=False)
    # Set by `batch` only (never from a config): answers a prompt that is not in the cache
    # instead of a request (key, prompt) -> answer, to record it for a batch job or to serve
    # the job's answer. No request is sent while it is set.
    offline: Callable[[str, str], str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._register_secrets()
        if self.structured_output not in (*RESPONSE_FORMATS, None):
            raise DisagreeError(
                "disagree.OpenAICompatible.v1: structured_output must be json_schema, "
                f"json_object or false, not {self.structured_output!r}"
            )
        problem = (
            _url_problem(self.base_url)
            or _api_key_env_problem(self.api_key_env)
            or _headers_problem(self.headers, self.api_key_header)
            or _numbers_problem(self)
        )
        if problem is not None:
            raise DisagreeError(f"disagree.OpenAICompatible.v1: {redact(problem)}")
        self.base_url = self.base_url.rstrip("/")
        self.stats = BackendStats("openai-compatible", self.model, cache_path=self.cache_path)
        self.cache = ResponseCache(self.cache_path)
        self._local = threading.local()
        self._reached = threading.Event()  # set after the first answer from the server
        self._gone = threading.Event()  # set when the server is taken for gone (GONE_AFTER)
        self._gone_message = ""
        self._lock = threading.Lock()
        self._unreachable_in_a_row = 0
        self._settings = {
            "base_url": safe_url(self.base_url),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _register_secrets(self) -> None:
        """Everything here that may be a credential, so that no message or answer shows it."""
        for name, value in self.headers.items():
            if isinstance(value, str) and is_secret_header(name, value):
                register_secret(value)
        try:
            for secret in url_secrets(self.base_url):
                register_secret(secret)
        except ValueError:
            register_secret(self.base_url)  # unparseable: it is reported, never shown
        if _api_key_env_problem(self.api_key_env):
            register_secret(self.api_key_env)  # it may be the key itself
        if self.api_key_env:
            register_secret(os.environ.get(self.api_key_env, "").strip())

    # --- spacy-llm's interface ---------------------------------------------------------------

    # spacy-llm validates this signature and accepts only typing.Iterable, not collections.abc's.
    def __call__(
        self, prompts: typing.Iterable[typing.Iterable[str]]
    ) -> typing.Iterable[typing.Iterable[str]]:
        grouped = [list(doc_prompts) for doc_prompts in prompts]
        flat = [prompt for doc_prompts in grouped for prompt in doc_prompts]
        answers = self.complete_all(flat)
        out: list[list[str]] = []
        position = 0
        for doc_prompts in grouped:
            out.append(answers[position : position + len(doc_prompts)])
            position += len(doc_prompts)
        return out

    def complete_all(self, prompts: list[str]) -> list[str]:
        """Answer every prompt, up to `max_concurrency` at once, in input order."""
        if not prompts:
            return []
        if self.offline is not None:  # a batch job: no request, so no key, no concurrency
            return [self._answer(p) for p in prompts]
        self._api_key()  # a missing key stops the run before any request
        if self._gone.is_set():
            # Called again after the server was taken for gone (a notebook's next run): it
            # may be back; probe it with one request, as at the start.
            self._gone.clear()
            self._reached.clear()
            self._count_unreachable(None)
        if not self._reached.is_set():
            # The first request goes alone: if the server is unreachable, the key wrong or the
            # model unknown, one clear error comes before a burst of identical ones.
            first = self._answer(prompts[0])
            rest = prompts[1:]
            return [first, *self._complete_many(rest)]
        return self._complete_many(prompts)

    def _complete_many(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        workers = min(self.max_concurrency, len(prompts))
        if workers == 1:
            return [self._answer(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="disagree-llm") as pool:
            return list(pool.map(self._answer, prompts))

    # --- one prompt ----------------------------------------------------------------------------

    def answer_key(self, prompt: str) -> str:
        """The response cache's key for `prompt` (also a batch request's `custom_id`)."""
        schema = schema_of(prompt) if self.structured_output else None
        settings = {**self._settings, "schema": schema} if schema is not None else self._settings
        return cache_key("openai-compatible", self.model, settings, prompt)

    def _answer(self, prompt: str) -> str:
        answer = self._complete(prompt)
        self.stats.answered()
        return answer

    def _complete(self, prompt: str) -> str:
        key = self.answer_key(prompt)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.add(cached=1)
            return cached
        if self.offline is not None:
            return self.offline(key, prompt)
        self.stats.add(requests=1)
        attempt = 0
        while True:
            if self._gone.is_set():
                raise LLMSetupError(self._gone_message)
            try:
                answer = self._request(prompt)
            except _RetryableError as err:
                if err.unreachable and not self._reached.is_set() and attempt >= 1:
                    raise LLMSetupError(
                        f"{safe_url(self.base_url)}: no usable answer on the first request "
                        f"({err.reason}); is the server running and the base_url right?"
                    ) from None
                if attempt >= self.max_retries:
                    self._count_unreachable(err)
                    self.stats.add(failures=1)
                    return failed_response(f"{err.reason} (after {attempt} retries)")
                self.stats.add(retries=1)
                # Wakes at once when another request finds the server gone.
                self._gone.wait(self._retry_delay(attempt, err.retry_after))
                attempt += 1
                continue
            except _RequestFailed as err:
                self._count_unreachable(None)
                self.stats.add(failures=1)
                return failed_response(str(err))
            self._count_unreachable(None)
            self.cache.put(key, answer)
            return answer

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the server's Retry-After, capped at
        retry_after_max (counted in the stats: an `inf` or an hour must not stall the run)."""
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: spread a 429 storm
        if retry_after is not None:
            if retry_after > self.retry_after_max:
                self.stats.add(capped_waits=1)
            delay = max(delay, min(retry_after, self.retry_after_max))
        return delay

    def _count_unreachable(self, err: _RetryableError | None) -> None:
        """Count documents in a row that could not connect after all their retries (`err`
        unreachable); any answer from the server (`None`, or another error) resets the count.
        At GONE_AFTER the server is gone: stop the run, and every request still retrying."""
        with self._lock:
            if err is None or not err.unreachable:
                self._unreachable_in_a_row = 0
                return
            self._unreachable_in_a_row += 1
            if self._unreachable_in_a_row >= GONE_AFTER and not self._gone.is_set():
                self._gone_message = (
                    f"{safe_url(self.base_url)}: the server stopped answering: "
                    f"{GONE_AFTER} documents in a row could not connect after {self.max_retries} "
                    f"retries each ({err.reason}); the finished documents are kept, rerun with "
                    "--resume when the server is back"
                )
                self._gone.set()
        if self._gone.is_set():
            raise LLMSetupError(self._gone_message)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = _DeadlineAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        # A trailing line break (`echo KEY > file`, a .env written on Windows) is never part
        # of a key; anything else a header cannot carry is reported, without the key.
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise LLMSetupError(
                f"the environment variable {self.api_key_env} is not set; it holds the API key "
                f"for {safe_url(self.base_url)} (put it in .env or export it)"
            )
        register_secret(key)
        problem = unsendable(key)
        if problem is not None:
            raise LLMSetupError(
                f"the API key in {self.api_key_env} holds {problem}, which an HTTP header cannot "
                "carry (the key is not shown); check .env or the shell for a stray line break "
                "or a pasted quote"
            )
        return key

    def auth_headers(self) -> dict[str, str]:
        """The configured headers and the key's header: for chat requests and the Batch API."""
        headers = dict(self.headers)
        key = self._api_key()
        if key:
            headers[self.api_key_header] = (
                f"Bearer {key}" if self.api_key_header.lower() == "authorization" else key
            )
        return headers

    def schema_form(self, prompt: str) -> str | None:
        """How `prompt`'s answer schema is sent (`response_format`), None when it is not."""
        return self.structured_output if schema_of(prompt) is not None else None

    def request_body(self, prompt: str) -> dict[str, Any]:
        """The chat-completions body for `prompt`: the one builder of live requests and of the
        lines of a batch job's request file (`batch`)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": str(prompt)}],
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        schema = schema_of(prompt)
        if schema is not None and self.structured_output is not None:
            body["response_format"] = response_format(self.structured_output, schema)
        return body

    def _request(self, prompt: str) -> str:
        headers = {"Content-Type": "application/json", **self.auth_headers()}
        form = self.schema_form(prompt)
        response = self._post(self.request_body(prompt), headers)
        status = response.status_code
        # A refusal names the field: vLLM and OpenAI answer 400, FastAPI servers 422, and
        # llama-cpp-python's server a 500 that quotes its validation error.
        if form is not None and status in (400, 422, 500) and _names_the_format(response):
            self._refused(form, f"HTTP {status}: {_error_message(response)}")
            return self._request(prompt)
        if form is not None and status < 400:
            self.stats.add(constrained=1)
        if status in (401, 403):
            source = f" from {self.api_key_env}" if self.api_key_env else ""
            raise LLMSetupError(
                f"{safe_url(self.base_url)} rejected the API key{source} "
                f"(HTTP {status}: {_error_message(response)})"
            )
        if status == 404 or (status == 400 and "model" in _error_message(response).lower()):
            raise LLMSetupError(
                f"{safe_url(self.base_url)} does not serve the model {self.model!r} "
                f"(HTTP {status}: {_error_message(response)})"
            )
        if status in RETRY_STATUS:
            raise _RetryableError(
                f"HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
            )
        if status >= 400:
            raise _RequestFailed(f"HTTP {status}: {_error_message(response)}")
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise _RetryableError("the server's answer is not a chat completion") from None
        if not isinstance(content, str):
            raise _RetryableError("the server's answer has no text content")
        self._reached.set()
        self.count_usage(data.get("usage"))
        return redact(content)  # a proxy may echo the key into the answer: never store it

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
        """POST the request and read its answer within `timeout`, at most max_response_bytes
        of it; every way the transport can fail becomes one of our errors: retried when
        another try may go through, recorded on the document when it will not."""
        url = f"{self.base_url}/chat/completions"
        deadline = Deadline(self.timeout)
        try:
            with deadline:
                response = send(
                    self._session(),
                    "POST",
                    url,
                    json=body,
                    headers=headers,
                    timeout=self.timeout,
                    stream=True,
                )
                error = response.status_code >= 400
                limit = self.max_response_bytes
                # Of an error, only the message is read: a long one is cut, not a failure.
                read_body(response, min(ERROR_BODY_BYTES, limit) if error else limit, cut=error)
        except RedirectRefused as err:
            raise LLMSetupError(f"{safe_url(url)} {err}") from None
        except BodyTooLarge:
            raise _RequestFailed(
                f"the answer is over {self.max_response_bytes:,} bytes (max_response_bytes); "
                "the rest was not read"
            ) from None
        except requests.RequestException as err:
            raise _transport_error(err, self.timeout, expired=deadline.expired) from None
        if deadline.expired:  # a body without a length ends early when its socket is shut
            raise _RetryableError(f"no complete answer within {self.timeout:g} s")
        return response

    def _refused(self, form: str, reason: str) -> None:
        """The server refused `form`: every later request sends the next form, or none. Other
        threads may see the same refusal; only the first moves the setting on."""
        with self._lock:
            if self.structured_output != form:
                return
            position = RESPONSE_FORMATS.index(form)
            following = RESPONSE_FORMATS[position + 1 :]
            self.structured_output = following[0] if following else None
            then = f"sent {following[0]} instead" if following else "answers are unconstrained"
            refused = f"{form} refused ({reason}); {then}"
            self.stats.structured_refused = (
                f"{self.stats.structured_refused}; {refused}"
                if self.stats.structured_refused
                else refused
            )

    def count_usage(self, usage: Any, *, batch: bool = False) -> None:
        """Add an answer's `usage` to the stats, with its cost at the live prices, or at the
        batch prices for an answer of a batch job (the live ones where those are not set)."""
        if not isinstance(usage, dict):
            return
        prompt_tokens = _token_count(usage.get("prompt_tokens"))
        completion_tokens = _token_count(usage.get("completion_tokens"))
        counts: dict[str, float] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
        prompt_price, completion_price = (
            self.prompt_price_per_million,
            self.completion_price_per_million,
        )
        if batch:
            if self.batch_prompt_price_per_million is not None:
                prompt_price = self.batch_prompt_price_per_million
            if self.batch_completion_price_per_million is not None:
                completion_price = self.batch_completion_price_per_million
        if prompt_price is not None or completion_price is not None:
            counts["cost"] = (
                prompt_tokens * (prompt_price or 0.0)
                + completion_tokens * (completion_price or 0.0)
            ) / 1_000_000
        self.stats.add(**counts)


def _transport_error(err: requests.RequestException, timeout: float, *, expired: bool) -> Exception:
    """Our error for a failure of the transport (`expired`: the Deadline shut the socket)."""
    if isinstance(err, requests.ConnectTimeout):
        return _RetryableError(f"no connection within {timeout:g} s", unreachable=True)
    if expired or isinstance(err, requests.Timeout):
        return _RetryableError(f"no complete answer within {timeout:g} s")
    if isinstance(err, requests.ConnectionError):
        return _RetryableError(f"connection failed: {_connection_problem(err)}", unreachable=True)
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return _RetryableError("the answer broke off before its end")
    if isinstance(err, requests.exceptions.ContentDecodingError):
        return _RequestFailed(
            "the answer's body is not encoded as its Content-Encoding header says"
        )
    if isinstance(err, requests.TooManyRedirects):
        return _RequestFailed("the server redirects in a loop")
    return _RequestFailed(f"the request failed: {type(err).__name__}")


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


def _token_count(value: Any) -> int:
    """A token count from `usage`; 0 for anything else (a string, null, a negative or
    non-finite number): a server's bad bookkeeping must not cost the answer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)


def response_format(form: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's `response_format` that asks for answers following `schema`."""
    if form == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def _names_the_format(response: requests.Response) -> bool:
    """Whether an error answer is about response_format (the server does not take it), as
    opposed to a bad model name or a prompt too long."""
    message = _error_message(response).lower()
    return any(word in message for word in ("response_format", "json_schema", "json_object"))


def _error_message(response: requests.Response) -> str:
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


@registry.llm_models("disagree.OpenAICompatible.v1")
def make_openai_compatible(
    model: str,
    base_url: str = "https://api.openai.com/v1",
    api_key_env: str | None = "OPENAI_API_KEY",
    api_key_header: str = "Authorization",
    headers: dict[str, str] = {},  # noqa: B006  (config values, never mutated)
    max_concurrency: int = 8,
    max_retries: int = 6,
    timeout: float = 60.0,
    backoff_base: float = 0.5,
    backoff_max: float = 30.0,
    retry_after_max: float = 60.0,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    temperature: float = 0.0,
    max_tokens: int | None = None,
    prompt_price_per_million: float | None = None,
    completion_price_per_million: float | None = None,
    batch_prompt_price_per_million: float | None = None,
    batch_completion_price_per_million: float | None = None,
    cache: bool = True,
    cache_path: str | None = None,
    context_length: int | None = None,
    structured_output: str | bool = "json_schema",
) -> OpenAICompatibleModel:
    """Any OpenAI-compatible chat-completions server.

    `api_key_env` names the environment variable that holds the key (never the key itself);
    set it to null for servers without keys. A retry waits backoff_base * 2^attempt seconds
    (capped at backoff_max, with jitter), or longer when the server says so in Retry-After, up
    to retry_after_max seconds (a longer Retry-After, `inf` included, is cut to it and counted).
    `timeout` is a deadline for each request as a whole (however slowly the server sends),
    and `max_response_bytes` the most of an answer read (past it, the document's failure).
    `structured_output`: how a task's JSON schema is sent (json_schema, json_object), or false
    to send none.
    Prices are per million tokens, for the cost estimate at the end of a run; the batch prices
    for answers of a batch job (`predict --batch`; unset: the live prices). `cache_path`
    defaults to ~/.cache/disagree/responses.sqlite.
    """
    return OpenAICompatibleModel(
        model=model,
        base_url=base_url,
        api_key_env=api_key_env or None,
        api_key_header=api_key_header,
        headers=dict(headers),
        max_concurrency=max_concurrency,
        max_retries=max_retries,
        timeout=timeout,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        retry_after_max=retry_after_max,
        max_response_bytes=max_response_bytes,
        temperature=temperature,
        max_tokens=max_tokens,
        prompt_price_per_million=prompt_price_per_million,
        completion_price_per_million=completion_price_per_million,
        batch_prompt_price_per_million=batch_prompt_price_per_million,
        batch_completion_price_per_million=batch_completion_price_per_million,
        cache_path=(cache_path or str(default_cache_path())) if cache else None,
        context_length=context_length,
        structured_output=(
            "json_schema" if structured_output is True else (structured_output or None)
        ),
    )
