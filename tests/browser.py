"""Debian's chromium driven by Playwright, for the tests that use a page as a person would (keys,
clicks, a reload, a download) and for screenshots of pages.

Playwright never downloads a browser here: it launches the `chromium` on PATH (Debian's package,
tests/install_chromium.sh). Where that or Playwright is missing, the tests marked CHROMIUM_SKIP
are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # requirements.txt has it; a bare environment still runs every other test
    Browser, sync_playwright = None, None

if sync_playwright is None:
    SKIP_REASON = "playwright is not installed (pip install -r requirements.txt): pages cannot be driven in a browser"
elif CHROMIUM is None:
    SKIP_REASON = "chromium is not on PATH (Debian package `chromium`): pages cannot be driven in a browser"
else:
    SKIP_REASON = None
CHROMIUM_SKIP = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


@contextlib.contextmanager
def open_browser() -> Iterator[Browser]:
    """A headless Playwright Browser on Debian's chromium, closed after the block."""
    if SKIP_REASON is not None:
        raise RuntimeError(SKIP_REASON)
    with sync_playwright() as playwright:
        # --no-sandbox: tests run as root in containers, where chromium's sandbox cannot start
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1280, height: int = 900,
               keys: Sequence[str] = (), browser: Browser | None = None) -> Path:
    """Save a PNG screenshot (`width` x `height`, the top of the page as a person first sees it)
    of the page `html_path`, after pressing `keys` (Playwright key names, e.g. "1", "n") in a
    fresh browser profile; return `png_path`. `browser`: one already open (Playwright's sync API
    runs one at a time in a thread, so a caller inside `open_browser` passes its own); None opens one."""
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if browser is None:
            browser = stack.enter_context(open_browser())
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
        stack.callback(context.close)
        page = context.new_page()
        page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
        for key in keys:
            page.keyboard.press(key)
        page.screenshot(path=str(png_path))
    return png_path
