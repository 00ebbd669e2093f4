"""Signing in and out, and what the console does as whom."""

import json
import re
import urllib.error
import urllib.request

from playwright.sync_api import expect

from conftest import ADMIN_TOKEN, WEB_URL, open_page, path_of, post_transfer_in_ui, screenshot


def test_a_page_needs_sign_in_and_comes_back_after_it(signed_out, api):
    page = signed_out
    page.goto("/transfers?after=5")
    expect(page).to_have_url(re.compile(r"/login\?next=/transfers%3Fafter%3D5$"))
    page.wait_for_selector('[data-hydrated="true"]')
    expect(page.locator("[data-operator]")).to_have_count(0)

    page.get_by_label("Token").fill("ptk_" + "0" * 64)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not accept this token")
    screenshot(page, "sign-in-refused")

    page.get_by_label("Token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/transfers\?after=5$"))
    expect(page.locator('[data-operator="browser-admin"]')).to_contain_text("browser-admin · admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "partida_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "partida_session" and c["value"]]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_a_transfer_posted_in_the_console_names_the_operator(page, api, unique):
    source, target = f"from-{unique}", f"to-{unique}"
    api.account(source)
    api.account(target)
    post_transfer_in_ui(page, [(source, target, "1.00")])
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    transfer_id = path_of(page).split("/")[2].split("?")[0]
    position = path_of(page).split("min_position=")[1]
    stream = api.get(f"/v1/streams/transfer:{transfer_id}?min_position={position}")
    metadata = stream["events"][0]["metadata"]
    assert metadata["actor"] == "browser-admin", metadata
    assert metadata["credential"].startswith("token:"), metadata


def test_a_reader_sees_the_books_but_cannot_post(reader_page, api, unique):
    page = reader_page
    source, target = f"r-from-{unique}", f"r-to-{unique}"
    api.account(source)
    api.account(target)
    open_page(page, f"/accounts/{source}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(source)
    expect(page.locator('[data-operator="browser-reader"]')).to_contain_text("reader")
    post_transfer_in_ui(page, [(source, target, "1.00")])
    expect(page.get_by_role("alert").first).to_contain_text("reader role may not transfer")
    assert api.get(f"/v1/accounts/{target}")["credits"] == 0


def test_forms_refuse_requests_from_other_sites(api):
    # A cross-site form post carries the other site's Origin; the console refuses it before
    # anything reaches the APIs.
    request = urllib.request.Request(
        WEB_URL + "/api/logout",
        data=b"",
        headers={"origin": "https://evil.example", "content-type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a cross-site post was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403
        assert json.load(error)["error"]["code"] == "cross_site_request"
