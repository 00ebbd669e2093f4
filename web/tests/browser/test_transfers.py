"""Transfers beyond posting: holds placed from the form and resolved together, conditions, and a
transfer's metadata."""

import re

from playwright.sync_api import expect

from conftest import open_page, path_of, position_of, screenshot, set_metadata_in_ui


def fill_leg(page, debit, credit, amount):
    open_page(page, "/transfers/new")
    page.get_by_label("Leg 1 from (debit)").fill(debit)
    page.get_by_label("Leg 1 to (credit)").fill(credit)
    page.get_by_label("Leg 1 amount").fill(amount)


def funded_payer(api, prefix, unique):
    """A payer that may not overdraw, holding 10.00 EUR, and a payee: their ids, and the log
    position of the funding."""
    payer, payee = f"{prefix}-payer-{unique}", f"{prefix}-payee-{unique}"
    api.account(payer, no_overdraft=True)
    api.account(payee)
    funded = api.transfer(f"{prefix}-fund-{unique}", payee, payer, 1000)
    return payer, payee, funded["position"]


def test_a_hold_is_placed_from_the_form_and_posted_in_part(page, api, unique):
    payer, payee, _ = funded_payer(api, "h", unique)
    fill_leg(page, payer, payee, "4.00")
    page.get_by_label("Hold only: reserve the amounts now, post or void them later").check()
    page.get_by_label("Hold expires after").select_option(label="1 hour")
    page.get_by_role("button", name="Post transfer").click()
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    expect(page.locator("[data-field=status]")).to_have_text("pending")
    expect(page.get_by_role("button", name="Post in full")).to_be_visible()
    hold = api.get(f"/v1/transfers/{path_of(page).split('/')[2].split('?')[0]}")
    assert hold["status"] == "pending" and hold["held"][0]["amount"] == 400 and "expires_at" in hold
    account = api.get(f"/v1/accounts/{payer}")
    assert (account["balance"], account["pending_debits"], account["available"]) == (1000, 400, 600)

    # Captured in part: 2.50 of the 4.00 moves, the rest is released.
    page.get_by_text("Post part of it…").click()
    page.get_by_label("Leg 1 amount to post (of 4.00 EUR)").fill("2.50")
    page.get_by_role("button", name="Post these amounts").click()
    expect(page.locator("[data-field=status]")).to_have_text("posted")
    expect(page.locator("table.postings:not(.held) tbody tr")).to_contain_text("2.50")
    account = api.get(f"/v1/accounts/{payer}")
    assert (account["balance"], account["pending_debits"], account["available"]) == (750, 0, 750)


def test_a_condition_that_fails_refuses_the_transfer_in_words(page, api, unique):
    payer, payee, funded = funded_payer(api, "c", unique)
    fill_leg(page, payer, payee, "2.00")
    page.get_by_label("Condition account").fill(payer)
    page.get_by_label("Condition check").select_option("available_at_least")
    page.get_by_label("Condition value").fill("50")
    page.get_by_role("button", name="Post transfer").click()
    error = page.locator('.form-error[data-code="condition_failed"]')
    expect(error).to_have_text(
        f"Condition 1 not met: account {payer} has 10.00 EUR available, and the transfer requires at least 50.00 EUR."
    )
    # Nothing was written, and the form keeps what was typed.
    expect(page.get_by_label("Condition value")).to_have_value("50")
    assert api.get(f"/v1/accounts/{payer}", min_position=funded)["revision"] == 2

    # The revision the operator read: the account is at 2 (opened, funded), so this one goes through.
    page.get_by_label("Condition check").select_option("revision")
    page.get_by_label("Condition value").fill("2")
    page.get_by_role("button", name="Post transfer").click()
    expect(page).to_have_url(re.compile(r"/transfers/t-[^?]+\?min_position=\d+$"))
    assert api.get(f"/v1/accounts/{payer}", min_position=position_of(page))["balance"] == 800


def test_a_malformed_condition_is_named_on_its_field(page, api, unique):
    payer, payee = f"m-payer-{unique}", f"m-payee-{unique}"
    opened = api.account(payer)
    api.account(payee)
    fill_leg(page, payer, payee, "1.00")
    page.get_by_label("Condition account").fill(payer)
    page.get_by_label("Condition check").select_option("revision")
    page.get_by_label("Condition value").fill("two")
    page.get_by_role("button", name="Post transfer").click()
    expect(page.get_by_label("Condition value")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("fieldset.conditions .field-error")).to_have_text(
        "Condition 1: a revision is a whole number, e.g. 3."
    )
    assert api.get(f"/v1/accounts/{payer}", min_position=opened["position"])["revision"] == 1


def place_hold(api, id, debit, credit, amount):
    status, body = api.post(
        "/v1/transfers", {"id": id, "pending": True, "postings": [{"debit": debit, "credit": credit, "amount": amount}]}
    )
    assert status == 201, body
    return body


