"""End to end in a real browser: a staff member logs in, finds the flagged household on the map
and in the list, opens it, acknowledges and resolves its incident, and sees the timeline updated.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped with
the reason when they are absent. Set ``AREAWATCH_SCREENSHOT_DIR=docs/screenshots`` to refresh
the screenshots in the documentation.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import uvicorn
from sqlmodel import Session, select

from data.tables import Household, Incident
from watch.web import create_app
from watch.web.auth import create_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(loaded_app, database):
    """The dashboard on a real port, over the simulated town after its first collapse."""
    if database.backend != "sqlite":
        pytest.skip("the browser test needs one backend; the API tests cover PostgreSQL")
    from tests.watch.conftest import ONSET, START, walk

    loaded_app.clock.set(START.to_pydatetime())
    walk(loaded_app, ONSET - pd.Timedelta(hours=2), timedelta(hours=12), escalate=False)
    walk(loaded_app, ONSET + pd.Timedelta(hours=10), timedelta(minutes=30))
    with Session(loaded_app.engine) as session:
        incident = session.exec(select(Incident).where(Incident.kind == "inactivity")).first()
        household = session.get(Household, incident.household_id)
        create_user(
            session=session,
            organisation_id=household.organisation_id,
            username="sato",
            password="correct horse battery",
            role="staff",
            now=loaded_app.clock.now(),
        )
        session.commit()
        household_id, incident_id = household.id, incident.id
    app = create_app(
        engine=loaded_app.engine,
        settings=loaded_app.settings,
        clock=loaded_app.clock,
        session_secret="browser-test",
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", household_id, incident_id
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs `pip install selenium`")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=ja"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1600")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _click_and_wait(driver, by: str, value: str) -> None:  # noqa: ANN001
    """Click the element at (``by``, ``value``), then wait until the next page has replaced this
    one (forms post, then redirect).

    A node of a page being replaced is sometimes reported by chromium not as stale but as
    "Node with given id does not belong to the document" (seen in CI now and then): both mean
    the old page is gone.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(element) -> bool:  # noqa: ANN001
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(by, value).click()
    WebDriverWait(driver, 10).until(lambda _: gone(page))


def test_staff_acknowledge_and_resolve_the_flagged_household_in_a_browser(
    served, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, household_id, incident_id = served
    shots = Path(os.environ.get("AREAWATCH_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    browser.get(base + "/")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "username").send_keys("sato")
    browser.find_element(By.ID, "password").send_keys("correct horse battery")
    _click_and_wait(browser, By.CSS_SELECTOR, "form.login button")

    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-household="{household_id}"]')
    assert "status-alert" in row.get_attribute("class")
    first = browser.find_element(By.CSS_SELECTOR, "table.households tbody tr")
    assert first.get_attribute("data-household") == household_id

    # The map: Leaflet drew the area outlines and one marker per household, the flagged one red.
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "area-map").get_attribute("data-ready")
    )
    assert browser.find_element(By.ID, "area-map").get_attribute("data-ready") != "error"
    assert "leaflet-container" in browser.find_element(By.ID, "area-map").get_attribute("class")
    markers = browser.find_elements(By.CSS_SELECTOR, "#area-map path.household-marker")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.households tbody tr")
    assert len(markers) == len(rows) > 1
    assert browser.find_elements(By.CSS_SELECTOR, "#area-map path.household-marker.status-alert")
    assert browser.find_elements(By.CSS_SELECTOR, "#area-map path.leaflet-interactive")
    # Without a tile server the page asks nothing of any other site.
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched and all(url.startswith(base + "/") for url in fetched), fetched
    browser.save_screenshot(str(shots / "area.png"))

    _click_and_wait(browser, By.CSS_SELECTOR, f'tr[data-household="{household_id}"] a')
    assert browser.find_element(By.CSS_SELECTOR, "svg.usage-chart polyline.usage")
    assert browser.find_elements(By.CSS_SELECTOR, "ul.reasons li")
    browser.save_screenshot(str(shots / "household.png"))

    _click_and_wait(browser, By.CSS_SELECTOR, f'a[href="/incidents/{incident_id}"]')
    _click_and_wait(browser, By.ID, "acknowledge")
    assert browser.find_elements(By.CSS_SELECTOR, "tr.event-acknowledged")
    Select(browser.find_element(By.ID, "outcome")).select_by_value("fine")
    _click_and_wait(browser, By.ID, "resolve")
    assert browser.find_element(By.ID, "incident-status").text == "解決"
    assert browser.find_elements(By.CSS_SELECTOR, "tr.event-resolved")
    staff_rows = browser.find_elements(By.CSS_SELECTOR, "tr.event-staff")
    assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in staff_rows] == ["sato", "sato"]


def _popup_of(driver, household_id: str):  # noqa: ANN001, ANN202
    """The open map popup that links to ``household_id``, if any (a closing one may linger)."""
    from selenium.webdriver.common.by import By

    wanted = f"/households/{quote(household_id, safe='')}"
    for content in driver.find_elements(By.CSS_SELECTOR, "#area-map .leaflet-popup-content"):
        links = content.find_elements(By.TAG_NAME, "a")
        if links and links[0].get_attribute("href").endswith(wanted):
            return content
    return None


def test_the_map_popup_of_a_flagged_household_gives_its_reason_in_japanese(served, browser):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from watch.web.reasons import localise_reason

    base, household_id, _ = served
    browser.get(base + "/login")
    browser.find_element(By.ID, "username").send_keys("sato")
    browser.find_element(By.ID, "password").send_keys("correct horse battery")
    _click_and_wait(browser, By.CSS_SELECTOR, "form.login button")
    browser.get(base + "/?lang=ja")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ja"
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "area-map").get_attribute("data-ready")
    )
    assert browser.find_element(By.ID, "area-map").get_attribute("data-ready") != "error"

    # The reason as the detector wrote it (English): the API's ``reason``, in any language.
    english = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/map', {credentials: 'same-origin'}).then(r => r.json()).then(d => done("
        "d.features.find(f => f.properties.id === arguments[0]).properties.reason))",
        household_id,
    )
    japanese = localise_reason(english, "ja")
    assert english and japanese != english  # a reason the page can and must translate

    popup = None
    for marker in browser.find_elements(By.CSS_SELECTOR, "#area-map path.status-alert"):
        marker.click()
        try:
            popup = WebDriverWait(browser, 3).until(lambda d: _popup_of(d, household_id))
            break
        except TimeoutException:
            continue  # another flagged household's marker
    assert popup is not None, f"no alert marker opens {household_id}'s popup"
    assert popup.is_displayed()
    text = popup.text
    assert "警報" in text  # the status in Japanese
    assert japanese in text
    for clause in english.split("; "):
        assert clause not in text, f"English clause {clause!r} in the popup: {text!r}"
    # The same words as the list beside the map.
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-household="{household_id}"]')
    assert row.find_elements(By.TAG_NAME, "td")[-1].text == japanese
