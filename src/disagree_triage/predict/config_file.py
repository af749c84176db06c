"""A spacy-llm config file as its user wrote it, so that what is wrong in it is said as
`file, line N, field 'section.key': problem`.

confection reads some mistakes as something else, without a word: a list left open
(`labels = [` and the lines after it) becomes a string, and the pipeline is built and saved
with it. And what it does report names a place the user never wrote: a typo in
`[components.llm.tsak]` is "components.llm.task.template: Section 'task' is not defined".
`check_config_text` refuses the first kind before confection reads the file;
`explain_config_error` turns the second into the section or setting the typo is in, with
"did you mean" from the names that place takes.

    >>> lines = ConfigLines.of("[nlp]\\nlang = 'en'\\n\\n[components.llm]\\nfactory = 'llm'\\n")
    >>> lines.sections["components.llm"], lines.keys[("components.llm", "factory")]
    (4, 5)
"""

from __future__ import annotations

import ast
import configparser
import difflib
import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinc.api import ConfigValidationError

from ..core.errors import InputError

_SECTION = re.compile(r"\[(?P<name>[^\]]+)\]\s*$")
_KEY = re.compile(r"(?P<key>[^\s=:#;][^=:]*?)\s*[=:]")
_VARIABLE = re.compile(r"\$\{[^}]*\}")  # confection's ${section.key}, not JSON as it stands


@dataclass
class ConfigLines:
    """Where each section header and each `key =` of a config text is (1-based lines)."""

    sections: dict[str, int] = field(default_factory=dict)
    keys: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> ConfigLines:
        found = cls()
        section = None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line or line[0].isspace() or line[0] in "#;":
                continue  # blank, a continuation, a comment
            if match := _SECTION.match(line):
                section = match["name"].strip()
                found.sections.setdefault(section, number)
            elif section is not None and (match := _KEY.match(line)):
                found.keys.setdefault((section, match["key"].strip()), number)
        return found

    def line_of(self, dotted: str) -> int | None:
        """The line of a section, or of a setting given as `section.key`."""
        if dotted in self.sections:
            return self.sections[dotted]
        section, _, key = dotted.rpartition(".")
        return self.keys.get((section, key))


def check_config_text(path: Path, text: str) -> ConfigLines:
    """Refuse what confection would misread or report without a line: a line that is neither
    a section nor a setting, a setting given twice, a list or object value that does not
    parse (left open, most often), a section inside one the file lacks. Returns the lines."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    lines = ConfigLines.of(text)
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as err:
        raise InputError(path, err.lineno, "a setting before any [section]") from None
    except configparser.ParsingError as err:
        number, raw = err.errors[0]
        raise InputError(path, number, _unreadable(lines, number, str(raw))) from None
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError) as err:
        what = f"[{err.section}]" + (f" {err.option}" if hasattr(err, "option") else "")
        raise InputError(path, err.lineno, f"{what} is given twice") from None
    for section in parser.sections():
        for key, value in parser.items(section, raw=True):
            problem = _value_problem(value)
            if problem is not None:
                line = lines.keys.get((section, key))
                raise InputError(path, line, problem, field=f"{section}.{key}")
        _check_parents(path, section, lines)
    return lines


def _unreadable(lines: ConfigLines, number: int, raw: str) -> str:
    """Why line `number` can't be read: most often, the list of the setting above it was
    left open and went on over lines that are not indented."""
    above = [(n, s, k) for (s, k), n in lines.keys.items() if n < number]
    try:
        shown = str(ast.literal_eval(raw)).strip()  # configparser gives the line's repr
    except (ValueError, SyntaxError):
        shown = raw
    problem = f"can't read {shown!r}: expected `key = value` or a [section]"
    if above:
        n, section, key = max(above)
        if n == number - 1 or not any(n < m < number for m in lines.sections.values()):
            problem += f" (is the value of {section}.{key}, line {n}, left open?)"
    return problem


def _value_problem(value: str) -> str | None:
    """What is wrong with a list or object value that confection would keep as a string."""
    stripped = value.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        json.loads(_VARIABLE.sub("null", stripped))
    except ValueError as err:
        opened = stripped.count("[") + stripped.count("{")
        closed = stripped.count("]") + stripped.count("}")
        what = "list" if stripped[0] == "[" else "object"
        if opened > closed:
            return f"the {what} opened with '{stripped[0]}' is never closed"
        return f"not a valid {what} ({getattr(err, 'msg', err)})"
    return None


def _check_parents(path: Path, section: str, lines: ConfigLines) -> None:
    """A section inside one the file lacks: most often a typo in that one's own header."""
    parts = section.split(".")
    for depth in range(1, len(parts)):
        parent = ".".join(parts[:depth])
        if parent in lines.sections or "*" in parts[:depth]:
            continue
        prefix = "".join(f"{part}." for part in parts[: depth - 1])
        siblings = {
            name.split(".")[depth - 1]: name
            for name in lines.sections
            if name.count(".") == depth - 1 and name.startswith(prefix)
        }
        guess = closest_name(parts[depth - 1], siblings)
        where = (
            f"[{section}], line {lines.sections[section]}, is inside [{parent}], which is not "
            "defined"
        )
        if guess is None:
            raise InputError(path, lines.sections[section], where)
        typo = siblings[guess]
        raise InputError(
            path,
            lines.sections[typo],
            f"unknown section '{guess}'; did you mean '{parts[depth - 1]}'? ({where})",
            field=typo,
        )


