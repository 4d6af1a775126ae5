"""What a message costs: the shipped per-country rate tables (SMS per segment, WhatsApp per message and
category), a shop's own rates over them (`chorus channels rates`, `PUT /api/channels/<channel>/rates`), the
estimate a message records at hand-over, and what Meta's status webhook says of the price afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from connectors.whatsapp.cloud import webhook_signature
from shopify_app.app import create_app
from shopify_app.cli import main
from shopify_app.messaging.accounts import connect, parse_account, set_rate
from shopify_app.messaging.costs import WHATSAPP_CATEGORIES, OwnRate, Price, shipped_rates
from shopify_app.messaging.directory import directory_for, send_test_message
from shopify_app.models import ChannelRate, Message, Shop
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests import test_sms_flow as sms_flow
from tests import test_whatsapp_flow as whatsapp_flow
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.pipeline import deliver, process
from tests.support.shopify_auth import bearer, session_token
from tests.support.webhooks import OTHER_SHOP, SHOP
from tests.test_abandoned_checkout_flow import AFTER_DUE, run_worker
from tests.test_sms_flow import SENDER, SID, TEXTING, TOKEN, TWILIO, _created, abandon_by_sms
from tests.test_whatsapp_callbacks import APP_SECRET, PHONE_NUMBER_ID, post, webhook
from tests.test_whatsapp_flow import abandon_with_number, opt_in, set_template

# The SMS and WhatsApp flows' fixtures: a shop with its Twilio account, or its WhatsApp number, connected.
mail_runtime, smtp, store, sms_store, twilio = (sms_flow.mail_runtime, sms_flow.smtp, sms_flow.store,
                                                sms_flow.sms_store, sms_flow.twilio)  # fmt: skip
wa_store, graph = whatsapp_flow.wa_store, whatsapp_flow.graph

GERMAN = "+4915112345678"
JAPANESE = "+819012345678"  # no row of its own in either table
WAMID = "wamid.HBgLMTQxNTU1NTAxMjM"  # what the faked Cloud API answers


def chorus(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=chorus_env(db_url))


def own_rates(db: Db) -> list[tuple[str, str, str, str, str]]:
    return [(r.channel, r.country, r.category, f"{r.amount}", r.currency) for r in db.all(ChannelRate)]


# The shipped tables


def test_the_shipped_whatsapp_table_prices_a_message_by_country_and_category() -> None:
    rates = shipped_rates("whatsapp")

    assert rates.estimate(GERMAN, "marketing") == Price(Decimal("0.1365"), "USD")
    assert rates.estimate(GERMAN, "utility") == Price(Decimal("0.0550"), "USD")
    assert rates.estimate("+14155550123", "marketing") == Price(Decimal("0.0250"), "USD")
    assert rates.estimate("+919876543210", "marketing") == Price(Decimal("0.0107"), "USD")
    assert rates.estimate(JAPANESE, "authentication") == Price(rates.default["authentication"], "USD")
    assert rates.estimate("not a number", "marketing") == Price(rates.default["marketing"], "USD")
    # Every country it lists is priced in every category (a missing one would silently take the default).
    countries = {country for country, _category in rates.shipped}
    assert len(countries) >= 20
    assert set(rates.shipped) == {(c, category) for c in countries for category in WHATSAPP_CATEGORIES}
    assert set(rates.default) == set(WHATSAPP_CATEGORIES)


def test_the_shipped_sms_table_prices_each_segment() -> None:
    rates = shipped_rates("sms")

    assert rates.estimate("+14155550123", count=3) == Price(Decimal("0.0249"), "USD")
    assert rates.estimate(GERMAN) == Price(Decimal("0.0884"), "USD")
    assert rates.estimate(JAPANESE, count=2) == Price(rates.default[""] * 2, "USD")


def test_a_shops_own_rates_come_first_in_their_own_currency() -> None:
    own = {
        ("DE", "marketing"): Price(Decimal("0.0900"), "EUR"),
        ("*", "marketing"): Price(Decimal("0.0300"), "USD"),
    }
    rates = shipped_rates("whatsapp").with_own(own)

    assert rates.estimate(GERMAN, "marketing") == Price(Decimal("0.0900"), "EUR")  # its rate for the country
    assert rates.estimate("+33612345678", "marketing") == Price(Decimal("0.0300"), "USD")  # its "*" rate
    assert rates.estimate(GERMAN, "utility") == Price(Decimal("0.0550"), "USD")  # none of its own: shipped
    assert rates.estimate(JAPANESE, "utility") == Price(rates.default["utility"], "USD")
    sms = shipped_rates("sms").with_own({("*", ""): Price(Decimal("0.0500"), "GBP")})
    assert sms.estimate("+447700900123", count=2) == Price(Decimal("0.1000"), "GBP")


# The shop's own rates: CLI and API


def test_the_cli_sets_lists_and_resets_a_shops_rates(db_url: str, shop: Shop, db: Db) -> None:
    assert chorus(db_url, "channels", "rates", "set", "sms", "--shop", SHOP, "--country", "US", "--amount", "0.01",
                  "--currency", "USD").exit_code == 0  # fmt: skip
    whatsapp = chorus(db_url, "channels", "rates", "set", "whatsapp", "--shop", SHOP, "--country", "*",
                      "--category", "utility", "--amount", "0.0035", "--currency", "EUR")  # fmt: skip
    assert whatsapp.exit_code == 0, whatsapp.output
    assert "whatsapp rate * utility: 0.0035 EUR" in whatsapp.output
    again = chorus(db_url, "channels", "rates", "set", "sms", "--shop", SHOP, "--country", "US", "--amount", "0.0120",
                   "--currency", "USD")  # fmt: skip
    assert again.exit_code == 0, again.output  # the same country again: changed, not added

    assert own_rates(db) == [("sms", "US", "", "0.0120", "USD"), ("whatsapp", "*", "utility", "0.0035", "EUR")]
    listed = chorus(db_url, "channels", "rates", "list", "--shop", SHOP)
    assert "sms: its own rates\n  US: 0.0120 USD\nwhatsapp: its own rates\n  * utility: 0.0035 EUR" in listed.output
    as_json = json.loads(chorus(db_url, "channels", "rates", "list", "--shop", SHOP, "--json").output)
    assert as_json["rates"]["whatsapp"] == [{"country": "*", "category": "utility", "amount": "0.0035",
                                             "currency": "EUR"}]  # fmt: skip
    channels = chorus(db_url, "channels", "list", "--shop", SHOP)
    assert "  rate US: 0.0120 USD" in channels.output

    bad = chorus(db_url, "channels", "rates", "set", "sms", "--shop", SHOP, "--country", "usa", "--category",
                 "marketing", "--amount", "0.00001", "--currency", "dollars")  # fmt: skip
    assert bad.exit_code == 2
    for problem in ("country: expected two capital letters", "category: SMS has no categories",
                    "amount: expected a number from 0", "currency: expected a three-letter"):  # fmt: skip
        assert problem in bad.output
    assert chorus(db_url, "channels", "rates", "set", "whatsapp", "--shop", SHOP, "--country", "US", "--category",
                  "promo", "--amount", "1", "--currency", "USD").exit_code == 2  # fmt: skip
    assert len(own_rates(db)) == 2

    reset = chorus(db_url, "channels", "rates", "reset", "whatsapp", "--shop", SHOP, "--country", "DE")
    assert "0 rate(s) for DE reset" in reset.output
    assert chorus(db_url, "channels", "rates", "reset", "sms", "--shop", SHOP).exit_code == 0
    assert own_rates(db) == [("whatsapp", "*", "utility", "0.0035", "EUR")]
    assert "sms: the shipped estimates" in chorus(db_url, "channels", "rates", "list", "--shop", SHOP).output


def test_the_api_replaces_a_channels_rates_and_lists_them(client: FlaskClient, shop: Shop, db: Db) -> None:
    headers = bearer(session_token(SHOP))
    first = [{"country": "US", "category": "marketing", "amount": "0.0200", "currency": "USD"},
             {"country": "*", "category": "utility", "amount": 0.004, "currency": "EUR"}]  # fmt: skip
    assert client.put("/api/channels/whatsapp/rates", json={"rates": first}, headers=headers).status_code == 200
    assert client.put("/api/channels/sms/rates", json={"rates": [{"country": "GB", "amount": 0.03, "currency": "GBP"}]},
                      headers=headers).status_code == 200  # fmt: skip

    replaced = [{"country": "BR", "amount": "0.05", "currency": "BRL"}]
    answer = client.put("/api/channels/whatsapp/rates", json={"rates": replaced}, headers=headers)

    assert answer.status_code == 200
    described = answer.get_json()["channel"]
    assert described["rates"] == [{"country": "BR", "category": "marketing", "amount": "0.0500", "currency": "BRL"}]
    listed = {c["channel"]: c for c in client.get("/api/channels", headers=headers).get_json()["channels"]}
    assert listed["sms"]["rates"] == [{"country": "GB", "category": "", "amount": "0.0300", "currency": "GBP"}]
    assert listed["whatsapp"]["rates"] == described["rates"]
    assert "rates" not in listed["email"]
    assert client.put("/api/channels/whatsapp/rates", json={"rates": []}, headers=headers).status_code == 200
    assert own_rates(db) == [("sms", "GB", "", "0.0300", "GBP")]


def test_the_api_refuses_bad_rates_saying_what_is_wrong_and_saves_nothing(
    client: FlaskClient, shop: Shop, db: Db
) -> None:
    headers = bearer(session_token(SHOP))
    kept = [{"country": "US", "amount": "0.0100", "currency": "USD"}]
    assert client.put("/api/channels/sms/rates", json={"rates": kept}, headers=headers).status_code == 200
    bad = [
        {"country": "us", "amount": "0.01", "currency": "USD"},
        {"country": "DE", "category": "marketing", "amount": "-0.01", "currency": "usd"},
        {"country": "FR", "amount": "0.00001", "currency": "EUR", "note": "x"},
        {"country": "GB", "amount": True, "currency": "GBP"},
        {"country": "ES", "amount": "1e9", "currency": "EUR"},
        {"country": "US", "amount": "0.02", "currency": "USD"},
        {"country": "US", "amount": "0.03", "currency": "USD"},
        "IT 0.05",
    ]

    answer = client.put("/api/channels/sms/rates", json={"rates": bad}, headers=headers)

    assert answer.status_code == 400
    amount = "amount: expected a number from 0 to 10000 with at most 4 decimal places"
    assert answer.get_json()["problems"] == [
        'rates[1].country: expected two capital letters (ISO 3166, such as US) or "*" for every other',
        "rates[2].category: SMS has no categories (its rate is per segment): leave it out",
        f"rates[2].{amount}",
        "rates[2].currency: expected a three-letter currency code in capitals, such as USD",
        "rates[3].note: unknown field",
        f"rates[3].{amount}",
        f"rates[4].{amount}",
        f"rates[5].{amount}",
        "rates[7].country: US is given twice",
        "rates[8]: expected an object with country, category, amount, currency",
    ]
    whatsapp = [{"country": "US", "category": "promotional", "amount": "0.01", "currency": "USD"}]
    refused = client.put("/api/channels/whatsapp/rates", json={"rates": whatsapp}, headers=headers)
    assert refused.get_json()["problems"] == ["rates[1].category: expected one of marketing, utility, authentication"]
    assert client.put("/api/channels/email/rates", json={"rates": kept}, headers=headers).status_code == 400
    assert client.put("/api/channels/sms/rates", json=kept, headers=headers).status_code == 400
    assert own_rates(db) == [("sms", "US", "", "0.0100", "USD")]


# What a message records


def test_an_sms_records_its_segments_at_the_shops_own_rate_in_its_currency(
    sms_store: Runtime,
    twilio: responses.RequestsMock,
    db: Db,
    db_url: str,
) -> None:
    result = chorus(db_url, "channels", "rates", "set", "sms", "--shop", SHOP, "--country", "US", "--amount", "0.0125",
                    "--currency", "EUR")  # fmt: skip
    assert result.exit_code == 0, result.output
    twilio.post(TWILIO, json=_created(), status=201)
    abandon_by_sms(sms_store)

    assert run_worker(sms_store, TEXTING).journeys.sent == 1

    message = db.one(Message)
    assert (message.cost, message.cost_currency) == (Decimal("0.0125") * message.payload["segments"], "EUR")
    listed = create_app(sms_store).test_client().get("/api/channels", headers=bearer(session_token(SHOP)))
    [cost] = listed.get_json()["costs"]
    assert (cost["channel"], cost["currency"], cost["cost"]) == ("sms", "EUR", f"{message.cost:.4f}")


def _template(db_url: str, category: str) -> None:
    result = chorus(db_url, "channels", "templates", "set", "--shop", SHOP, "--flow", "abandoned_checkout", "--step",
                    "reminder", "--name", "cart_reminder", "--language", "en_US", "--category", category)  # fmt: skip
    assert result.exit_code == 0, result.output


def _sent_on_whatsapp(runtime: Runtime, db: Db) -> Message:
    opt_in(runtime, db)
    abandon_with_number(runtime)
    assert run_worker(runtime, AFTER_DUE).journeys.sent == 1
    return db.one(Message)


def test_a_whatsapp_message_records_its_templates_category_rate_at_hand_over(
    wa_store: Runtime,
    graph: responses.RequestsMock,
    db: Db,
    db_url: str,
) -> None:
    _template(db_url, "utility")
    for country, category, amount, currency in (("*", "marketing", "0.09", "EUR"), ("US", "utility", "0.0035", "GBP")):
        assert chorus(db_url, "channels", "rates", "set", "whatsapp", "--shop", SHOP, "--country", country,
                      "--category", category, "--amount", amount, "--currency", currency).exit_code == 0  # fmt: skip

    message = _sent_on_whatsapp(wa_store, db)

    assert message.payload["category"] == "utility"
    assert (message.cost, message.cost_currency) == (Decimal("0.0035"), "GBP")  # the shop's US utility rate


def test_a_status_saying_the_message_is_free_makes_its_cost_zero_and_never_moves_its_status_back(
    wa_store: Runtime,
    graph: responses.RequestsMock,
    db: Db,
    db_url: str,
) -> None:
    set_template(db_url)
    assert _sent_on_whatsapp(wa_store, db).cost == Decimal("0.0250")  # marketing to a US number
    client = create_app(wa_store).test_client()
    read = {"id": WAMID, "status": "read", "timestamp": "1763636460", "recipient_id": "14155550123"}
    assert post(client, db, webhook({"statuses": [read]})).status_code == 200

    pricing = {"billable": False, "pricing_model": "PMP", "category": "utility"}
    delivered = {"id": WAMID, "status": "delivered", "timestamp": "1763636400", "recipient_id": "14155550123",
                 "pricing": pricing}  # fmt: skip
    assert post(client, db, webhook({"statuses": [delivered]})).status_code == 200

    message = db.one(Message)
    assert (message.status, message.cost, message.cost_currency) == ("read", Decimal("0"), "USD")
    listed = client.get("/api/channels", headers=bearer(session_token(SHOP))).get_json()
    assert listed["costs"][0]["cost"] == "0.0000"


def test_a_status_billing_another_category_re_estimates_at_the_shops_rate(
    wa_store: Runtime,
    graph: responses.RequestsMock,
    db: Db,
    db_url: str,
) -> None:
    set_template(db_url)  # marketing
    message = _sent_on_whatsapp(wa_store, db)
    assert (message.cost, message.cost_currency) == (Decimal("0.0250"), "USD")
    with db.write() as session:
        set_rate(session, message.shop_id, "whatsapp", OwnRate("US", "utility", Decimal("0.0031"), "EUR"), RECEIVED_AT)
    client = create_app(wa_store).test_client()
    sent = {"id": WAMID, "status": "sent", "timestamp": "1763636400", "recipient_id": "14155550123",
            "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"}}  # fmt: skip

    assert post(client, db, webhook({"statuses": [sent]})).status_code == 200
    assert post(client, db, webhook({"statuses": [sent | {"status": "delivered"}]})).status_code == 200

    message = db.one(Message)
    assert (message.status, message.cost, message.cost_currency) == ("delivered", Decimal("0.0031"), "EUR")


def test_another_shops_status_naming_the_message_changes_nothing(
    wa_store: Runtime,
    graph: responses.RequestsMock,
    db: Db,
    db_url: str,
) -> None:
    set_template(db_url)
    _sent_on_whatsapp(wa_store, db)
    account = {"phone_number_id": PHONE_NUMBER_ID, "access_token": "other-token", "app_secret": APP_SECRET,
               "verify_token": "v"}  # fmt: skip
    with db.write() as session:
        other = register_shop(session, wa_store.secret_box, OTHER_SHOP, access_token="t", webhook_secret=None,
                              now=RECEIVED_AT)  # fmt: skip
        connect(session, wa_store.secret_box, other, parse_account("whatsapp", account), RECEIVED_AT)
        key = other.callback_key
    free = {"id": WAMID, "status": "delivered", "timestamp": "1763636400", "recipient_id": "14155550123",
            "pricing": {"billable": False, "pricing_model": "PMP", "category": "utility"}}  # fmt: skip
    body = webhook({"statuses": [free]})
    headers = {"X-Hub-Signature-256": webhook_signature(APP_SECRET, body), "Content-Type": "application/json"}
    answer = create_app(wa_store).test_client().post(f"/channels/whatsapp/{key}", data=body, headers=headers)

    assert answer.status_code == 200
    message = db.one(Message)
    assert (message.status, message.cost) == ("sent", Decimal("0.0250"))


# The directory, and the shop's erasure


@pytest.fixture
def twilio_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as fake:
        fake.post(TWILIO, json=_created(), status=201)
        yield fake


def test_the_next_message_after_a_change_of_rates_is_priced_at_the_new_rate(
    runtime: Runtime, shop: Shop, twilio_api: responses.RequestsMock
) -> None:
    with runtime.session() as session, session.begin():
        found = session.get(Shop, shop.id, with_for_update=True)
        assert found is not None
        connect(session, runtime.secret_box, found, parse_account("sms", {"account_sid": SID, "auth_token": TOKEN,
                                                                          "from": SENDER}), RECEIVED_AT)  # fmt: skip
    directory = directory_for(runtime.settings, runtime.secret_box)  # one, as a worker keeps it

    def cost() -> tuple[Any, Any]:
        with runtime.read_session() as session:
            found = session.get(Shop, shop.id)
            assert found is not None
            handover = send_test_message(directory, session, found, "sms", "+14155550100", RECEIVED_AT)
        return handover.cost, handover.cost_currency

    assert cost() == (Decimal("0.0083"), "USD")  # one segment at the shipped US rate
    assert cost() == (Decimal("0.0083"), "USD")
    assert shop.id is not None
    with runtime.session() as session, session.begin():  # at the very instant the account was connected
        set_rate(session, shop.id, "sms", OwnRate("*", "", Decimal("0.0200"), "CAD"), RECEIVED_AT)
    assert cost() == (Decimal("0.0200"), "CAD")
    result = CliRunner().invoke(main, ["channels", "rates", "reset", "sms", "--shop", SHOP],
                                env=chorus_env(runtime.settings.database_url))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cost() == (Decimal("0.0083"), "USD")


def test_erasing_a_shop_deletes_its_rates_and_no_other_shops(runtime: Runtime, shop: Shop, db: Db) -> None:
    with db.write() as session:
        other = register_shop(session, runtime.secret_box, OTHER_SHOP, access_token="t", webhook_secret=None,
                              now=RECEIVED_AT)  # fmt: skip
        for shop_id in (shop.id, other.id):
            assert shop_id is not None
            set_rate(session, shop_id, "sms", OwnRate("US", "", Decimal("0.0100"), "USD"), RECEIVED_AT)
        found = session.get(Shop, shop.id)
        assert found is not None
        found.installed = False  # shop/redact comes 48 hours after the uninstall
    deliver(runtime, "shop/redact", {"shop_id": 954889, "shop_domain": SHOP})

    process(runtime)

    assert [(r.shop_id, r.country) for r in db.all(ChannelRate)] == [(other.id, "US")]
