"""assemble: build a pipeline from a spacy-llm `config.cfg` (and save it), as `spacy assemble`.

    >>> from disagree_triage.assemble import assemble_pipeline
    >>> overrides = {"components.llm.model.max_tokens": 32}
    >>> nlp = assemble_pipeline("configs/local.cfg", overrides)  # doctest: +SKIP

`.env` in the working directory is loaded first (or `env_file`), so a config can name
`api_key_env = "OPENAI_API_KEY"` and the key never appears in a config or on a command line.
Configs may refer to files beside them as `${paths.config_dir}/...`: it is set to the config's
own folder. A pipeline that would store a secret (a key in `headers`, a password in `base_url`)
is never saved.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from spacy import util
from spacy.language import Language
from thinc.api import ConfigValidationError

from .errors import DisagreeError
from .llm import register_backends
from .redaction import holds_secret


def load_env(env_file: str | Path | None = None) -> None:
    """Load `env_file`, else `.env` in the working directory if there is one.

    Variables already set in the environment win, as with `dotenv run`.
    """
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise DisagreeError(f"{path}: env file not found")
    elif Path(".env").is_file():
        path = Path(".env")
    else:
        return
    try:
        load_dotenv(path, override=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        # The message quotes no content: an env file holds keys.
        raise DisagreeError(
            f"{path}: not UTF-8 text (byte {err.start + 1}); save it as UTF-8"
        ) from None


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
        # `errors` lists what failed validation; a bad ${...} substitution has only `desc`.
        problems = "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err.errors or []
        )
        raise DisagreeError(
            f"{path}: invalid config ({problems or err.desc or err.title})"
        ) from None
    except (OSError, ValueError, ImportError) as err:  # ImportError: an unknown nlp.lang
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DisagreeError(f"{path}: can't assemble the pipeline ({first})") from None
    return nlp


def assemble_to_disk(
    config_path: str | Path,
    output_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    env_file: str | Path | None = None,
    overwrite: bool = False,
) -> Language:
    """Build the pipeline and save it to `output_dir`: a new or empty folder, or (`overwrite`)
    a pipeline saved before, which is replaced only once the new one is complete."""
    out = Path(output_dir)
    _check_output_dir(out, overwrite)
    nlp = assemble_pipeline(config_path, overrides, env_file=env_file)
    secrets = secret_settings(nlp.config)
    if secrets:
        raise DisagreeError(
            f"{config_path}: {', '.join(secrets)} holds a secret, which a saved pipeline would "
            "keep in its config.cfg; put it in an environment variable (e.g. in .env) and name "
            "that with api_key_env (api_key_header picks the header); nothing was saved"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        nlp.to_disk(staging)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return nlp


def _check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that is a file, or a folder that holds something:
    without `overwrite` always, with it unless that something is a saved pipeline."""
    if out.exists() and not out.is_dir():
        raise DisagreeError(f"{out}: is a file; choose a folder for the pipeline")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise DisagreeError(
            f"{out}: already exists and is not empty; pass --overwrite to replace the pipeline "
            "in it, or choose a new folder"
        )
    if not (out / "config.cfg").is_file():
        raise DisagreeError(
            f"{out}: is not a saved pipeline (no config.cfg), so --overwrite will not delete "
            "it; choose a new or empty folder"
        )


def _swap_in(staging: Path, out: Path) -> None:
    """Put the complete new pipeline at `out`, replacing what was there."""
    if out.is_dir():
        retired = staging.with_name(staging.name + "-old")
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)


def secret_settings(config: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of the config's settings that hold a secret this process knows (the
    key of an `api_key_env`, a header that carries a credential, a password in a URL)."""
    found = []
    for name, value in config.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            found += secret_settings(value, f"{path}.")
        elif holds_secret(str(value)):
            found.append(path)
    return found
