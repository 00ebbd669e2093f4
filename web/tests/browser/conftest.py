"""Fixtures for the console's browser tests: Debian's Chromium driven by Playwright, against a
stack that `cargo xtask test` started (its URLs come in the environment)."""

import json
import os
import pathlib
import re
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

WEB_URL = os.environ["PARTIDA_WEB_URL"].rstrip("/")
COMMAND_URL = os.environ["PARTIDA_COMMAND_URL"].rstrip("/")
QUERY_URL = os.environ["PARTIDA_QUERY_URL"].rstrip("/")
SCREENSHOTS = pathlib.Path(os.environ.get("PARTIDA_SCREENSHOTS", "target/browser/screenshots"))
CHROMIUM = os.environ.get("PARTIDA_CHROMIUM", "/usr/bin/chromium")
# API tokens `cargo xtask test` created: an admin's (subject browser-admin) and a reader's
# (subject browser-reader).
ADMIN_TOKEN = os.environ["PARTIDA_ADMIN_TOKEN"]
READER_TOKEN = os.environ["PARTIDA_READER_TOKEN"]

# Chromium as root, in a closed network: no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Api:
    """The APIs, called directly (as an application would), to set up and to cause changes."""

    def post(self, path, body):
        request = urllib.request.Request(
            COMMAND_URL + path,
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def get(self, path, min_position=None):
        """Reads from query-api; with `min_position`, once the projection has applied that write."""
        if min_position is not None:
            path += ("&" if "?" in path else "?") + f"min_position={min_position}"
        request = urllib.request.Request(QUERY_URL + path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def asset(self, code="EUR", scale=2):
        status, body = self.post("/v1/assets", {"code": code, "scale": scale})
        assert status in (200, 201), body

    # The two writers below return once query-api shows what they wrote (read-your-writes through
    # `min_position`, as the console's own writes do): a page opened next must find it, however
    # far the projector is behind.

    def account(self, id, asset="EUR", no_overdraft=False):
        flags = {"debits_must_not_exceed_credits": True} if no_overdraft else {}
        status, body = self.post("/v1/accounts", {"id": id, "asset": asset, "name": id, "flags": flags})
        assert status in (200, 201), body
        self.get(f"/v1/accounts/{id}", min_position=body["position"])
        return body

    def transfer(self, id, debit, credit, amount):
        status, body = self.post(
            "/v1/transfers", {"id": id, "postings": [{"debit": debit, "credit": credit, "amount": amount}]}
        )
        assert status == 201, body
        self.get(f"/v1/transfers/{id}", min_position=body["position"])
        return body


@pytest.fixture(scope="session")
def api():
    api = Api()
    api.asset("EUR", 2)
    return api


@pytest.fixture
def unique():
    """A short suffix that keeps each test's ids apart in the shared database."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def browser():
    # Playwright gives each launch a fresh, temporary profile.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _context(browser, javascript, token=ADMIN_TOKEN):
    """A fresh browser profile, signed in with `token` (its session cookie set) unless None."""
    context = browser.new_context(base_url=WEB_URL, java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    if token is not None:
        context.add_cookies(
            [{"name": "partida_session", "value": token, "url": WEB_URL, "httpOnly": True, "sameSite": "Strict"}]
        )
    return context


@pytest.fixture
def signed_out(browser):
    context = _context(browser, javascript=True, token=None)
    yield context.new_page()
    context.close()


@pytest.fixture
def reader_page(browser):
    context = _context(browser, javascript=True, token=READER_TOKEN)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(browser):
    context = _context(browser, javascript=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page_without_js(browser):
    context = _context(browser, javascript=False)
    yield context.new_page()
    context.close()


def open_page(page, path, hydrated=True):
    """Goes to a page and (unless JavaScript is off) waits until it is hydrated: interactive."""
    page.goto(path)
    if hydrated:
        page.wait_for_selector('[data-hydrated="true"]')


def post_transfer_in_ui(page, legs, memo="", effective_at=""):
    """Fills the new-transfer form with `legs` (debit, credit, amount as typed) and posts it."""
    open_page(page, "/transfers/new")
    for index, (debit, credit, amount) in enumerate(legs):
        if index > 0:
            page.get_by_role("button", name="Add a leg").click()
        page.get_by_label(f"Leg {index + 1} from (debit)").fill(debit)
        page.get_by_label(f"Leg {index + 1} to (credit)").fill(credit)
        page.get_by_label(f"Leg {index + 1} amount").fill(amount)
    if memo:
        page.get_by_label("Memo (optional)").fill(memo)
    if effective_at:
        page.get_by_label("Effective at, UTC (optional)").fill(effective_at)
    page.get_by_role("button", name="Post transfer").click()


def set_metadata_in_ui(page, key, value):
    """Sets a metadata key from an account's or a transfer's page, and waits until it shows."""
    metadata = page.get_by_role("region", name="Metadata")
    metadata.get_by_label("Key").fill(key)
    metadata.get_by_label("Value").fill(value)
    metadata.get_by_role("button", name="Set").click()
    expect(page.locator(f'tr[data-key="{key}"]')).to_contain_text(value)


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def position_of(page):
    """The log position in the page's URL (`min_position`), where a write redirected to."""
    return int(re.search(r"min_position=(\d+)", page.url).group(1))


def path_of(page):
    return re.sub(r"^https?://[^/]+", "", page.url)
