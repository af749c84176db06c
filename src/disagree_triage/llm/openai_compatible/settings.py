"""`disagree.OpenAICompatible.v1`'s settings, checked when the pipeline is built, and what they
make of a request: the key, the headers, the chat-completions body.

Settings that could only fail later (a base_url that is not http(s), a negative timeout, a key
name that is a key) fail at once. Every secret the settings hold is registered with
`redaction`, so that no message or answer shows it.
"""

from __future__ import annotations

import math
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...core.errors import DisagreeError
from ...core.redaction import (
    is_env_name,
    is_secret_header,
    looks_like_key,
    redact,
    register_secret,
    url_secrets,
)
from ..failures import BackendStats
from ..structured import schema_of

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# How a schema is sent, from the most to the least widely read; a refusal moves one step on.
RESPONSE_FORMATS = ("json_schema", "json_object")
# The most of an answer read (after Content-Encoding): a chat answer is kilobytes, and read
# whole, one 100 MB answer took 2 GB (its bytes, text, parsed JSON and redacted copy).
MAX_RESPONSE_BYTES = 8_000_000


class LLMSetupError(DisagreeError):
    """A backend problem no retry can fix: stop the run with one clear line (secrets removed)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


@dataclass
class ChatSettings:
    """What the config says of the server, the model, the retries and the prices."""

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

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the server's Retry-After, capped at
        retry_after_max (counted in the stats: an `inf` or an hour must not stall the run)."""
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: spread a 429 storm
        if retry_after is not None:
            if retry_after > self.retry_after_max:
                self.stats.add(capped_waits=1)
            delay = max(delay, min(retry_after, self.retry_after_max))
        return delay


def response_format(form: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's `response_format` that asks for answers following `schema`."""
    if form == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def safe_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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


def _numbers_problem(settings: ChatSettings) -> str | None:
    minimums = {
        "max_concurrency": (settings.max_concurrency, 1),
        "max_retries": (settings.max_retries, 0),
        "timeout": (settings.timeout, None),  # above 0
        "backoff_base": (settings.backoff_base, 0),
        "backoff_max": (settings.backoff_max, 0),
        "retry_after_max": (settings.retry_after_max, 0),
        "max_response_bytes": (settings.max_response_bytes, 1),
    }
    for name, (value, minimum) in minimums.items():
        if not math.isfinite(value):
            return f"{name} must be a finite number, not {value}"
        if minimum is None and value <= 0:
            return f"{name} must be above 0, not {value:g}"
        if minimum is not None and value < minimum:
            return f"{name} must be >= {minimum}, not {value:g}"
    return None
