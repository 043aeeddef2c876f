"""A real browser: headless Chromium opens ``fedleak view`` on loopback and reads a metric.

With ``FEDLEAK_SCREENSHOTS=1`` it also saves the pages it visits to ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

REPOSITORY = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPOSITORY / "docs" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "apt-get install -y chromium chromium-driver"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    """Poll streamlit's health endpoint until it answers "ok"; fail with its log otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"fedleak view exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the viewer did not answer within {timeout_s} s:\n{log.read_text()}")


@pytest.fixture
def viewer_url(runs_root: Path, tmp_path: Path) -> Iterator[str]:
    """``fedleak view runs_root`` on a free loopback port; stopped (only it) afterwards."""
    port, log = free_port(), tmp_path / "viewer.log"
    command = [sys.executable, "-c", "from apps.cli import main; main()"]
    command += ["view", str(runs_root), "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: fedleak and its streamlit
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium driven by the system chromedriver, with a fresh profile."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail(f"Chromium and its driver are needed for this test: {INSTALL_HINT}")
    options = Options()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    options.add_argument("--window-size=1440,1700")
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


def shown_metric(browser: WebDriver, label: str, timeout_s: float = 30) -> str:
    """The value of the ``st.metric`` tile labelled ``label``, once the page has drawn it."""

    def find(driver: WebDriver) -> str | None:
        for tile in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            name = tile.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')
            value = tile.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
            if name and value and name[0].text.strip() == label:
                return value[0].text.strip() or None
        return None

    return WebDriverWait(browser, timeout_s, poll_frequency=0.2).until(find)


def wait_for(browser: WebDriver, selector: str, timeout_s: float = 30) -> None:
    WebDriverWait(browser, timeout_s, poll_frequency=0.2).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, selector)
    )


def wait_images_loaded(browser: WebDriver, timeout_s: float = 30) -> None:
    WebDriverWait(browser, timeout_s, poll_frequency=0.2).until(
        lambda driver: driver.execute_script(
            "const images = [...document.querySelectorAll('[data-testid=\"stImage\"] img')];"
            "return images.length > 0 && images.every(image => image.complete"
            " && image.naturalWidth > 0);"
        )
    )


def save_screenshot(browser: WebDriver, name: str) -> None:
    if os.environ.get("FEDLEAK_SCREENSHOTS") != "1":
        return
    time.sleep(1.0)  # charts and the data grid draw on canvases after the DOM settles
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_chromium_shows_the_stores_median_psnr(
    viewer_url: str, browser: WebDriver, runs_root: Path
) -> None:
    store = f"file:{runs_root / 'bench' / 'results.sqlite'}?mode=ro"
    with sqlite3.connect(store, uri=True) as db:
        psnrs = [row[0] for row in db.execute("SELECT psnr FROM cells WHERE status = 'done'")]
    db.close()

    browser.get(viewer_url)
    wait_for(browser, '[data-testid="stDataFrame"]')
    assert "fedleak runs" in [title.text for title in browser.find_elements(By.TAG_NAME, "h1")]
    save_screenshot(browser, "landing")

    browser.get(f"{viewer_url}?run=bench")

    assert shown_metric(browser, "median PSNR") == f"{statistics.median(psnrs):.2f} dB"
    assert shown_metric(browser, "failed") == "1"
    wait_images_loaded(browser)
    save_screenshot(browser, "bench")
    if os.environ.get("FEDLEAK_SCREENSHOTS") == "1":
        for run, name in [("attack", "attack"), ("sim", "simulation")]:
            browser.get(f"{viewer_url}?run={run}")
            shown_metric(browser, "PSNR")
            wait_images_loaded(browser)
            save_screenshot(browser, name)
