"""The console end to end, in headless Chromium: what an operator does and sees."""

import os
import re

from playwright.sync_api import expect

from conftest import ADMIN_TOKEN, open_page, path_of, post_transfer_in_ui, screenshot, set_metadata_in_ui


def open_account_in_ui(page, id, name, limit):
    open_page(page, "/accounts/new")
    page.get_by_label("Account id").fill(id)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Asset").select_option("EUR")
    page.locator(f'input[name="limit"][value="{limit}"]').check()
    page.get_by_role("button", name="Open account").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{re.escape(id)}\?min_position=\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def balance_of(page):
    return page.locator('[data-field="balance"]')


def test_open_fund_and_transfer_then_see_both_balances(page, api, unique):
    funding, alice, bob = f"funding-{unique}", f"alice-{unique}", f"bob-{unique}"
    open_account_in_ui(page, funding, "Funding", "none")
    open_account_in_ui(page, alice, "Alice", "no_overdraft")
    screenshot(page, "account-new")
    open_account_in_ui(page, bob, "Bob", "no_overdraft")

    post_transfer_in_ui(page, [(funding, alice, "100.00")], memo="opening balance")
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    expect(page.locator("table.postings")).to_contain_text("100.00 EUR")

    post_transfer_in_ui(page, [(alice, bob, "30.25")])
    expect(page.locator("table.postings")).to_contain_text("30.25 EUR")
    transfer_id = path_of(page).split("/")[2].split("?")[0]
    screenshot(page, "transfer")

    open_page(page, f"/accounts/{alice}")
    expect(balance_of(page)).to_have_text("69.75 EUR")
    entries = page.locator("table.entries tbody tr")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text(transfer_id)
    expect(entries.first).to_contain_text("69.75")
    expect(page.locator(".chart svg polyline")).to_have_count(1)
    screenshot(page, "account")

    open_page(page, f"/accounts/{bob}")
    expect(balance_of(page)).to_have_text("30.25 EUR")
    expect(page.locator("table.entries tbody tr")).to_have_count(1)

    open_page(page, f"/accounts?prefix=alice-{unique}")
    expect(page.locator(f'tr[data-account="{alice}"]')).to_contain_text("69.75 EUR")
    screenshot(page, "accounts")

    open_page(page, "/transfers")
    expect(page.locator(f'tr[data-transfer="{transfer_id}"]')).to_contain_text("30.25 EUR")
    screenshot(page, "transfers")


def test_an_overdraft_is_refused_inline_and_keeps_what_was_typed(page, api, unique):
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    api.account(alice, no_overdraft=True)
    api.account(bob, no_overdraft=True)

    post_transfer_in_ui(page, [(alice, bob, "5.00")])
    alert = page.locator(".form-error")
    expect(alert).to_contain_text(f"Insufficient funds: account {alice}")
    expect(page).to_have_url(re.compile(r"/transfers/new"))
    expect(page.get_by_label("Leg 1 from (debit)")).to_have_value(alice)
    expect(page.get_by_label("Leg 1 amount")).to_have_value("5.00")
    screenshot(page, "transfer-new-rejected")

    # A malformed amount is caught before the API, next to its field.
    page.get_by_label("Leg 1 amount").fill("5.001")
    page.get_by_role("button", name="Post transfer").click()
    expect(page.locator('[data-leg="0"] .field-error')).to_contain_text("at most 2 decimals")
    expect(page.get_by_label("Leg 1 amount")).to_have_attribute("aria-invalid", "true")


def test_a_correction_is_dated_into_an_earlier_period(page, api, unique):
    funding, alice = f"funding-{unique}", f"alice-{unique}"
    api.account(funding)
    api.account(alice)

    post_transfer_in_ui(page, [(funding, alice, "12.00")], effective_at="2025-12-31T23:00:30")
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    expect(page.locator('[data-field="effective_at"]')).to_have_text("2025-12-31 23:00:30 UTC")
    transfer_id = path_of(page).split("/")[2].split("?")[0]
    assert api.get(f"/v1/transfers/{transfer_id}")["effective_at"] == "2025-12-31T23:00:30.000000Z"

    # More than a day ahead is refused above the form, which keeps what was typed.
    post_transfer_in_ui(page, [(funding, alice, "1.00")], effective_at="2099-01-01T00:00:30")
    expect(page.locator('.form-error[data-code="effective_too_late"]')).to_be_visible()
    expect(page.get_by_label("Effective at, UTC (optional)")).to_have_value("2099-01-01T00:00:30")


