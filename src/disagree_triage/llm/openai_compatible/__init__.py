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

Three parts: `settings` (the config's values, checked when the pipeline is built; the key,
headers and body of a request), `transport` (one request over HTTP and its faults, sorted) and
`backend` (spacy-llm's callable: order, concurrency, cache, retries, a server gone; the entry
point `make_openai_compatible`).
"""

from .backend import GONE_AFTER, OpenAICompatibleModel, make_openai_compatible
from .settings import (
    MAX_RESPONSE_BYTES,
    RESPONSE_FORMATS,
    ChatSettings,
    LLMSetupError,
    response_format,
    safe_url,
)
from .transport import (
    RETRY_STATUS,
    BodyTooLarge,
    ChatTransport,
    Deadline,
    RedirectRefused,
    error_message,
    origin,
    parse_retry_after,
    read_body,
    send,
)

__all__ = [
    "GONE_AFTER",
    "MAX_RESPONSE_BYTES",
    "BodyTooLarge",
    "Deadline",
    "RedirectRefused",
    "origin",
    "read_body",
    "send",
    "RESPONSE_FORMATS",
    "RETRY_STATUS",
    "ChatSettings",
    "ChatTransport",
    "LLMSetupError",
    "OpenAICompatibleModel",
    "error_message",
    "make_openai_compatible",
    "parse_retry_after",
    "response_format",
    "safe_url",
]
