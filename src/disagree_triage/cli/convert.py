"""`disagree convert`: the CLI layer over `disagree_triage.convert.convert_file`."""

from __future__ import annotations

import typer

from ._util import (
    GOLD_FORMAT_OPTION,
    LANG_OPTION,
    OVERWRITE_OPTION,
    app,
    safe_table,
    tables_console,
    user_errors,
    warn,
)


@app.command("convert")
def convert_cli(
    input_path: str = typer.Argument(
        ...,
        metavar="INPUT",
        help="Annotations: a Prodigy export (JSONL), a Label Studio export (JSON or JSON-MIN), "
        "a doccano export (JSONL), an Argilla dataset folder or a DocBin (.spacy).",
    ),
    output: str = typer.Argument(..., metavar="OUTPUT", help="The .spacy file to write."),
    labels: str | None = typer.Option(
        None,
        "--ner",
        "--textcat",
        "--spans",
        help="Label map, as predict's: e.g. ORG:ORGANISATION,PERSON (rename ORG, keep PERSON, "
        "drop the rest). Default: every label as it is.",
    ),
    spans_key: str = typer.Option(
        "sc",
        "--spans-key",
        help="Spans (spans_manual tasks) go to doc.spans[KEY], the span group spancat's "
        "spans_key names.",
    ),
    input_format: str = GOLD_FORMAT_OPTION,
    lang: str = LANG_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    include_unannotated: bool = typer.Option(
        False,
        "--include-unannotated",
        help="Convert Prodigy records without an 'answer' (a queue nobody annotated: a model's "
        "spans) as if accepted; without it they are left out, and a file of only those refused.",
    ),
) -> None:
    """Turn annotated examples into a spaCy DocBin (.spacy) for spacy train.

    Only accepted answers become Docs (a Prodigy record without 'answer' was never annotated:
    see --include-unannotated); entities are doc.ents, spans (which may overlap) the span group
    doc.spans[--spans-key], categories doc.cats. Spans that
    do not fall on token boundaries are contracted to the tokens inside them (or left out when
    inside one token), and counted.

    Example:

        disagree convert export.json train.spacy --ner ORG:ORGANISATION,PERSON
    """
    with user_errors():
        from ..convert import convert_file  # spaCy is imported only here

        summary = convert_file(
            input_path,
            output,
            input_format=input_format,
            labels=labels,
            lang=lang,
            overwrite=overwrite,
            include_unannotated=include_unannotated,
            spans_key=spans_key,
        )
    table = safe_table(title=f"convert: {input_path} ({summary.format}) → {output}",
                       show_header=False)  # fmt: skip
    docbin = summary.docbin
    table.add_row("records read", f"{summary.read:,}")
    table.add_row("not accepted (left out)", f"{summary.not_accepted:,}")
    if summary.unannotated:
        taken = "converted" if summary.include_unannotated else "left out"
        table.add_row(f"no answer ({taken})", f"{summary.unannotated:,}")
    table.add_row("docs written", f"{docbin.docs:,}")
    unit = summary.kind.unit
    if summary.kind.is_span_kind:
        where = "doc.ents" if docbin.spans_key is None else f"doc.spans[{docbin.spans_key!r}]"
        table.add_row(f"{unit} written ({where})", f"{docbin.entities:,}")
    for label, count in sorted(docbin.labels.items()):
        table.add_row(f"  {label}", f"{count:,}")
    if docbin.unmapped:
        table.add_row(f"{unit} the label map drops", f"{docbin.unmapped:,}")
    tables_console().print(table)
    for line in summary.warnings():
        warn(line)