def test_legs_are_added_and_removed_without_losing_input(page, api, unique):
    source, a, b = f"src-{unique}", f"a-{unique}", f"b-{unique}"
    api.account(source)
    api.account(a)
    api.account(b)
    open_page(page, "/transfers/new")
    page.get_by_label("Leg 1 from (debit)").fill(source)
    page.get_by_label("Leg 1 to (credit)").fill(a)
    page.get_by_label("Leg 1 amount").fill("1")
    page.get_by_role("button", name="Add a leg").click()
    page.get_by_role("button", name="Add a leg").click()
    page.get_by_label("Leg 3 from (debit)").fill(source)
    page.get_by_label("Leg 3 to (credit)").fill(b)
    page.get_by_label("Leg 3 amount").fill("2.50")
    page.get_by_role("button", name="Remove leg 2").click()
    expect(page.locator(".leg")).to_have_count(2)
    expect(page.get_by_label("Leg 2 to (credit)")).to_have_value(b)
    expect(page.get_by_label("Leg 1 to (credit)")).to_have_value(a)
    page.get_by_role("button", name="Post transfer").click()
    postings = page.locator("table.postings tbody tr")
    expect(postings).to_have_count(2)
    expect(postings.nth(1)).to_contain_text("2.50 EUR")


def test_a_resubmit_after_a_network_error_posts_once(page, api, unique):
    source, target = f"src-{unique}", f"dst-{unique}"
    api.account(source)
    api.account(target, no_overdraft=True)
    cut = {"done": False}

    def lose_the_first_answer(route):
        # The request reaches the server (and is written); the browser never sees the answer.
        if not cut["done"]:
            cut["done"] = True
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/post_transfer", lose_the_first_answer)
    post_transfer_in_ui(page, [(source, target, "7.00")])
    expect(page.locator(".form-error")).to_contain_text("cannot be reached")
    page.get_by_role("button", name="Post transfer").click()
    expect(page).to_have_url(re.compile(r"/transfers/t-"))
    account = api.get(f"/v1/accounts/{target}")
    assert account["balance"] == 700, account
    assert len(api.get(f"/v1/accounts/{target}/entries")["entries"]) == 1


def test_live_feed_and_account_page_update_when_the_api_posts(browser, page, api, unique):
    source, target = f"src-{unique}", f"dst-{unique}"
    api.account(source)
    api.account(target, no_overdraft=True)
    open_page(page, "/")
    expect(page.locator(".live-status")).to_have_attribute("data-live", "true")
    account_page = page.context.new_page()
    open_page(account_page, f"/accounts/{target}")
    expect(balance_of(account_page)).to_have_text("0.00 EUR")
    expect(account_page.locator(".live-status")).to_have_attribute("data-live", "true")

    transfer_id = f"live-{unique}"
    api.transfer(transfer_id, source, target, 4200)

    expect(page.locator(".feed-list")).to_contain_text(f"transfer {transfer_id} posted")
    expect(page.locator("table.transfers")).to_contain_text(transfer_id)
    expect(balance_of(account_page)).to_have_text("42.00 EUR")
    expect(account_page.locator("table.entries")).to_contain_text(transfer_id)
    screenshot(page, "dashboard")
    screenshot(account_page, "account-live")


def test_event_log_filters_and_shows_hashes(page, api, unique):
    id = f"log-{unique}"
    api.account(id)
    open_page(page, "/log")
    screenshot(page, "log")
    page.get_by_label("Stream").fill(f"account:{id}")
    page.get_by_role("button", name="Filter").click()
    events = page.locator("li.log-event")
    expect(events).to_have_count(1)
    events.first.locator("summary").click()
    expect(events.first.locator(".hash").first).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(events.first).to_contain_text("AccountOpened")

    open_page(page, "/log?type=AssetRegistered")
    expect(page.locator("li.log-event").first).to_contain_text("AssetRegistered")
    expect(page.locator("li.log-event", has_text="AccountOpened")).to_have_count(0)

    open_page(page, "/system")
    expect(page.locator('tr[data-projection="ledger"]')).to_be_visible()
    expect(page.locator('[data-service="query-api"]')).to_contain_text("Ready")
    screenshot(page, "system")


def test_freeze_and_unfreeze_from_the_account_page(page, api, unique):
    id = f"acct-{unique}"
    api.account(id)
    open_page(page, f"/accounts/{id}")
    page.get_by_role("button", name="Freeze").click()
    expect(page.locator(".status")).to_have_text("frozen")
    page.get_by_role("button", name="Unfreeze").click()
    expect(page.locator(".status")).to_have_text("open")


