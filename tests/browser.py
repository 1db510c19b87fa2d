"""Open a report in a real headless browser (Debian's chromium through its chromedriver, driven by Selenium)
and record what a reader's browser would see: console errors, every network request the page made, the
headline table's rows, each figure's rendered size, horizontal overflow on a phone-sized window, and a print.

Used by tests/reporting/test_reporting_browser.py; for screenshots of a report, call
``check_page(report_html, screenshot_dir)`` (first screen, the quality-versus-speed figure, a phone-width view).
Selenium is given the chromedriver path, so its driver manager never tries to download anything.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_CANDIDATES = ("chromedriver",)


def find_browser() -> tuple[str, str] | None:
    """(browser binary, chromedriver) when both are installed, else None."""
    browser = next((shutil.which(c) for c in CHROMIUM_CANDIDATES if shutil.which(c)), None)
    driver = next((shutil.which(c) for c in DRIVER_CANDIDATES if shutil.which(c)), None)
    return (browser, driver) if browser and driver else None


@dataclass
class PageCheck:
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, the page itself excluded
    failed_requests: list[str] = field(default_factory=list)
    headline_rows: int = 0
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)  # figure id -> rendered (width, height)
    not_drawn: list[str] = field(default_factory=list)
    phone_overflow_px: float = 0.0
    pdf_bytes: int = 0


def _driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError("no chromium + chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def check_page(path: Path, screenshot_dir: Path | None = None) -> PageCheck:
    """Load ``path`` (a local HTML file) on a desktop-sized and a phone-sized window and report what happened."""
    url = Path(path).resolve().as_uri()
    check = PageCheck(url)
    browser = _driver(1280, 900)
    try:
        browser.get(url)
        browser.execute_script("return document.readyState")
        for entry in browser.get_log("browser"):
            if entry.get("level") == "SEVERE":
                check.console_errors.append(entry.get("message", ""))
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                requested = params.get("request", {}).get("url", "")
                if requested != url:
                    check.requests.append(requested)
            elif message.get("method") == "Network.loadingFailed":
                check.failed_requests.append(f"{params.get('errorText')} ({params.get('requestId')})")
        check.headline_rows = browser.execute_script(
            "return document.querySelectorAll('#headline-table tbody tr').length")
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('figure')).map(f => {"
            " const svg = f.querySelector('svg'); if (!svg) return [f.id, null];"
            " const r = svg.getBoundingClientRect(); return [f.id, [r.width, r.height]]; })")
        for figure_id, box in sizes:
            if box is None:
                check.not_drawn.append(figure_id)
            else:
                check.figures[figure_id] = (float(box[0]), float(box[1]))
        check.pdf_bytes = len(base64.b64decode(browser.print_page()))
        if screenshot_dir is not None:
            screenshot_dir.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(screenshot_dir / "report-first-screen.png"))
            element = browser.find_elements("css selector", "#figure-quality_vs_speed svg")
            if element:
                browser.execute_script("arguments[0].scrollIntoView()", element[0])
                element[0].screenshot(str(screenshot_dir / "report-quality-vs-speed.png"))
        browser.set_window_size(390, 844)
        check.phone_overflow_px = float(browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"))
        if screenshot_dir is not None:
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(str(screenshot_dir / "report-phone.png"))
    finally:
        browser.quit()
    return check


def browser_required() -> bool:
    """CI installs chromium and sets this: there a missing browser is a failure, not a skip."""
    return os.environ.get("RUNLOCALAI_BENCH_REQUIRE_BROWSER") == "1"
