"""The page of nmt serve in a real headless Chromium: type, translate, read it back."""

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from test_serving_app import Server
from test_translate import make_checkpoint


@pytest.fixture
def browser(monkeypatch, tmp_path):
    chromium = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, (
        "the page test needs Debian's chromium and chromium-driver: `make test` installs them"
    )
    monkeypatch.setenv("SE_OFFLINE", "true")  # never look for a driver on the network
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_page_translates_what_is_typed_and_shows_attention(browser, tmp_path):
    make_checkpoint(tmp_path / "best.pt", train_max_src_tokens=8)
    lines = ["Le chat est noir.", "la maison"]
    with Server(tmp_path, max_wait_ms=5) as server:
        expected = server.expected(lines, 3)
        browser.get(server.base + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-line"), "fr → en"))
        beam = browser.find_element(By.ID, "beam")
        assert beam.get_attribute("value") == "5"  # the server's default, from /model
        beam.clear()
        beam.send_keys("3")
        browser.find_element(By.ID, "source").send_keys("\n".join(lines))
        browser.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "2 sentences in"))
        targets = browser.find_elements(By.CSS_SELECTOR, "#translations li .target")
        assert [t.text for t in targets] == [e.strip() for e in expected]

        # the first sentence's attention: a row per target piece, a column per source piece
        heads = browser.find_elements(By.CSS_SELECTOR, "#attention thead th")
        assert [h.text for h in heads[1:]] == ["le", "chat", "est", "noir", "."]
        rows = browser.find_elements(By.CSS_SELECTOR, "#attention tbody tr")
        assert rows and all(len(r.find_elements(By.TAG_NAME, "td")) == 5 for r in rows)
        # clicking the second translation shows its attention
        browser.find_elements(By.CSS_SELECTOR, "#translations li")[1].click()
        heads = browser.find_elements(By.CSS_SELECTOR, "#attention thead th")
        assert [h.text for h in heads[1:]] == ["la", "maison"]
        assert "of sentence 2" in browser.find_element(By.ID, "attention-of").text
        browser.save_screenshot(str(tmp_path / "page.png"))


def test_the_page_shows_an_error_from_the_server(browser, tmp_path):
    make_checkpoint(tmp_path / "best.pt")
    with Server(tmp_path, max_chars=10) as server:
        browser.get(server.base + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-line"), "fr → en"))
        browser.find_element(By.ID, "source").send_keys("le chat est noir et la maison")
        browser.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "at most 10"))
        assert browser.find_element(By.ID, "status").get_attribute("class") == "error"
        assert browser.find_elements(By.CSS_SELECTOR, "#translations li") == []
