"""Write PNG screenshots of the home, results and source pages (desktop and phone) to docs/.

python tests/screenshots.py        # what `make screenshots` runs
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from support import ROOT, gunicorn_server, launch_chromium

from qa_service.index import build_index

DOCS = ROOT / "docs"
QUESTION = "When+did+LinkedIn+update+its+privacy+policy%3F"
PAGES = {
    "home": "/",
    "results": f"/?q={QUESTION}&k=3",
    "source": f"/sources/001_d2a1e9c52261be42.txt?start=1093&end=1271&q={QUESTION}&k=3#cited",
}
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 375, "height": 740}}


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        index_dir = Path(folder) / "index"
        build_index(ROOT / "seeds", index_dir)
        log_path = Path(folder) / "gunicorn.log"
        settings = {"QA_BACKEND": "whoosh"}
        with (
            gunicorn_server(index_dir, log_path, **settings) as url,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            for device, viewport in VIEWPORTS.items():
                context = browser.new_context(viewport=viewport, is_mobile=device == "mobile")
                page = context.new_page()
                for name, path in PAGES.items():
                    page.goto(url + path)
                    page.wait_for_load_state("networkidle")
                    target = DOCS / f"{name}-{device}.png"
                    page.screenshot(path=str(target), full_page=name != "source")
                    print(target.relative_to(ROOT))
                context.close()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
