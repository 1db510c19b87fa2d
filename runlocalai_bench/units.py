"""Numbers in the units a reader quotes: three significant digits, no exponents, a unit that fits the size.

Tables keep raw values in fixed units (pairs/s, ms, bytes) so that they stay machine-readable; everything a
person reads (the report, the progress lines, the terminal tables) goes through these functions, so that
``1.954e+04`` ms never reaches an editor. Sizes are decimal (1 GB = 10^9 bytes), as model pages and file
managers quote them.
"""

from __future__ import annotations

import math
import re

MISSING = "–"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sig(value: float | None, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` significant digits, written without an exponent: 19540 -> '19,500',
    0.0012345 -> '0.00123', 27.34 -> '27.3', 9.996 -> '10.0'."""
    if _missing(value):
        return MISSING
    value = float(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    rounded = round(value, digits - 1 - magnitude)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.996 rounds up to 10.0
        magnitude += 1
    return f"{rounded:,.{max(digits - 1 - magnitude, 0)}f}"


def rate(pairs_per_s: float | None) -> str:
    """Pairs per second: '0.412', '27.3', '1,060'."""
    return sig(pairs_per_s)


def duration_ms(ms: float | None) -> str:
    """A duration given in milliseconds, in ms below one second, in s below two minutes, then in minutes."""
    if _missing(ms):
        return MISSING
    if abs(ms) < 1000:
        return f"{sig(ms)} ms"
    if abs(ms) < 120_000:
        return f"{sig(ms / 1000)} s"
    return f"{sig(ms / 60_000)} min"


def duration_s(seconds: float | None) -> str:
    return MISSING if _missing(seconds) else duration_ms(float(seconds) * 1000)


def size(n_bytes: float | None) -> str:
    """Bytes in kB, MB or GB (decimal), three significant digits."""
    if _missing(n_bytes):
        return MISSING
    n_bytes = float(n_bytes)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n_bytes) >= scale:
            return f"{sig(n_bytes / scale)} {unit}"
    return f"{n_bytes:.0f} B"


def mib_to_bytes(mib: float | None) -> float | None:
    """Memory columns measured in MiB (psutil, NVML) as bytes, for :func:`size`."""
    return None if _missing(mib) else float(mib) * 2**20


def percent(fraction: float | None, signed: bool = False, digits: int = 3) -> str:
    """A fraction as a percentage: 0.1234 -> '12.3%' ('+12.3%' with ``signed``)."""
    if _missing(fraction):
        return MISSING
    text = sig(abs(fraction) * 100, digits) + "%"
    if signed:
        return ("−" if fraction < 0 else "+") + text
    return ("−" if fraction < 0 else "") + text


def interval(low: float | None, high: float | None, fmt=lambda v: f"{v:.3f}") -> str:
    """'[low, high]', or '' when either end is missing."""
    if _missing(low) or _missing(high):
        return ""
    return f"[{fmt(low)}, {fmt(high)}]"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)")
_SECONDS = {"d": 86_400, "h": 3_600, "min": 60, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """Seconds in a duration as people write one: ``8h``, ``90min``, ``2h30m``, ``45 m``, ``3600s``, ``1.5h``.

    Raises ValueError naming the text and the accepted forms."""
    cleaned = str(text).strip().lower()
    parts = _DURATION_PART.findall(cleaned)
    if not parts or _DURATION_PART.sub("", cleaned).strip():
        raise ValueError(f"{text!r} is not a duration; accepted: a number with a unit d, h, min (or m), s, "
                         f"e.g. 8h, 90min, 2h30m")
    seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return seconds