def test_reading_and_forms_work_without_javascript(page_without_js, api, unique):
    page = page_without_js
    id = f"nojs-{unique}"
    open_page(page, "/accounts/new", hydrated=False)
    page.get_by_label("Account id").fill("bad id!")
    page.get_by_label("Name").fill("Typed name")
    page.get_by_role("button", name="Open account").click()
    # The server redirected back with the error; what was typed is still there.
    expect(page.locator("#id-error")).to_contain_text("letters, digits")
    expect(page.get_by_label("Name")).to_have_value("Typed name")

    page.get_by_label("Account id").fill(id)
    page.get_by_role("button", name="Open account").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{id}\?min_position=\d+$"))
    expect(balance_of(page)).to_have_text("0.00 EUR")

    open_page(page, "/", hydrated=False)
    expect(page.get_by_role("heading", name="Totals per asset")).to_be_visible()
    expect(page.locator("table.totals")).to_contain_text("EUR")


def test_a_transfer_is_reversed_after_a_confirmation(page, api, unique):
    source, target = f"src-{unique}", f"dst-{unique}"
    api.account(source)
    api.account(target, no_overdraft=True)
    original = f"rev-me-{unique}"
    api.transfer(original, source, target, 1234)
    open_page(page, f"/transfers/{original}")
    page.get_by_role("link", name="Reverse this transfer…").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Reverse transfer {original}?")
    screenshot(page, "transfer-reverse-confirm")
    dialog.get_by_role("button", name="Reverse it").click()
    expect(page.locator(".facts")).to_contain_text(f"Reverses{original}")
    expect(page.locator("table.postings tbody tr").first).to_contain_text(f"{target}")
    open_page(page, f"/transfers/{original}")
    expect(page.locator("[data-reversed-by]")).to_be_visible()
    expect(page.get_by_role("link", name="Reverse this transfer…")).to_have_count(0)
    assert api.get(f"/v1/accounts/{target}")["balance"] == 0


def test_a_hold_shows_what_it_reserves_and_is_posted_from_its_page(page, api, unique):
    source, target = f"holder-{unique}", f"payee-{unique}"
    api.account(source, no_overdraft=True)
    api.account(target)
    api.transfer(f"fund-{unique}", target, source, 10000)
    hold = f"hold-{unique}"
    status, body = api.post(
        "/v1/transfers",
        {"id": hold, "pending": True, "timeout_secs": 3600,
         "postings": [{"debit": source, "credit": target, "amount": 2500}]},
    )
    assert status == 201, body
    open_page(page, f"/accounts/{source}?min_position={body['position']}")
    expect(page.locator("[data-field=held]")).to_contain_text("25.00")
    expect(page.locator("[data-field=available]")).to_contain_text("75.00")
    # Opened, funded, held: three events changed the account.
    expect(page.locator("[data-field=revision]")).to_have_text("3")
    open_page(page, f"/transfers/{hold}")
    expect(page.locator("[data-field=status]")).to_have_text("pending")
    expect(page.locator("table.held tbody tr").first).to_contain_text("25.00")
    screenshot(page, "transfer-hold")
    page.get_by_role("button", name="Post in full").click()
    expect(page.locator("[data-field=status]")).to_have_text("posted")
    expect(page.get_by_role("button", name="Void")).to_have_count(0)
    account = api.get(f"/v1/accounts/{source}")
    assert (account["balance"], account["pending_debits"], account["available"]) == (7500, 0, 7500)


PAGES = [
    "/", "/accounts", "/accounts/new", "/transfers", "/transfers?status=pending", "/transfers/new", "/balances",
    "/trial-balance", "/log", "/system",
]


