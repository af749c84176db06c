"""`disagree.OpenAICompatible.v1`: any OpenAI-compatible chat-completions server.

Works with OpenAI, and with Ollama, vLLM, llama.cpp's server, LM Studio: whatever serves
`POST {base_url}/chat/completions`. Unlike spacy-llm 0.7.4's OpenAI models it makes no request
when built (they call api.openai.com/v1/models even with another endpoint), sends up to
`max_concurrency` requests at once (they send one at a time), retries 429, 5xx, connection
errors, timeouts and malformed bodies with exponential backoff and jitter honouring Retry-After
(they retry only 429/503, with no Retry-After), and reads `usage`.

Errors that no retry can fix — no API key, a key the server rejects, a model it does not know,
a server that cannot be reached on the first request — raise `LLMSetupError` at once, before
hours of work. A request that still fails after its retries does not stop the run: it returns a
marked response (see `failures`), and predict records the reason in that document's task.
"""

import email.utils
import os
import random
import threading
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from spacy_llm.registry import registry

from ..errors import DisagreeError
from .failures import BackendStats, failed_response
from .response_cache import ResponseCache, cache_key, default_cache_path

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 300.0


class LLMSetupError(DisagreeError):
    """A backend problem no retry can fix: stop the run with one clear line."""


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
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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
    temperature: float = 0.0
    max_tokens: int | None = None
    prompt_price_per_million: float | None = None
    completion_price_per_million: float | None = None
    cache_path: str | None = None
    context_length: int | None = None
    stats: BackendStats = field(init=False)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise DisagreeError("disagree.OpenAICompatible.v1: max_concurrency must be >= 1")
        self.base_url = self.base_url.rstrip("/")
        self.stats = BackendStats("openai-compatible", self.model)
        self.cache = ResponseCache(self.cache_path)
        self._local = threading.local()
        self._reached = threading.Event()  # set after the first answer from the server
        self._settings = {
            "base_url": safe_url(self.base_url),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

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
        self._api_key()  # a missing key stops the run before any request
        if not self._reached.is_set():
            # The first request goes alone: if the server is unreachable, the key wrong or the
            # model unknown, one clear error comes before a burst of identical ones.
            first = self._complete(prompts[0])
            rest = prompts[1:]
            return [first, *self._complete_many(rest)]
        return self._complete_many(prompts)

    def _complete_many(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        workers = min(self.max_concurrency, len(prompts))
        if workers == 1:
            return [self._complete(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="disagree-llm") as pool:
            return list(pool.map(self._complete, prompts))

    # --- one prompt ----------------------------------------------------------------------------

    def _complete(self, prompt: str) -> str:
        key = cache_key("openai-compatible", self.model, self._settings, prompt)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.add(cached=1)
            return cached
        self.stats.add(requests=1)
        attempt = 0
        while True:
            try:
                answer = self._request(prompt)
            except _RetryableError as err:
                if err.unreachable and not self._reached.is_set() and attempt >= 1:
                    raise LLMSetupError(
                        f"{safe_url(self.base_url)}: no usable answer on the first request "
                        f"({err.reason}); is the server running and the base_url right?"
                    ) from None
                if attempt >= self.max_retries:
                    self.stats.add(failures=1)
                    return failed_response(f"{err.reason} (after {attempt} retries)")
                self.stats.add(retries=1)
                delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: spread a 429 storm
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, MAX_RETRY_AFTER))
                time.sleep(delay)
                attempt += 1
                continue
            except _RequestFailed as err:
                self.stats.add(failures=1)
                return failed_response(str(err))
            self.cache.put(key, answer)
            return answer

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMSetupError(
                f"the environment variable {self.api_key_env} is not set; it holds the API key "
                f"for {safe_url(self.base_url)} (put it in .env or export it)"
            )
        return key

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env or "", "")
        for secret in (key, key[:8]) if len(key) >= 8 else (key,):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _request(self, prompt: str) -> str:
        headers = {"Content-Type": "application/json", **self.headers}
        key = self._api_key()
        if key:
            headers[self.api_key_header] = (
                f"Bearer {key}" if self.api_key_header.lower() == "authorization" else key
            )
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        url = f"{self.base_url}/chat/completions"
        try:
            response = self._session().post(url, json=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise _RetryableError(f"no answer within {self.timeout:g} s") from None
        except requests.ConnectionError as err:
            raise _RetryableError(
                f"connection failed: {type(err).__name__}", unreachable=True
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise LLMSetupError(
                f"{safe_url(self.base_url)} rejected the API key from {self.api_key_env} "
                f"(HTTP {status}: {self._redact(_error_message(response))})"
            )
        if status == 404 or (status == 400 and "model" in _error_message(response).lower()):
            raise LLMSetupError(
                f"{safe_url(self.base_url)} does not serve the model {self.model!r} "
                f"(HTTP {status}: {self._redact(_error_message(response))})"
            )
        if status in RETRY_STATUS:
            raise _RetryableError(
                f"HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
            )
        if status >= 400:
            raise _RequestFailed(f"HTTP {status}: {self._redact(_error_message(response))}")
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _RetryableError("the server's answer is not a chat completion") from None
        if not isinstance(content, str):
            raise _RetryableError("the server's answer has no text content")
        self._reached.set()
        self._count_usage(data.get("usage"))
        return content

    def _count_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        counts: dict[str, float] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
        if (
            self.prompt_price_per_million is not None
            or self.completion_price_per_million is not None
        ):
            counts["cost"] = (
                prompt_tokens * (self.prompt_price_per_million or 0.0)
                + completion_tokens * (self.completion_price_per_million or 0.0)
            ) / 1_000_000
        self.stats.add(**counts)


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:200]
    except ValueError:
        return response.text[:200].strip() or response.reason or ""


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
    temperature: float = 0.0,
    max_tokens: int | None = None,
    prompt_price_per_million: float | None = None,
    completion_price_per_million: float | None = None,
    cache: bool = True,
    cache_path: str | None = None,
    context_length: int | None = None,
) -> OpenAICompatibleModel:
    """Any OpenAI-compatible chat-completions server.

    `api_key_env` names the environment variable that holds the key (never the key itself);
    set it to null for servers without keys. A retry waits backoff_base * 2^attempt seconds
    (capped at backoff_max, with jitter), or longer when the server says so in Retry-After.
    Prices are per million tokens, for the cost estimate at the end of a run. `cache_path`
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
        temperature=temperature,
        max_tokens=max_tokens,
        prompt_price_per_million=prompt_price_per_million,
        completion_price_per_million=completion_price_per_million,
        cache_path=(cache_path or str(default_cache_path())) if cache else None,
        context_length=context_length,
    )
