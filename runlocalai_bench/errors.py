"""An error as one line for a record (an execution's reason, a plan's problem, a failed timing job): its type and
the first line of its message, never a traceback."""

from __future__ import annotations


def error_line(exc: BaseException) -> str:
    """``"Type: first line of the message"`` (``"Type: "`` for an empty message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
