"""The review page in a real browser: Debian's headless Chromium driven by selenium.

A reader logs in, opens a study, sees the key frame and an overlay (and zooms it), edits the
Japanese draft, scores and signs; the store holds the signed version and the audit trail, and
a second reader sees the same signed text. A third reader scores a blind set and an admin sees
its Table 4. Every page is photographed into the test's folder; with
ANGIOSCRIBE_DOCS_FIGURES=1 the pictures are also copied to docs/figures/review-*.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from angioscribe.evaluate.blind_review import export_review
from angioscribe.report.records import Draft
from angioscribe.review.app import Review, create_app
from angioscribe.review.blind import load_blind_set
from angioscribe.review.store import ReviewStore
from angioscribe.review.studies import open_target
from review_data import PASSWORDS, add_readers, results_folder

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ready  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DOCS_FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
JA_SIGNED = "右冠動脈造影。RCA #2に50%の狭窄を認めます。至適薬物療法を継続してください。"

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromium-driver not installed")


@pytest.fixture
def site(tmp_path) -> Iterator[tuple[str, Review]]:
    """The review app on a free loopback port, over a results folder and a small blind set."""
    target = open_target(str(results_folder(tmp_path)))
    store = ReviewStore(target.store_url)
    add_readers(store)
    drafts = [Draft(f"case{c}", model, text.format(70 + 10 * c))
              for c in range(2)
              for model, text in (("model-a", "LAD #6 shows {}% stenosis. PCI is recommended."),
                                  ("model-b", "LAD #6に{}%の狭窄を認めます。PCIを推奨します。"))]
    export_review(drafts, tmp_path / "blind", seed=1)
    review = Review(target, store, load_blind_set(tmp_path / "blind"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(review), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", review
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--lang=ja"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def photograph(driver: webdriver.Chrome, folder: Path, name: str, part: Any = None) -> Path:
    """The whole page as PNG (the window stretched to the page's height), or one `part`."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 600), 6000))
    path = folder / f"review-{name}.png"
    if part is None:
        driver.save_screenshot(str(path))
    else:
        part.screenshot(str(path))
    driver.set_window_size(1400, 1000)
    if os.environ.get("ANGIOSCRIBE_DOCS_FIGURES") == "1":
        shutil.copyfile(path, DOCS_FIGURES / path.name)
    return path


def submit(driver: webdriver.Chrome, button_id: str) -> None:
    """Click a form's button and wait until the page its POST redirects to has replaced this
    one: an element looked up before that would be the old page's (stale)."""
    button = driver.find_element(By.ID, button_id)
    button.click()
    WebDriverWait(driver, 10).until(ready.staleness_of(button))


def log_in(driver: webdriver.Chrome, url: str, name: str) -> None:
    driver.get(f"{url}/")
    assert driver.current_url == f"{url}/login"  # redirected without a session
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(ready.url_to_be(f"{url}/"))


def log_out(driver: webdriver.Chrome) -> None:
    driver.find_element(By.XPATH, "//button[text()='Log out']").click()
    WebDriverWait(driver, 10).until(ready.url_contains("/login"))


def loaded(driver: webdriver.Chrome, selector: str) -> bool:
    """Whether the first image matching `selector` arrived and decoded."""
    return driver.execute_script(
        "const i = document.querySelector(arguments[0]);"
        "return Boolean(i && i.complete && i.naturalWidth > 0);", selector)


def test_read_edit_score_sign_and_a_second_reader_sees_the_signed_text(site, browser, tmp_path):
    url, review = site
    browser.get(f"{url}/login")
    photograph(browser, tmp_path, "login")
    log_in(browser, url, "alice")
    photograph(browser, tmp_path, "studies")
    browser.find_element(By.CSS_SELECTOR, "a.study-link").click()
    WebDriverWait(browser, 10).until(lambda d: loaded(d, "img.key-frame")
                                     and loaded(d, "img.overlay"))
    overlay = browser.find_element(By.CSS_SELECTOR, "img.overlay")
    overlay.click()
    assert "zoomed" in overlay.get_attribute("class")
    overlay.click()
    photograph(browser, tmp_path, "study")
    study_url = browser.current_url
    sid = study_url.rsplit("/", 1)[1]

    draft = browser.find_element(By.ID, "draft_ja")
    draft.clear()
    draft.send_keys(JA_SIGNED)
    submit(browser, "save-drafts")
    changes = browser.find_element(By.ID, "changes")
    assert "50 %" in changes.text and "medical" in changes.text
    drafts_section = changes.find_element(By.XPATH, "./ancestor::section")
    photograph(browser, tmp_path, "edited", drafts_section)

    browser.find_element(By.NAME, "overall").clear()
    browser.find_element(By.NAME, "overall").send_keys("7")
    browser.find_element(By.NAME, "stenosis_errors").clear()
    browser.find_element(By.NAME, "stenosis_errors").send_keys("1")
    submit(browser, "save-score")
    submit(browser, "sign")
    assert "signed by alice" in browser.find_element(By.ID, "signed").text
    photograph(browser, tmp_path, "signed")

    (version,) = review.store.versions(sid)
    assert version.signed_by == "alice" and version.texts["ja"] == JA_SIGNED
    assert [a.action for a in review.store.audit(sid)] == ["draft.edit", "score", "sign"]
    (score,) = review.store.scores(sid)
    assert (score.overall, score.errors["stenosis"]) == (7, 1)

    log_out(browser)
    log_in(browser, url, "bob")
    browser.get(study_url)
    assert browser.find_element(By.ID, "draft_ja").get_attribute("value") == JA_SIGNED
    assert "signed by alice" in browser.find_element(By.ID, "signed").text
    photograph(browser, tmp_path, "second-reader")
    assert len(list(tmp_path.glob("review-*.png"))) == 6


def test_blind_review_in_the_browser_and_the_admins_table(site, browser, tmp_path):
    url, review = site
    log_in(browser, url, "bob")
    browser.find_element(By.LINK_TEXT, "Blind review").click()
    photograph(browser, tmp_path, "blind-list")
    codes = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "td a[href^='/blind/R']")]
    assert len(codes) == len(review.blind.drafts)
    for number, code in enumerate(codes):
        browser.get(f"{url}/blind/{code}")
        assert "model-" not in browser.find_element(By.TAG_NAME, "main").text
        browser.find_element(By.NAME, "overall").send_keys(str(5 + number))
        if number == 0:
            photograph(browser, tmp_path, "blind-draft")
        submit(browser, "save-score")
        assert "Score saved" in browser.find_element(By.ID, "message").text
    log_out(browser)
    log_in(browser, url, "carol")
    browser.get(f"{url}/blind/results")
    table = browser.find_element(By.CSS_SELECTOR, "table.table4").text
    assert "model-a" in table and "model-b" in table
    WebDriverWait(browser, 10).until(lambda d: loaded(d, "main img"))
    photograph(browser, tmp_path, "blind-results")
