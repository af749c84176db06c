"""`disagree.OpenAICompatible.v1` (see `backend`)."""

from .backend import (
    GONE_AFTER,
    RETRY_STATUS,
    LLMSetupError,
    OpenAICompatibleModel,
    _error_message,
    make_openai_compatible,
    parse_retry_after,
    safe_url,
)

__all__ = [
    "GONE_AFTER",
    "RETRY_STATUS",
    "LLMSetupError",
    "OpenAICompatibleModel",
    "_error_message",
    "make_openai_compatible",
    "parse_retry_after",
    "safe_url",
]
