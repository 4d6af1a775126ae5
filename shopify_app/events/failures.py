"""Which handling failures can never succeed however often they are retried.

A failure is permanent when what fails is the delivery's data itself: a value the database refuses to store
(too long for its column, a number out of its range, a NUL byte or a lone surrogate in text), or a payload
value of a type or form the handler cannot use (a list where an object was expected). The same body fails the
same way on every attempt, so the event is parked at once, with the reason, instead of being retried for hours.
Everything else (a lost connection, a lock timeout, a deadlock victim) may be transient and is retried.

A bug in a handler that raises `TypeError`, `AttributeError` or `ValueError` is parked at once too; once a fix
is deployed, `chorus events replay` puts those events back in the queue.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, StatementError

# PostgreSQL's SQLSTATE class 22 is "data exception": the value, not the moment, is at fault.
_DATA_EXCEPTION_CLASS = "22"
_DATA_EXCEPTIONS = {
    "22001": "a text value too long for its column",
    "22003": "a number out of range for its column",
    "22004": "a null value where none is allowed",
    "22007": "an invalid date or time",
    "22008": "a date or time out of range",
    "22012": "a division by zero",
    "22021": "a character the database encoding does not have",
    "22023": "an invalid parameter value",
    "22P02": "a value in the wrong form for its type",
    "22P05": "a character the database cannot store",
}
# Raised in Python, by a handler or by a driver converting a value, before anything reaches the database.
_PYTHON_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (UnicodeError, "text that cannot be encoded (a lone surrogate?)"),
    (OverflowError, "a number too large for the database driver"),
    (RecursionError, "data nested too deeply"),
    (TypeError, "a payload value of an unexpected type"),
    (AttributeError, "a payload value of an unexpected type"),
    (ValueError, "a payload value of an unexpected form"),
)


def permanent_reason(exc: BaseException) -> str | None:
    """Why `exc` will recur on every attempt, or None when a retry may succeed."""
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_DATA_EXCEPTION_CLASS):
            kind = _DATA_EXCEPTIONS.get(sqlstate, "data the database refuses")
            return f"permanent data error: {kind} (SQLSTATE {sqlstate})"
        if isinstance(exc, DataError):  # the driver's own refusal (psycopg: "cannot contain NUL (0x00) bytes")
            return "permanent data error: a value the database driver refuses"
        return None
    if isinstance(exc, StatementError) and isinstance(exc.orig, BaseException):
        # A value the driver or a column type could not convert (e.g. "Not a boolean value: 'yes'").
        return permanent_reason(exc.orig)
    for error, reason in _PYTHON_ERRORS:
        if isinstance(exc, error):
            return f"permanent data error: {reason}"
    return None


def is_permanent(exc: BaseException) -> bool:
    return permanent_reason(exc) is not None
