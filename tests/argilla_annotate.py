"""Annotate an Argilla dataset folder with the argilla SDK's own classes and write it back as
`Dataset.to_disk` does: what a user's folder holds after annotating in Argilla and exporting.

Run with the Python of `.argilla-venv` (`bash .ci/argilla-venv.sh`), by
tests/test_argilla_gold.py:

    .argilla-venv/bin/python tests/argilla_annotate.py FOLDER OUT RESPONSES.json

RESPONSES.json: `{"RECORD_INDEX": [{"value": ..., "status": "submitted", "user_id": UUID}]}`.
The records of FOLDER are read as `rg.Dataset.from_disk` reads them (tests/argilla_read.py),
each response added with `record.responses.add(rg.Response(...))`, and OUT written as
`dataset.to_disk(OUT)` writes it: the dataset model, `settings.to_json`, and `JsonIO.to_json`,
the body of `records.to_json` that `to_disk` calls on the records it fetches. No server runs:
a record that has a submitted response is marked `completed`, as the server marks it once it
has `min_submitted` (1) submitted responses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from uuid import UUID

import argilla as rg
from argilla._api._client import APIClient
from argilla.records._io._json import JsonIO


def main(folder: Path, out: Path, responses_path: Path) -> None:
    APIClient._validate_connection = lambda self: None  # type: ignore[method-assign]
    client = rg.Argilla(api_url="http://127.0.0.1:9", api_key="no-server", retries=0)
    dataset_path, settings_path, records_path = rg.Dataset._define_child_paths(path=folder)
    model = rg.Dataset._load_dataset_model(path=dataset_path)
    settings = rg.Settings.from_json(path=settings_path)
    dataset = rg.Dataset(name=model.name, settings=settings, client=client)
    records = JsonIO._records_from_json(path=records_path)
    wanted = json.loads(responses_path.read_text(encoding="utf-8"))
    for index, answers in wanted.items():
        record = records[int(index)]
        for answer in answers:
            record.responses.add(
                rg.Response(
                    question_name=answer.get("question", "label"),
                    value=answer["value"],
                    user_id=UUID(answer["user_id"]),
                    status=answer["status"],
                )
            )
        if any(a["status"] == "submitted" for a in answers):
            record._model.status = "completed"
    # to_disk's three steps; the dataset model dumped as `_persist_dataset_model` dumps it (its
    # own call asks the server for the workspace first).
    out.mkdir()
    new_dataset, new_settings, new_records = dataset._define_child_paths(path=out)
    new_dataset.write_text(json.dumps(model.model_dump(mode="json")), encoding="utf-8")
    dataset.settings.to_json(path=new_settings)
    JsonIO.to_json(records=records, path=new_records)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
