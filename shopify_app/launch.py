"""The `chorus` command's entry point: the command, loaded with the cyclic collector paused.

Loading the command makes a few hundred thousand objects (SQLAlchemy, pydantic, the models, compiled
patterns), none of them garbage, and the collector scanned them over and over while they were made; once
they are all made, they are moved out of its sight for good (`gc.freeze`). Together about a third of the
CPU a `chorus` process spends before it does anything. Objects still die by reference counting meanwhile.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from shopify_app.cli import main as command
    finally:
        gc.freeze()
        gc.enable()
    command()
