"""The secrets this process knows, and the one function that takes them out of any text.

An API key must reach no terminal, output, cache or saved pipeline, but servers echo it back
(in a 401, Base64-encoded in a Basic auth header, cut short in an excerpt). So every secret the
process is given is registered here — the key read from `api_key_env`, the values of `headers`
that carry credentials, a user name, password or key-bearing query value in `base_url` — and
everything shown or stored passes through `redact`: error lines, `meta.llm_error` reasons, the
LLM's answers themselves.

`redact` removes a secret whole and in part: any piece of `PIECE` characters or more (a server
may cut its echo, and a message may be cut later), and its Base64 forms at each of the three byte
alignments, so a secret inside any Base64-encoded string is found too. Values shorter than
`PIECE` are not registered: they guard nothing, and removing them would garble ordinary text.

    >>> register_secret("sk-example-0123456789")
    >>> redact("Incorrect API key provided: sk-example-0123456789")
    'Incorrect API key provided: ***'
    >>> redact("key ...ample-0123456")
    'key ...***'
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import parse_qsl, urlsplit

PIECE = 8
MASK = "***"

_lock = threading.Lock()
_pieces: set[str] = set()  # every PIECE-long window of every form of every secret

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Prefixes of common provider keys (OpenAI, Anthropic, Hugging Face, Groq, GitHub, xAI, Google,
# AWS, Perplexity, Slack) and of header values that carry one.
_KEY_PREFIXES = (
    "sk-", "sk_", "pk-", "rk-", "hf_", "gsk_", "ghp_", "gho_", "github_pat_", "xai-", "aiza",
    "akia", "pplx-", "xoxb-", "xoxp-", "bearer ", "basic ",
)  # fmt: skip
_SECRET_NAME = re.compile(
    r"auth|key|token|secret|passw|cookie|credential|session|signature|sig\b", re.IGNORECASE
)


def register_secret(value: str | None) -> None:
    """Remember `value` (and each of its whitespace-separated parts, e.g. the token of
    `Bearer TOKEN`) so that `redact` removes it from now on."""
    if not value:
        return
    parts = {value.strip(), *value.split()}
    with _lock:
        for part in parts:
            if len(part) < PIECE:
                continue
            for form in (part, *_base64_forms(part.encode("utf-8"))):
                _pieces.update(form[i : i + PIECE] for i in range(len(form) - PIECE + 1))


def _base64_forms(raw: bytes) -> list[str]:
    """The part of base64(prefix + raw + suffix) that depends on `raw` alone, for each of the
    three lengths of prefix modulo 3, in the standard and the URL-safe alphabet."""
    forms = []
    for offset, first_clean in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # A Base64 character holds 6 bits; keep those whose bits all come from `raw`.
        core = encoded[first_clean : (8 * (offset + len(raw))) // 6]
        if len(core) >= PIECE:
            forms += [core, core.replace("+", "-").replace("/", "_")]
    return forms


def redact(text: str) -> str:
    """`text` with every known secret, and every piece of one of `PIECE` characters or more,
    replaced by `***`."""
    if not _pieces or len(text) < PIECE:
        return text
    covered = [False] * len(text)
    found = False
    for start in range(len(text) - PIECE + 1):
        if text[start : start + PIECE] in _pieces:
            covered[start : start + PIECE] = [True] * PIECE
            found = True
    if not found:
        return text
    out: list[str] = []
    for position, char in enumerate(text):
        if not covered[position]:
            out.append(char)
        elif position == 0 or not covered[position - 1]:
            out.append(MASK)
    return "".join(out)


def holds_secret(text: str) -> bool:
    """Whether `text` contains a known secret, or a piece of one."""
    return redact(text) != text


def is_env_name(value: str) -> bool:
    """A valid environment variable name: letters, digits and underscores, not a digit first."""
    return bool(_ENV_NAME.match(value))


def looks_like_key(value: str) -> bool:
    """Whether `value` looks like a credential rather than a name: a provider's key prefix, or a
    long mix of letters and digits (names are short, and rarely mix cases with digits)."""
    value = value.strip()
    if len(value) >= 16 and value.lower().startswith(_KEY_PREFIXES):
        return True  # (a short one, such as HF_TOKEN, is a name)
    has_digit = any(c.isdigit() for c in value)
    has_lower = any(c.islower() for c in value)
    has_upper = any(c.isupper() for c in value)
    mixed = has_digit and has_lower and has_upper
    return (len(value) >= 20 and mixed) or (len(value) >= 32 and has_digit and has_lower)


def is_secret_header(name: str, value: str) -> bool:
    """Whether a header carries a credential, judged by its name (Authorization, X-Api-Key,
    Cookie, ...) or by its value."""
    return bool(_SECRET_NAME.search(name)) or looks_like_key(value)


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries: user name and password, and query values that are keys
    (`?api-key=...`). Path segments are not guessed at: deployment names look like keys."""
    parts = urlsplit(url)
    found = [value for value in (parts.username, parts.password) if value]
    for name, value in parse_qsl(parts.query):
        if is_secret_header(name, value):
            found.append(value)
    return found
