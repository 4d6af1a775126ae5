"""What a customer's reply to a text message asks for: the carriers' and CTIA's keywords, one word, any case."""

from __future__ import annotations

from enum import StrEnum

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword(text: str | None) -> Keyword | None:
    """The keyword the reply is, if it is one word that is one (surrounding spaces and punctuation aside)."""
    word = (text or "").strip().strip(".!").upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None
