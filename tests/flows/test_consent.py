from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.consent import marketing_consent_refusal
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
