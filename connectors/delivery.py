"""What every channel connector reports when a message does not simply go out."""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    NOT_SENT = "not_sent"  # it certainly did not leave: safe to try again later
    REFUSED = "refused"  # the provider refused it for good (bad address, opted out): never retry
    UNKNOWN = "unknown"  # interrupted during the hand-over: it may have gone out; never retry blindly


class DeliveryError(Exception):
    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail
