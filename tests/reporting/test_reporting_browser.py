"""report.html in a real browser (headless Debian chromium): it renders offline with no console error and no
request leaving the file, the headline table has rows, every figure has a size, a phone-width window does
not scroll sideways, and it prints. CI installs chromium and sets RUNLOCALAI_BENCH_REQUIRE_BROWSER=1, so
there a missing browser fails instead of skipping."""

import pytest

from browser import browser_required, check_page, find_browser

needs_browser = pytest.mark.skipif(find_browser() is None and not browser_required(),
                                   reason="no chromium + chromedriver (Debian: apt-get install chromium chromium-driver)")


@needs_browser
@pytest.mark.slow
def test_report_renders_offline_in_chromium(smoke_bundle, tmp_path):
    check = check_page(smoke_bundle / "report.html", tmp_path / "shots")
    assert check.console_errors == []
    assert check.requests == [] and check.failed_requests == []
    assert check.headline_rows >= 3
    drawn = {p.stem for p in (smoke_bundle / "figures").glob("*.svg")}
    assert {f.removeprefix("figure-") for f in check.figures} == drawn
    for figure, (width, height) in check.figures.items():
        assert width > 100 and height > 50, f"{figure} rendered at {width}x{height}"
    assert check.not_drawn == ["figure-throughput_by_length"]  # says why in its place instead
    assert check.phone_overflow_px <= 1
    assert check.pdf_bytes > 10_000
    assert (tmp_path / "shots" / "report-first-screen.png").stat().st_size > 0


@needs_browser
def test_the_check_sees_external_requests_and_console_errors(tmp_path):
    """The checker itself: a page that fetches an image from the network and logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'></head><body>"
                    "<img src='http://example.invalid/x.png'><script>console.error('planted')</script></body></html>")
    check = check_page(page)
    assert any("example.invalid" in url for url in check.requests)
    assert check.failed_requests and any("planted" in message for message in check.console_errors)