def test_holds_are_resolved_together_or_not_at_all(page, page_without_js, api, unique):
    payer, payee = f"r-payer-{unique}", f"r-payee-{unique}"
    api.account(payer)
    api.account(payee)
    first, second, third, fourth = (f"r{n}-{unique}" for n in (1, 2, 3, 4))
    for hold in (first, second, third, fourth):
        placed = place_hold(api, hold, payer, payee, 100)

    # Without JavaScript the page stays as loaded while the second hold is voided elsewhere:
    # posting both must fail, and post neither.
    stale = page_without_js
    open_page(stale, f"/transfers?status=pending&min_position={placed['position']}", hydrated=False)
    stale.get_by_label(f"Select {first}").check()
    stale.get_by_label(f"Select {second}").check()
    status, body = api.post(f"/v1/transfers/{second}/void", {})
    assert status == 201, body
    stale.get_by_role("button", name="Post selected together").click()
    error = stale.locator(".resolve-together .form-error")
    expect(error).to_contain_text(f"Hold {second}:")
    expect(error).to_contain_text("None of the selected holds was resolved.")
    # The first one is still open: voiding it is a new resolution (201), not a replay (200).
    status, voided = api.post(f"/v1/transfers/{first}/void", {})
    assert status == 201, voided

    # The list read once both voids are applied: the third and fourth are the open ones.
    open_page(page, f"/transfers?status=pending&min_position={voided['position']}")
    expect(page.locator(f'tr[data-transfer="{first}"]')).to_have_count(0)
    page.get_by_label(f"Select {third}").check()
    page.get_by_label(f"Select {fourth}").check()
    screenshot(page, "holds-pending")
    page.get_by_role("button", name="Void selected together").click()
    expect(page).to_have_url(re.compile(r"/transfers\?status=pending&min_position=\d+$"))
    expect(page.locator(f'tr[data-transfer="{third}"]')).to_have_count(0)
    expect(page.locator(f'tr[data-transfer="{fourth}"]')).to_have_count(0)
    statuses = [api.get(f"/v1/transfers/{hold}", min_position=position_of(page))["status"] for hold in (third, fourth)]
    assert statuses == ["voided", "voided"]


def test_transfer_metadata_is_set_and_removed_from_its_page(page, api, unique):
    payer, payee, id = f"tm-payer-{unique}", f"tm-payee-{unique}", f"tm-{unique}"
    api.account(payer)
    api.account(payee)
    api.transfer(id, payer, payee, 100)
    open_page(page, f"/transfers/{id}")
    metadata = page.get_by_role("region", name="Metadata")
    expect(metadata).to_contain_text("No metadata.")
    set_metadata_in_ui(page, "invoice", "INV-7")
    # A second change from the page that shows the first is a change too, not a replay.
    set_metadata_in_ui(page, "invoice", "INV-8")
    metadata.get_by_role("button", name="Remove invoice").click()
    expect(metadata).to_contain_text("No metadata.")
    assert api.get(f"/v1/transfers/{id}")["metadata"] == {}
    events = api.get(f"/v1/streams/transfer:{id}")["events"]
    assert [e["event_type"] for e in events] == ["TransferPosted"] + ["TransferMetadataSet"] * 3


def test_accounts_and_transfers_are_filtered_by_metadata(page, api, unique):
    gold, plain = f"mf-gold-{unique}", f"mf-plain-{unique}"
    status, body = api.post("/v1/accounts", {"id": gold, "asset": "EUR", "name": gold, "metadata": {"tier": f"g-{unique}"}})
    assert status == 201, body
    api.account(plain)
    status, body = api.post(
        "/v1/transfers",
        {"id": f"mf-t-{unique}", "metadata": {"invoice": f"INV {unique}"},
         "postings": [{"debit": plain, "credit": gold, "amount": 100}]},
    )
    assert status == 201, body
    other = api.transfer(f"mf-other-{unique}", plain, gold, 200)
    api.get(f"/v1/accounts/{gold}", min_position=other["position"])  # the lists show every write

    open_page(page, "/accounts")
    page.get_by_label("Metadata key").fill("tier")
    page.get_by_label("equals").fill(f"g-{unique}")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.accounts tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-account="{gold}"]')).to_be_visible()

    # A value with a space travels encoded, and the list keeps it.
    open_page(page, "/transfers")
    page.get_by_label("Metadata key").fill("invoice")
    page.get_by_label("equals").fill(f"INV {unique}")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.transfers tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-transfer="mf-t-{unique}"]')).to_be_visible()
    expect(page.get_by_label("equals")).to_have_value(f"INV {unique}")


def test_the_consoles_server_answers_refusals_with_their_4xx(page, api, unique):
    payer, payee, funded = funded_payer(api, "s", unique)
    open_page(page, "/transfers/new")

    def post(amount):
        # As the page's script posts the form: fetch, a JSON answer wanted.
        legs = {"id": f"s-{unique}", "legs[0][debit]": payer, "legs[0][credit]": payee, "legs[0][amount]": amount}
        return page.request.post("/api/post_transfer", form=legs, headers={"accept": "application/json"})

    typo = post("ten")
    assert typo.status == 400, typo.text()
    assert (typo.json()["code"], typo.json()["field"]) == ("validation_failed", "legs[0][amount]")
    overdraft = post("500.00")
    assert overdraft.status == 422, overdraft.text()
    assert overdraft.json()["code"] == "limit_exceeded"
    assert api.get(f"/v1/accounts/{payer}", min_position=funded)["revision"] == 2
