"""What every channel connector reports when a message does not simply go out."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class Failure(StrEnum):
    NOT_SENT = "not_sent"  # it certainly did not leave: safe to try again later
    REFUSED = "refused"  # the provider refused it for good (bad address, opted out): never retry
    UNKNOWN = "unknown"  # interrupted during the hand-over: it may have gone out; never retry blindly
    # Refused on this channel, not for the address (WhatsApp's window, a template it refused): another may carry it
    NOT_CARRIED = "not_carried"


class AddressProblem(StrEnum):
    """What a refusal says about the address itself, beyond this one message."""

    OPTED_OUT = "opted_out"  # the recipient told the provider to stop: their consent is withdrawn
    INVALID = "invalid"  # no message can ever reach it (not a number, not a mobile, unroutable)


class DeliveryError(Exception):
    def __init__(
        self,
        failure: Failure,
        detail: str,
        *,
        code: str | None = None,
        problem: AddressProblem | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail
        self.code = code  # the provider's own error code, when it gave one
        self.problem = problem
        self.retry_after = retry_after  # not before this long, when the provider said so
