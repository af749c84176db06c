"""A real doccano server on 127.0.0.1, for the tests of `diff --format doccano`.

doccano 1.8.4 needs Django 4.2 and pandas 1, so it lives in a virtual environment of its own:
`.doccano-venv/` in the repository (`bash .ci/doccano-venv.sh` makes it; tests/run.sh runs
that), or wherever `DISAGREE_DOCCANO` points (the path of a `doccano` executable, with the
venv's `gunicorn` and `celery` beside it). The server gets a fresh SQLite database and media
folder in a temporary folder, one admin user, and no way out (a proxy that refuses everything).

What `doccano webserver` and `doccano task` start, started by hand: the web app under
gunicorn bound to 127.0.0.1 (`doccano webserver` binds every address), and the Celery worker
that runs imports, its queue in the same SQLite database.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import installed
from llm_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "DISAGREE_DOCCANO"
VERSION = "1.8.4"  # what .ci/doccano-venv.sh installs
START_TIMEOUT = 300  # `doccano init` migrates a fresh database first: about 30 s on 2 cores
PROJECT_TYPES = {
    "SequenceLabeling": "SequenceLabelingProject",
    "DocumentClassification": "TextClassificationProject",
}


class DoccanoError(AssertionError):
    pass


class DoccanoServer:
    """doccano's web app and import worker on a free port of 127.0.0.1; stopped on exit."""

    def __init__(self, command: Path, folder: Path) -> None:
        self.bin = command.parent
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Not starting with "-": `doccano createuser --password -x...` reads it as an option.
        self.user, self.password = "admin", "p" + secrets.token_urlsafe(16)
        refuse = "http://127.0.0.1:9"  # the discard port: nothing answers there
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "MEDIA_ROOT": str(folder / "media"),
            # The import queue in a database of its own: sharing the app's SQLite file, the
            # worker's polling locked out the import's own writes now and then.
            "CELERY_BROKER_URL": f"sqla+sqlite:///{folder / 'queue.sqlite3'}",
            "HTTP_PROXY": refuse,
            "HTTPS_PROXY": refuse,
            "http_proxy": refuse,
            "https_proxy": refuse,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        # Django and Celery log every request: a pipe nobody reads would fill up and stall them.
        self.log = tempfile.TemporaryFile()
        self.token = ""

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / "doccano"), *args],
            env=self.env,
            cwd=self.folder,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            timeout=START_TIMEOUT,
        )
        if done.returncode != 0:
            raise DoccanoError(f"doccano {args[0]} failed: {self.output()[-3000:]}")

    def __enter__(self) -> DoccanoServer:
        self._run("init")
        self._run("createuser", "--username", self.user, "--password", self.password)
        backend = subprocess.run(
            [
                str(self.bin / "python"),
                "-c",
                "import backend, os; print(os.path.dirname(backend.__file__))",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
        ).stdout.strip()
        for args in (
            [
                str(self.bin / "gunicorn"),
                "--chdir",
                backend,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--timeout",
                "300",
                "config.wsgi",
            ],
            [
                str(self.bin / "celery"),
                "--app=config",
                f"--workdir={backend}",
                "worker",
                "--loglevel=info",
                "--concurrency=1",
                "--pool=solo",
            ],
        ):
            self.procs.append(
                subprocess.Popen(
                    args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=backend
                )
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                self.__exit__()
                raise DoccanoError(f"doccano exited: {self.output()[-3000:]}")
            # The worker declares the import queue as it starts, and the web app declares it
            # on its first task: kombu's SQL transport checks and inserts without a lock
            # between processes, so the two at once fail one upload with "UNIQUE constraint
            # failed: kombu_queue.name". The server is ready once the worker says so.
            if not re.search(r"celery@\S+ ready\.", self.output()):
                time.sleep(0.5)
                continue
            try:
                answer = self.api(
                    "POST", "/v1/auth/login/", {"username": self.user, "password": self.password}
                )
                self.token = answer["key"]
                return self
            except (OSError, DoccanoError):
                time.sleep(0.5)
        self.__exit__()
        raise DoccanoError(f"doccano did not start within {START_TIMEOUT} s")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Call the REST API as the admin; the answer's JSON (or text), or an error with its
        body."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                content = answer.read()
        except urllib.error.HTTPError as err:
            # A 500's page says nothing: the server's own log says why.
            log = f"\nserver log:\n{self.output()[-3000:]}" if err.code >= 500 else ""
            raise DoccanoError(
                f"{method} {path}: HTTP {err.code}: "
                f"{err.read().decode(errors='replace')[:2000]}{log}"
            ) from None
        try:
            return json.loads(content or b"null")
        except ValueError:
            return content.decode()

    # --- what the tests do with it ---------------------------------------------------------

    def project(self, name: str, project_type: str, *, allow_overlapping: bool = False) -> int:
        answer = self.api(
            "POST",
            "/v1/projects",
            {
                "name": name,
                "description": name,
                "guideline": "",
                "project_type": project_type,
                "resourcetype": PROJECT_TYPES[project_type],
                "random_order": False,
                "collaborative_annotation": False,
                "allow_overlapping": allow_overlapping,
                "grapheme_mode": False,
                "use_relation": False,
                "tags": [],
            },
        )
        return int(answer["id"])

    def import_file(self, project: int, path: Path, task: str) -> list[Any]:
        """Upload a JSONL file as the web page does (filepond, then the import task), wait
        for the worker; the errors the import reported."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="filepond"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        upload = self.api(
            "POST",
            "/v1/fp/process/",
            raw=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        started = self.api(
            "POST",
            f"/v1/projects/{project}/upload",
            {
                "format": "JSONL",
                "task": task,
                "uploadIds": [upload],
                "column_data": "text",
                "column_label": "label",
                "delimiter": ",",
                "encoding": "utf_8",
            },
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = self.api("GET", f"/v1/tasks/status/{started['task_id']}")
            if status.get("ready"):
                if status.get("error"):
                    raise DoccanoError(f"import failed: {status['error']}")
                errors: list[Any] = status["result"]["error"]
                return errors
            time.sleep(0.5)
        raise DoccanoError(f"the import did not finish: {self.output()[-3000:]}")

    def export_jsonl(self, project: int) -> bytes:
        """The project's JSONL export, as Export Dataset downloads it (the admin's file in the
        zip the export task writes)."""
        import io
        import zipfile

        started = self.api("POST", f"/v1/projects/{project}/download",
                           {"format": "JSONL", "exportApproved": False})  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.api("GET", f"/v1/tasks/status/{started['task_id']}").get("ready"):
                break
            time.sleep(0.5)
        else:
            raise DoccanoError(f"the export did not finish: {self.output()[-3000:]}")
        request = urllib.request.Request(
            f"{self.base_url}/v1/projects/{project}/download?taskId={started['task_id']}",
            headers={"Authorization": f"Token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            archive = zipfile.ZipFile(io.BytesIO(answer.read()))
        return archive.read(f"{self.user}.jsonl")

    def examples(self, project: int) -> list[dict[str, Any]]:
        """Every example of a project, in the order they were imported."""
        found: list[dict[str, Any]] = []
        path: str | None = f"/v1/projects/{project}/examples?limit=100&offset=0"
        while path:
            answer = self.api("GET", path)
            found += answer["results"]
            path = answer["next"] and answer["next"].removeprefix(self.base_url)
        return sorted(found, key=lambda example: example["id"])

    def labels(self, project: int, example: int, kind: str) -> list[dict[str, Any]]:
        """The spans (`kind` "spans") or categories of an example, label names in `name`."""
        types = "span-types" if kind == "spans" else "category-types"
        names = {t["id"]: t["text"] for t in self.api("GET", f"/v1/projects/{project}/{types}")}
        found = self.api("GET", f"/v1/projects/{project}/examples/{example}/{kind}")
        return [{**label, "name": names[label["label"]]} for label in found]

    def annotator_highlights(self, project: int, page: int) -> list[str]:
        """The text doccano's own annotator underlines as entities on a page (an example) of a
        sequence-labelling project, entity by entity: Debian's Chromium logs in and opens it as
        a user would, and the characters under each entity's line are read off the drawing.
        Requests to any host but the server are refused."""
        from conftest import loopback_page, once_settled

        base = self.base_url
        with loopback_page(base) as page_:
            page_.goto(f"{base}/auth")
            page_.fill("input[name=username]", self.user)
            page_.fill("input[name=password]", self.password)
            page_.keyboard.press("Enter")
            page_.wait_for_url(lambda url: "/auth" not in url, timeout=60_000)
            page_.goto(f"{base}/projects/{project}/sequence-labeling?page={page}")
            page_.wait_for_selector("svg g > text[id] ~ g line", state="attached", timeout=60_000)
            # Each row of the drawing is a <text> and one <g> per entity with a <line>
            # under it; a character is under the line when its middle is.
            underlined = """() => {
                  const found = [];
                  for (const text of document.querySelectorAll('svg g > text[id]')) {
                    const chars = text.textContent;
                    for (const line of text.parentElement.querySelectorAll('line')) {
                      const x1 = +line.getAttribute('x1'), x2 = +line.getAttribute('x2');
                      let under = '';
                      for (let i = 0; i < text.getNumberOfChars(); i++) {
                        const box = text.getExtentOfChar(i);
                        const middle = box.x + box.width / 2;
                        if (middle > x1 && middle < x2) under += chars[i];
                      }
                      found.push(under);
                    }
                  }
                  return found;
                }"""
            texts = once_settled(page_, lambda: page_.evaluate(underlined))  # every entity drawn
        return texts


def started(folder: Path) -> Iterator[DoccanoServer]:
    """A started server for a test fixture to yield; the test is skipped (failed, where
    DISAGREE_REQUIRE_DOCCANO=1, as in tests/run.sh) when there is no doccano."""
    command = installed(
        ENV_VAR,
        ROOT / ".doccano-venv" / "bin" / "doccano",
        f"no doccano: set {ENV_VAR} to a doccano executable, or run "
        f"bash .ci/doccano-venv.sh (installs doccano=={VERSION} into .doccano-venv)",
        "DISAGREE_REQUIRE_DOCCANO",
    )
    with DoccanoServer(command, folder) as server:
        yield server
