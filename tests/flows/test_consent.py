from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.consent import (
    Source,
    form_level,
    lifts_opt_out,
    marketing_consent_refusal,
    stands_as_opt_out,
    with_chorus_opt_in,
)
from flows.facts import Consent
from flows.reasons import Reason

T9, T10, T11 = (datetime(2026, 11, 20, h, tzinfo=UTC) for h in (9, 10, 11))


@pytest.mark.parametrize(
    ("state", "changed_at", "box", "expected"),
    [
        pytest.param(None, None, True, None, id="guest ticked the box"),
        pytest.param(None, None, False, Reason.NO_CONSENT, id="guest left the box empty"),
        pytest.param(None, None, None, Reason.NO_CONSENT, id="nothing known"),
        pytest.param("subscribed", T9, False, None, id="subscribed customer, box empty"),
        pytest.param("not_subscribed", T9, True, None, id="box ticked after an old no"),
        pytest.param("unsubscribed", T11, True, Reason.CONSENT_WITHDRAWN, id="unsubscribed after the checkout"),
        pytest.param("not_subscribed", T10, True, None, id="same instant: the box stands"),
        pytest.param("pending", T9, False, Reason.NO_CONSENT, id="double opt-in not confirmed"),
        pytest.param("unsubscribed", T9, False, Reason.NO_CONSENT, id="unsubscribed long ago"),
    ],
)
def test_the_newest_wish_decides(
    state: str | None, changed_at: datetime | None, box: bool | None, expected: Reason | None
) -> None:
    consent = Consent(state=state, changed_at=changed_at, unsubscribed_here=False)
    assert marketing_consent_refusal(consent, box, T10) == expected


def test_an_unsubscribe_through_chorus_always_wins() -> None:
    consent = Consent(state="subscribed", changed_at=T11, unsubscribed_here=True)
    assert marketing_consent_refusal(consent, True, T10) == Reason.UNSUBSCRIBED


@pytest.mark.parametrize(
    ("source", "state", "level", "stands", "lifts"),
    [
        pytest.param(Source.UNSUBSCRIBE_LINK, "unsubscribed", None, True, False, id="unsubscribe link"),
        pytest.param(Source.KEYWORD, "unsubscribed", None, True, False, id="STOP"),
        pytest.param(Source.KEYWORD, "subscribed", "single_opt_in", False, True, id="START"),
        pytest.param(Source.FORM, "subscribed", "single_opt_in", False, True, id="form, single opt-in"),
        pytest.param(Source.FORM, "subscribed", "confirmed_opt_in", False, True, id="form, confirmed"),
        pytest.param(Source.FORM, "pending", "confirmed_opt_in", False, False, id="form, awaiting confirmation"),
        pytest.param(
            Source.CHECKOUT, "subscribed", "single_opt_in", False, False, id="checkout box (may be pre-ticked)"
        ),
        pytest.param(
            Source.SHOPIFY_WEBHOOK, "subscribed", "single_opt_in", False, False, id="Shopify single (an import)"
        ),
        pytest.param(Source.SHOPIFY_WEBHOOK, "subscribed", "confirmed_opt_in", False, True, id="Shopify confirmed"),
        pytest.param(Source.RECONCILIATION, "subscribed", "confirmed_opt_in", False, True, id="sync, confirmed"),
        pytest.param(Source.SHOPIFY_WEBHOOK, "unsubscribed", None, False, False, id="Shopify's unsubscribe"),
    ],
)
def test_what_a_chorus_opt_out_stands_against(
    source: Source, state: str, level: str | None, stands: bool, lifts: bool
) -> None:
    assert stands_as_opt_out(source, state) is stands
    assert lifts_opt_out(source, state, level) is lifts


@pytest.mark.parametrize(
    ("double", "confirmed", "expected"),
    [
        (False, False, ("subscribed", "single_opt_in")),
        (True, False, ("pending", "confirmed_opt_in")),
        (True, True, ("subscribed", "confirmed_opt_in")),
    ],
)
def test_a_form_opt_in_counts_once_confirmed_under_double_opt_in(
    double: bool, confirmed: bool, expected: tuple[str, str]
) -> None:
    assert form_level(double, confirmed) == expected


@pytest.mark.parametrize(
    ("shopify", "opted_in_at", "expected_state"),
    [
        pytest.param(Consent(None, None, False), T10, "subscribed", id="no Shopify state: the form's"),
        pytest.param(Consent("unsubscribed", T9, False), T10, "subscribed", id="form newer than Shopify's no"),
        pytest.param(Consent("unsubscribed", T11, False), T10, "unsubscribed", id="Shopify's no is newer"),
        pytest.param(Consent("not_subscribed", T9, False), None, "not_subscribed", id="no form opt-in"),
    ],
)
def test_the_newest_of_shopifys_state_and_a_chorus_opt_in_decides(
    shopify: Consent, opted_in_at: datetime | None, expected_state: str
) -> None:
    assert with_chorus_opt_in(shopify, opted_in_at).state == expected_state


def test_a_chorus_opt_out_wins_over_a_newer_opt_in_until_it_is_lifted() -> None:
    opted_out = Consent("unsubscribed", T9, unsubscribed_here=True)
    assert marketing_consent_refusal(with_chorus_opt_in(opted_out, T11), True, T11) is Reason.UNSUBSCRIBED
