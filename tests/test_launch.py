"""The `chorus` entry point: the command runs with the cyclic collector on again."""

from __future__ import annotations

import gc

import pytest

from shopify_app import cli, launch


def test_the_command_runs_with_the_collector_on_and_what_loading_made_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, int] = {}

    def command() -> None:
        seen["enabled"], seen["frozen"] = int(gc.isenabled()), gc.get_freeze_count()

    monkeypatch.setattr(cli, "main", command)
    gc.unfreeze()  # whatever an earlier test froze
    try:
        launch.main()
    finally:
        gc.unfreeze()
    # Left off, a worker running for days would never free a reference cycle.
    assert seen["enabled"] == 1
    assert seen["frozen"] > 10_000
    assert gc.isenabled()