def test_every_page_has_one_title_labelled_controls_and_works_by_keyboard(page, api, unique):
    # An open hold, so the pending list has its boxes to check.
    api.account(f"a11y-a-{unique}")
    api.account(f"a11y-b-{unique}")
    status, body = api.post(
        "/v1/transfers",
        {"id": f"a11y-hold-{unique}", "pending": True,
         "postings": [{"debit": f"a11y-a-{unique}", "credit": f"a11y-b-{unique}", "amount": 1}]},
    )
    assert status == 201, body
    api.get(f"/v1/transfers/a11y-hold-{unique}", min_position=body["position"])
    for path in PAGES:
        open_page(page, path)
        expect(page.locator("h1")).to_have_count(1)
        expect(page.get_by_role("main")).to_have_count(1)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
                 .filter(el => !el.hidden && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                               && !(el.textContent || '').trim())
                 .map(el => el.outerHTML)"""
        )
        assert unlabelled == [], f"{path}: controls without a label: {unlabelled}"
    # The first Tab reaches the skip link, which moves focus to the content.
    open_page(page, "/accounts")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_pages_fit_a_phone(browser, api):
    context = browser.new_context(
        base_url=os.environ["PARTIDA_WEB_URL"], viewport={"width": 390, "height": 844}, is_mobile=True
    )
    context.add_cookies([{"name": "partida_session", "value": ADMIN_TOKEN, "url": os.environ["PARTIDA_WEB_URL"]}])
    page = context.new_page()
    for path, name in [("/", "dashboard-phone"), ("/transfers/new", "transfer-new-phone")]:
        open_page(page, path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        screenshot(page, name)
    context.close()


def test_a_multi_leg_transfer_posts_without_javascript(page_without_js, api, unique):
    page = page_without_js
    source, a, b = f"src-{unique}", f"a-{unique}", f"b-{unique}"
    api.account(source)
    api.account(a, no_overdraft=True)
    api.account(b, no_overdraft=True)
    open_page(page, "/transfers/new", hydrated=False)
    page.get_by_label("Leg 1 from (debit)").fill(source)
    page.get_by_label("Leg 1 to (credit)").fill(a)
    page.get_by_label("Leg 1 amount").fill("3")
    # Without JavaScript, "Add a leg" is a round trip that carries what was typed.
    page.get_by_role("button", name="Add a leg").click()
    expect(page.get_by_label("Leg 1 to (credit)")).to_have_value(a)
    page.get_by_label("Leg 2 from (debit)").fill(source)
    page.get_by_label("Leg 2 to (credit)").fill(b)
    page.get_by_label("Leg 2 amount").fill("4.5")
    page.get_by_role("button", name="Post transfer").click()
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    expect(page.locator("table.postings tbody tr")).to_have_count(2)
    assert api.get(f"/v1/accounts/{b}")["balance"] == 450


def test_the_system_page_shows_the_latest_signed_checkpoint(page, api, unique):
    api.account(f"cp-{unique}")
    status, checkpoint = api.post("/v1/audit/checkpoints", {})
    assert status in (200, 201), checkpoint
    open_page(page, "/system")
    facts = page.locator("[data-checkpoint]")
    expect(facts).to_contain_text(checkpoint["merkle_root"])
    expect(facts).to_contain_text(checkpoint["key_id"])


def test_metadata_is_set_and_removed_from_the_account_page(page, api, unique):
    id = f"meta-{unique}"
    api.account(id)
    open_page(page, f"/accounts/{id}")
    metadata = page.get_by_role("region", name="Metadata")
    expect(metadata).to_contain_text("No metadata.")
    set_metadata_in_ui(page, "tier", "gold")
    assert api.get(f"/v1/accounts/{id}")["metadata"] == {"tier": "gold"}

    metadata.get_by_role("button", name="Remove tier").click()
    expect(metadata).to_contain_text("No metadata.")
    assert api.get(f"/v1/accounts/{id}")["metadata"] == {}
    events = api.get(f"/v1/streams/account:{id}")["events"]
    assert [e["event_type"] for e in events] == ["AccountOpened", "AccountMetadataSet", "AccountMetadataSet"]
    assert events[2]["data"]["metadata"] == {"tier": None}


def test_personal_data_is_erased_from_the_account_page(page, api, unique):
    id, subject = f"pii-{unique}", f"customer-{unique}"
    personal = {"subject": subject, "data": {"name": "Ann Example"}}
    status, body = api.post("/v1/accounts", {"id": id, "asset": "EUR", "name": id, "metadata": {"personal": personal}})
    assert status == 201, body
    open_page(page, f"/accounts/{id}")
    section = page.get_by_role("region", name="Personal data")
    expect(section).to_contain_text(f"Sealed under the key of data subject {subject}")
    expect(page.locator('tr[data-key="personal"]')).to_contain_text("Ann Example")
    section.get_by_role("button", name=f"Erase personal data of {subject}").click()
    expect(section).to_contain_text(f"The personal data of {subject} is erased.")
    expect(page.locator('tr[data-key="personal"]')).not_to_contain_text("Ann Example")
    assert api.get(f"/v1/accounts/{id}")["metadata"]["personal"] == {"subject": subject, "erased": True}
    events = api.get(f"/v1/streams/subject:{subject}")["events"]
    assert [e["event_type"] for e in events] == ["PersonalDataErased"]
