"""The example report's screenshots, for the README and docs/report.md: the top of
examples/output/report.html.

    bash examples/run.sh && .venv/bin/python docs/screenshot.py

Needs Playwright (`pip install -e '.[test]'`) and Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "examples" / "output" / "report.html"
SHOT = ROOT / "docs" / "report.png"


def main() -> None:
    if not PAGE.exists():
        sys.exit(f"{PAGE} not found: run `bash examples/run.sh` first")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(PAGE.as_uri())
        page.screenshot(path=str(SHOT), full_page=False)
        # The first example cards, as a second picture.
        page.evaluate("document.getElementById('examples').scrollIntoView()")
        page.screenshot(path=str(SHOT.with_name("report-examples.png")), full_page=False)
        browser.close()
    print(f"wrote {SHOT}")


if __name__ == "__main__":
    main()
