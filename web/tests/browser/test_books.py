"""The books in the console: the trial balance (now, at a point of the log, by effective time) and
aggregated balances."""

import json
import urllib.parse

from playwright.sync_api import expect

from conftest import open_page, screenshot


def test_the_trial_balance_balances_and_reads_by_position_and_effective_time(page, api, unique):
    payer, payee = f"tb-payer-{unique}", f"tb-payee-{unique}"
    api.account(payer)
    api.account(payee)
    first = api.transfer(f"tb-now-{unique}", payer, payee, 1000)
    status, dated = api.post(
        "/v1/transfers",
        {"id": f"tb-dated-{unique}", "effective_at": "2020-01-15T00:00:00Z",
         "postings": [{"debit": payer, "credit": payee, "amount": 500}]},
    )
    assert status == 201, dated

    # "Now" is what the projection had applied when asked; a position waits for it.
    open_page(page, f"/trial-balance?at_position={dated['position']}")
    books = page.locator('section.books[data-asset="EUR"]')
    expect(books.locator("[data-field=balanced]")).to_have_text("Balanced")
    row = books.locator(f'tr[data-account="{payee}"]')
    expect(row).to_contain_text("15.00")
    expect(row).to_contain_text("debit")
    screenshot(page, "trial-balance")

    # As the log stood right after the first transfer: the dated one was not recorded yet.
    page.get_by_label("Or at log position").fill(str(first["position"]))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-field=point]")).to_contain_text(f"position {first['position']}")
    expect(page.locator(f'tr[data-account="{payee}"]')).to_contain_text("10.00")

    # By effective time: only the leg dated into 2020 had taken effect by February 2020.
    page.get_by_label("Or at log position").fill(str(dated["position"]))
    page.get_by_label("Effective by, UTC").fill("2020-02-01T00:00:00")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-field=point]")).to_contain_text("effective by 2020-02-01 00:00:00 UTC")
    row = page.locator(f'tr[data-account="{payee}"]')
    expect(row).to_contain_text("5.00")
    expect(row).not_to_contain_text("15.00")
    expected = api.get(f"/v1/trial-balance?at_position={dated['position']}&as_of_effective=2020-02-01T00:00:00Z")
    eur = next(a for a in expected["assets"] if a["asset"] == "EUR")
    assert next(line for line in eur["accounts"] if line["id"] == payee)["credits"] == 500


def test_a_bad_point_is_refused_in_words(page, api):
    open_page(page, "/trial-balance?at_position=1&at_time=2026-01-01T00:00")
    expect(page.locator(".error-box")).to_contain_text("at_position or at_time")


def test_balances_are_summed_by_pattern_and_grouped_by_metadata(page, api, unique):
    fund = f"bal-fund-{unique}"
    api.account(fund)
    wallets = {f"bal-{unique}:ann:wallet": "gold", f"bal-{unique}:bob:wallet": "gold", f"bal-{unique}:cy:wallet": "silver"}
    for id, tier in wallets.items():
        status, body = api.post(
            "/v1/accounts", {"id": id, "asset": "EUR", "name": id, "normal_side": "credit", "metadata": {"tier": tier}}
        )
        assert status == 201, body
    # Not a wallet: the pattern leaves it out.
    status, body = api.post(
        "/v1/accounts",
        {"id": f"bal-{unique}:ann:savings", "asset": "EUR", "name": "s", "normal_side": "credit", "metadata": {"tier": "gold"}},
    )
    assert status == 201, body
    for index, id in enumerate([*wallets, f"bal-{unique}:ann:savings"]):
        last = api.transfer(f"bal-t{index}-{unique}", fund, id, 1000 * (index + 1))
    api.get(f"/v1/accounts/{fund}", min_position=last["position"])  # the sums count every write

    open_page(page, "/balances")
    page.get_by_label("Accounts (id pattern)").fill(f"bal-{unique}:*:wallet")
    page.get_by_label("Group by metadata key").fill("tier")
    page.get_by_role("button", name="Sum").click()
    gold = page.locator('tr[data-asset="EUR"][data-value="gold"]')
    silver = page.locator('tr[data-asset="EUR"][data-value="silver"]')
    expect(gold.locator("[data-field=accounts]")).to_have_text("2")
    expect(gold.locator("[data-field=balance]")).to_contain_text("30.00")
    expect(silver.locator("[data-field=balance]")).to_contain_text("30.00")
    expect(page.locator("table.balance-groups tbody tr")).to_have_count(2)
    screenshot(page, "balances")

    # One metadata value selects; without grouping, one sum per asset.
    open_page(page, f"/balances?accounts=bal-{unique}:*:*&metadata_key=tier&metadata_value=gold")
    row = page.locator('tr[data-asset="EUR"]')
    expect(row.locator("[data-field=accounts]")).to_have_text("3")
    expect(row.locator("[data-field=balance]")).to_contain_text("70.00")
    sums = api.get(f"/v1/balances?accounts=bal-{unique}:*:*&metadata=" + urllib.parse.quote(json.dumps({"tier": "gold"})))
    assert [g["balance"] for g in sums["groups"]] == [7000]
