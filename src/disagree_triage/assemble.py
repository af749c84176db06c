"""assemble: build a pipeline from a spacy-llm `config.cfg` (and save it), as `spacy assemble`.

    >>> from disagree_triage.assemble import assemble_pipeline
    >>> overrides = {"components.llm.model.max_tokens": 32}
    >>> nlp = assemble_pipeline("configs/local.cfg", overrides)  # doctest: +SKIP

`.env` in the working directory is loaded first (or `env_file`), so a config can name
`api_key_env = "OPENAI_API_KEY"` and the key never appears in a config or on a command line.
Configs may refer to files beside them as `${paths.config_dir}/...`: it is set to the config's
own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from spacy import util
from spacy.language import Language
from thinc.api import ConfigValidationError

from .errors import DisagreeError
from .llm import register_backends


def load_env(env_file: str | Path | None = None) -> None:
    """Load `env_file`, else `.env` in the working directory if there is one.

    Variables already set in the environment win, as with `dotenv run`.
    """
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise DisagreeError(f"{path}: env file not found")
        load_dotenv(path, override=False)
    elif Path(".env").is_file():
        load_dotenv(Path(".env"), override=False)


def assemble_pipeline(
    config_path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    env_file: str | Path | None = None,
) -> Language:
    """Build (and initialise) the pipeline a spacy-llm config describes. No LLM is called."""
    path = Path(config_path)
    if not path.is_file():
        raise DisagreeError(f"{path}: config file not found")
    load_env(env_file)
    register_backends()
    all_overrides = dict(overrides or {})
    try:
        config = util.load_config(path, interpolate=False)
        if "paths" in config and "config_dir" in config["paths"]:
            all_overrides.setdefault("paths.config_dir", str(path.parent.resolve()))
        config = util.load_config(path, overrides=all_overrides, interpolate=False)
        nlp = util.load_model_from_config(config, auto_fill=True)
        nlp.initialize()
    except ConfigValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err.errors
        ) or str(err.title)
        raise DisagreeError(f"{path}: invalid config ({problems})") from None
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DisagreeError(f"{path}: can't assemble the pipeline ({first})") from None
    return nlp


def assemble_to_disk(
    config_path: str | Path,
    output_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    env_file: str | Path | None = None,
) -> Language:
    nlp = assemble_pipeline(config_path, overrides, env_file=env_file)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out)
    return nlp