def explain_config_error(
    path: Path, err: ConfigValidationError, config: dict[str, Any] | None, lines: ConfigLines
) -> InputError | None:
    """A setting or section that its block does not take, said where it is written, with
    "did you mean" from the names the block's function takes; None for other errors."""
    for error in err.errors or []:
        match = re.fullmatch(r"unexpected argument: '(.+)'", str(error.get("msg", "")))
        loc = [str(part) for part in error.get("loc", [])]
        if match is None or len(loc) != 2 or config is None:
            continue
        block_path = next(
            (p for p in (f"components.{loc[0]}", loc[0]) if p in lines.sections), None
        )
        if block_path is None:
            continue
        name = match.group(1)
        dotted = f"{block_path}.{name}"
        takes = _arguments(_block(config, block_path))
        guess = closest_name(name, takes)
        kind = "section" if dotted in lines.sections else "setting"
        hint = f"; did you mean '{guess}'?" if guess else ""
        listed = f" ({block_path} takes: {', '.join(takes)})" if takes else ""
        return InputError(path, lines.line_of(dotted), f"unknown {kind}{hint}{listed}",
                          field=dotted)  # fmt: skip
    return None


def _block(config: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _arguments(block: dict[str, Any]) -> list[str]:
    """The settings the block's registered function (or component factory) takes."""
    from spacy.language import Language
    from spacy.util import registry

    function: Callable[..., Any] | None = None
    try:
        if "factory" in block:
            function = registry.factories.get(Language.get_factory_name(str(block["factory"])))
        else:
            ref = next((k for k in block if k.startswith("@")), None)
            if ref is not None:
                function = registry.get(ref[1:], str(block[ref]))
    except Exception:  # an unknown function is confection's to report, not ours
        return []
    if function is None:
        return []
    parameters = inspect.signature(function).parameters.values()
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in plain and p.name not in ("nlp", "name")]


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name a typo most likely meant (the same but for case, else the closest
    spelling).

    >>> closest_name("tsak", ["model", "task"]), closest_name("zzz", ["task"])
    ('task', None)
    """
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def first_line(err: BaseException | str) -> str:
    """An exception's (or a text's) first line; an exception's type where it says nothing."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def config_problem(err: ConfigValidationError) -> str:
    """What a ConfigValidationError says, in one line: its `errors` list what failed
    validation; a bad ${...} substitution has only `desc`."""
    problems = "; ".join(
        f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err.errors or []
    )
    return problems or first_line(err.desc or err.title or "invalid config")
