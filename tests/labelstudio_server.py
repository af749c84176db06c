"""A real Label Studio server on 127.0.0.1, for the tests of `diff --format labelstudio`.

Label Studio 1.23 needs Django 5.2, so it lives in a virtual environment of its own:
`.ls-venv/` in the repository (`bash .ci/labelstudio-venv.sh` makes it; tests/run.sh runs
that), or wherever `DISAGREE_LABEL_STUDIO` points (the path of a `label-studio` executable).
The server gets a temporary HOME and data folder, a fresh SQLite database, one user with an
API token, and no way out: its start-up check of PyPI and its analytics are switched off, and
a proxy that refuses everything stands between it and any other host.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import installed
from llm_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "DISAGREE_LABEL_STUDIO"
VERSION = "1.23.2"  # what .ci/labelstudio-venv.sh installs
START_TIMEOUT = 300  # a fresh database is migrated first: about a minute on 2 cores


class LabelStudioError(AssertionError):
    pass


class LabelStudioServer:
    """`label-studio start` on a free port of 127.0.0.1; stopped on exit."""

    def __init__(self, command: Path, folder: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        # Not starting with "-", which `--password -x...` would read as an option.
        self.user, self.password = "u@example.com", "p" + secrets.token_urlsafe(16)
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.args = [
            str(command),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(folder / "data"),
            "--username",
            self.user,
            "--password",
            self.password,
            "--user-token",
            self.token,
            # `Authorization: Token ...`: newer organisations take personal access tokens only.
            "--enable-legacy-api-token",
        ]
        refuse = "http://127.0.0.1:9"  # the discard port: nothing answers there
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "SECRET_KEY": secrets.token_hex(32),
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "CONVERTER_DOWNLOAD_RESOURCES": "false",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "HTTP_PROXY": refuse,
            "HTTPS_PROXY": refuse,
            "http_proxy": refuse,
            "https_proxy": refuse,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        # Django logs every request: a pipe nobody reads would fill up and stall the server.
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> LabelStudioServer:
        self.proc = subprocess.Popen(
            self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabelStudioError(f"label-studio exited: {self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise LabelStudioError(f"label-studio did not start within {START_TIMEOUT} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API as the user; the answer's JSON, or an error with its body."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as err:
            raise LabelStudioError(
                f"{method} {path}: HTTP {err.code}: {err.read().decode(errors='replace')[:2000]}"
            ) from None

    # --- what the tests do with it ---------------------------------------------------------

    def project(self, title: str, label_config: str) -> int:
        return int(
            self.api("POST", "/api/projects", {"title": title, "label_config": label_config})["id"]
        )

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = self.api("POST", f"/api/projects/{project}/import", tasks)
        return answer

    def tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of a project with its predictions, in the order they were imported."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.api(
                "GET", f"/api/tasks?project={project}&fields=all&page={page}&page_size=100"
            )
            found += answer["tasks"]
            if len(found) >= answer["total"] or not answer["tasks"]:
                return sorted(found, key=lambda task: task["id"])
            page += 1

    def annotate(self, task: int, result: list[dict[str, Any]], **fields: Any) -> int:
        """Create an annotation of a task, as an annotator's Submit does; its id."""
        body = {"result": result, **fields}
        return int(self.api("POST", f"/api/tasks/{task}/annotations/", body)["id"])

    def export(self, project: int, export_type: str = "JSON", *, all_tasks: bool = False) -> Any:
        """The project's export, as the Export button downloads it (JSON, JSON_MIN, ...): the
        annotated tasks (cancelled annotations too); every task with `all_tasks`."""
        query = f"exportType={export_type}&download_all_tasks={str(all_tasks).lower()}"
        return self.api("GET", f"/api/projects/{project}/export?{query}")

    def editor_highlights(self, project: int, task: int, model: str) -> list[str]:
        """The text Label Studio's own editor highlights for `model`'s prediction of a task,
        region by region: the project prelabels new annotations with that model's
        prediction, and Debian's Chromium opens the task as a user would. Requests to any
        host but the server are refused."""
        from conftest import loopback_page, once_settled

        self.api("PATCH", f"/api/projects/{project}",
                 {"model_version": model, "show_collab_predictions": True})  # fmt: skip
        base = self.base_url
        with loopback_page(base) as page:
            # imported once loopback_page has checked that Playwright is there (or skipped)
            from playwright.sync_api import TimeoutError as PlaywrightTimeout

            page.goto(f"{base}/user/login/")
            page.fill("input[name=email]", self.user)
            page.fill("input[name=password]", self.password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
            # A user's first visit to a project's Data Manager makes its first tab and
            # opens the task without the prediction; the second visit shows it.
            for attempt in range(3):
                page.goto(f"{base}/projects/{project}/data?task={task}")
                try:
                    page.wait_for_selector(".htx-highlight", state="attached", timeout=60_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
            texts = once_settled(  # every region of the prediction drawn
                page,
                lambda: page.eval_on_selector_all(
                    ".htx-highlight", "marks => marks.map(m => m.textContent)"
                ),
            )
        return texts


def started(folder: Path) -> Iterator[LabelStudioServer]:
    """A started server for a test fixture to yield; the test is skipped (failed, where
    DISAGREE_REQUIRE_LABEL_STUDIO=1, as in tests/run.sh) when there is no Label Studio."""
    command = installed(
        ENV_VAR,
        ROOT / ".ls-venv" / "bin" / "label-studio",
        f"no Label Studio: set {ENV_VAR} to a label-studio executable, or run "
        f"bash .ci/labelstudio-venv.sh (installs label-studio=={VERSION} into .ls-venv)",
        "DISAGREE_REQUIRE_LABEL_STUDIO",
    )
    with LabelStudioServer(command, folder) as server:
        yield server
