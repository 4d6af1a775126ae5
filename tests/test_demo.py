"""`chorus demo`: the scripted journey through the real endpoint and worker, and its local-only page."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from shopify_app.app import create_app
from shopify_app.demo.script import in_texting_hours
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings
from tests.conftest import make_settings
from tests.support.env import chorus_command
from tests.support.net import free_port


def minimal_env() -> dict[str, str]:
    """What a fresh machine has: no Chorus configuration at all."""
    return {"PATH": str(Path(chorus_command()[0]).parent) + ":/usr/bin:/bin"}


@pytest.mark.slow
def test_the_demo_plays_its_journey_and_prints_what_happened(tmp_path: Path) -> None:
    result = subprocess.run(
        [*chorus_command(), "demo", "--no-serve", "--directory", str(tmp_path), "--port", str(free_port())],
        env=minimal_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "19 x HTTP 200" in result.stdout
    for outcome in (
        "abandoned_checkout / ada@example.com: done (completed)",  # both reminders went out
        "abandoned_checkout / grace@example.com: done (order_placed)",
        "abandoned_checkout / hedy@example.com: done (completed)",  # both reminders, by SMS
        "abandoned_checkout / linus@example.com: done (consent_withdrawn)",
        "post_purchase / grace@example.com: done (completed)",
        "welcome / ada@example.com: done (completed)",
        "welcome / grace@example.com: done (ordered_since)",
        "winback / margaret@example.com: done (completed)",
    ):
        assert outcome in result.stdout
    sent = {}
    for eml in sorted((tmp_path / "outbox").glob("*.eml")):
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        sent[(message["To"], message["Subject"])] = message
    assert len(sent) == 15
    # Ida signed up through the form; the shop asks for double opt-in: she confirmed from the emailed link.
    assert ("ida@example.com", "Confirm your subscription to Lumen Demo Store") in sent
    assert "ida@example.com confirmed her sign-up through the emailed link (double opt-in)" in result.stdout
    # Ada's browser reported her visit through the web pixel; her checkout's webhook proved it hers.
    assert "7 events from Ada's browser (HTTP 204), linked to her through her checkout" in result.stdout
    # She looked at the dimmer twice later and did not cart it: one browse reminder, at today's price.
    assert "browse_abandonment / ada@example.com: done (completed)" in result.stdout
    browsed = sent[("ada@example.com", "Ada, still thinking about Rotary Dimmer?")]
    assert "$19.00" in browsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    reminder = sent[("ada@example.com", "Ada, you left something at Lumen Demo Store")]
    text = reminder.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Aurora Desk Lamp x 1: $79.00 each" in text  # the price after the drop, not the 89.00 in the cart
    picks = sent[("grace@example.com", "Picked for you at Lumen Demo Store")]
    text = picks.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Linen Shade" in text  # related to the bulb Grace bought (same type), and in stock
    assert "Brass Bulb" not in text  # she has it already
    assert (tmp_path / "chorus.db").exists()
    texts = [path.read_text(encoding="utf-8") for path in sorted((tmp_path / "outbox").glob("*.sms.txt"))]
    assert len(texts) == 2
    for sms in texts:
        assert sms.startswith("To: +12075550142\nFrom: +12075550100\n\nLumen Demo Store: ")
        assert "Rotary Dimmer" in sms
        assert re.search(r"http://localhost:\d+/l/[A-Za-z0-9_-]{10}", sms)  # a short link
        assert sms.endswith("Reply STOP to opt out\n")
    # The second reminder is in the merchant's own wording.
    assert "Hedy, the Rotary Dimmer is still in your cart, at $" in texts[1]


@pytest.mark.slow
def test_the_demo_stays_up_with_its_page_on_localhost(tmp_path: Path) -> None:
    port = free_port()
    with (tmp_path / "demo.log").open("wb") as log:
        demo = subprocess.Popen(
            [*chorus_command(), "demo", "--directory", str(tmp_path), "--port", str(port)],
            env=minimal_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        http = requests.Session()
        deadline = time.monotonic() + 60
        output = tmp_path / "demo.log"
        # The story has played once the demo says it serves; until then the page is still filling.
        while time.monotonic() < deadline and demo.poll() is None and "Serving" not in output.read_text():
            time.sleep(0.1)
        page = http.get(f"http://localhost:{port}/demo", timeout=10)
        assert page.status_code == 200, output.read_text()
        for expected in (
            "demo-ada",
            "all checks passed",
            "an order was placed from this checkout",
            "orders/create",
            "demo-browser-ada",
            "product_added_to_cart",
        ):
            assert expected in page.text
        assert http.get(f"http://localhost:{port}/demo/messages/1", timeout=2).status_code == 200
        texted = re.search(r"<td>(\d+)</td><td>abandoned_checkout / reminder</td><td>\+12075550142</td>", page.text)
        assert texted is not None, page.text
        sms = http.get(f"http://localhost:{port}/demo/messages/{texted.group(1)}", timeout=2)
        assert "Text message (1 segment, GSM-7)" in sms.text
        # Its short link, followed on the running app, leads to Hedy's checkout.
        short = re.search(r"http://localhost:\d+(/l/[A-Za-z0-9_-]{10})", sms.text)
        assert short is not None
        visit = http.get(f"http://localhost:{port}{short.group(1)}", allow_redirects=False, timeout=2)
        assert visit.status_code == 302
        assert visit.headers["Location"] == "https://lumen.example/checkouts/demo-hedy/recover?key=demo"
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=20) == 0


def page_status(settings: Settings, remote_addr: str) -> int:
    runtime = Runtime.build(settings)
    try:
        client = create_app(runtime).test_client()
        return client.get("/demo", environ_base={"REMOTE_ADDR": remote_addr}).status_code
    finally:
        runtime.close()


def test_the_demo_page_exists_only_in_demo_mode_and_only_for_this_machine(db_url: str) -> None:
    from dataclasses import replace

    settings = make_settings(db_url)
    demo = replace(settings, demo_mode=True)

    assert page_status(demo, "127.0.0.1") == 200
    assert page_status(demo, "::1") == 200
    assert page_status(demo, "203.0.113.7") == 404
    assert page_status(settings, "127.0.0.1") == 404


@pytest.mark.parametrize("hour", range(24))
def test_each_day_of_the_demo_runs_when_hedys_text_may_go_out_whatever_the_hour_it_starts(hour: int) -> None:
    start = datetime(2026, 11, 20, hour, 17, tzinfo=UTC)
    at = in_texting_hours(start)
    local = at.astimezone(ZoneInfo("America/New_York"))
    assert start <= at < start + timedelta(hours=24)
    assert 10 <= local.hour < 19
