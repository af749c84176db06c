"""`disagree.OpenAICompatible.v1` as spacy-llm calls it: prompts in, answers out, in order,
up to `max_concurrency` at once, each from the response cache when it holds it, else asked
with retries (`transport`), and counted (`stats`).

Errors that no retry can fix — no API key, a key the server rejects, a model it does not know,
a server that cannot be reached on the first request — raise `LLMSetupError` at once, before
hours of work; so does a server that goes away mid-run (`GONE_AFTER`). A request that still
fails after its retries does not stop the run: it returns a marked response (see `failures`),
and predict records the reason in that document's task.
"""

from __future__ import annotations

import math
import threading
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from spacy_llm.registry import registry

from ..failures import failed_response
from ..response_cache import ResponseCache, cache_key, default_cache_path
from ..structured import schema_of
from .settings import MAX_RESPONSE_BYTES, ChatSettings, LLMSetupError, safe_url
from .transport import ChatTransport, RequestFailed, RetryableError

# The server is taken for gone, and the run stops, when this many documents in a row could not
# connect after all their retries, with no answer in between. One or two may be a restart; each
# further one would cost a full round of backoff (defaults: about 24 s) and come back empty,
# which over 10,000 documents is hours of waiting for an output of errors. Stopping keeps the
# finished records in OUTPUT.partial, and --resume asks again for the failed ones.
GONE_AFTER = 3


@dataclass
class OpenAICompatibleModel(ChatSettings):
    """Callable spacy-llm model: prompts (per doc, per shard) in, responses out, in order."""

    # Set by `batch` only (never from a config): answers a prompt that is not in the cache
    # instead of a request (key, prompt) -> answer, to record it for a batch job or to serve
    # the job's answer. No request is sent while it is set.
    offline: Callable[[str, str], str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cache = ResponseCache(self.cache_path)
        self.transport = ChatTransport(self)
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
                answer, usage = self.transport.request(prompt)
            except RetryableError as err:
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
                self._gone.wait(self.retry_delay(attempt, err.retry_after))
                attempt += 1
                continue
            except RequestFailed as err:
                self._count_unreachable(None)
                self.stats.add(failures=1)
                return failed_response(str(err))
            self._reached.set()
            self.count_usage(usage)
            self._count_unreachable(None)
            self.cache.put(key, answer)
            return answer

    def _count_unreachable(self, err: RetryableError | None) -> None:
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


def _token_count(value: Any) -> int:
    """A token count from `usage`; 0 for anything else (a string, null, a negative or
    non-finite number): a server's bad bookkeeping must not cost the answer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)


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
