"""Read an Argilla dataset folder with the argilla SDK's own code; print what it read as JSON.

Run with the Python of `.argilla-venv` (`bash .ci/argilla-venv.sh`), by tests/test_argilla.py:

    .argilla-venv/bin/python tests/argilla_read.py FOLDER

It does what `rg.Dataset.from_disk(FOLDER)` does up to the first request to a server:
`DatasetModel` from `.argilla/dataset.json`, `Settings.from_json`, the records through
`records.from_json`'s reader, and `records.log`'s ingestion (each record validated and turned
into the request body the SDK would send). No Argilla server runs here (it needs
Elasticsearch), and the SDK's classes check a connection when they are built; that one check
is switched off, nothing else, and no request is ever made (the client points at a closed port).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import argilla as rg
from argilla._api._client import APIClient
from argilla._models import DatasetModel
from argilla.records._io._json import JsonIO


def main(folder: Path) -> None:
    APIClient._validate_connection = lambda self: None  # type: ignore[method-assign]
    client = rg.Argilla(api_url="http://127.0.0.1:9", api_key="no-server", retries=0)
    dataset_path, settings_path, records_path = rg.Dataset._define_child_paths(path=folder)
    model = rg.Dataset._load_dataset_model(path=dataset_path)
    assert isinstance(model, DatasetModel)
    settings = rg.Settings.from_json(path=settings_path)
    dataset = rg.Dataset(name=model.name, settings=settings, client=client)
    records = JsonIO._records_from_json(path=records_path)
    bodies = dataset.records._ingest_records(records=records)
    print(
        json.dumps(
            {
                "dataset": model.model_dump(mode="json"),
                "settings": settings.serialize(),
                "questions": [
                    {"name": q.name, "type": type(q).__name__, "labels": list(q.labels)}
                    for q in settings.questions
                ],
                "fields": [(f.name, type(f).__name__) for f in settings.fields],
                "metadata": [(m.name, type(m).__name__) for m in settings.metadata],
                "records": [r.to_dict() for r in records],
                "bodies": [b.model_dump(mode="json") for b in bodies],
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
