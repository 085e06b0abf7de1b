"""What a setting may be: one declaration that parses, checks and documents it.

A ``Spec`` is either a choice among names, a flag, a number in a range (whole or
real, the low end open or closed) or free text. The run config (``Config``), the
theory games and the app's controls all declare their settings this way, so a value is
parsed and checked by the same code, and refused with the same kind of message,
whether it comes from ``--set``, a URL or a widget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One setting's type and allowed values; ``doc`` says what it does."""

    doc: str
    kind: str  # "choice", "bool", "int", "float" or "text"
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False

    def parse(self, key: str, raw: Any) -> Any:
        """Parse one string (or value) for ``key`` and check it; ``ValueError`` names
        the key, the value and what is allowed."""
        text = str(raw).strip()
        if self.kind == "bool":
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{key}={text!r} is not a boolean; use true or false")
        if self.kind == "int":
            try:
                as_float = float(text)
            except ValueError:
                raise ValueError(f"{key}={text!r} is not a whole number") from None
            if not math.isfinite(as_float) or not as_float.is_integer():
                raise ValueError(f"{key}={text!r} is not a whole number")
            return self.check(key, int(as_float))
        if self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{key}={text!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{key}={text!r} is not a finite number")
            return self.check(key, value)
        return self.check(key, text)

    def check(self, key: str, value: Any) -> Any:
        """Return ``value`` if allowed, else raise ``ValueError`` saying what is."""
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(
                    f"{key}={value!r} is not allowed; choose one of {', '.join(self.choices)}"
                )
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{key}={value!r} is not a boolean; use true or false")
        elif self.kind in ("int", "float"):
            bad = not isinstance(value, int | float) or isinstance(value, bool)
            if self.kind == "int" and not bad:
                bad = isinstance(value, float) and not value.is_integer()
            if not bad:
                bad = (
                    not math.isfinite(value)
                    or value > self.hi
                    or value < self.lo
                    or (self.open_lo and value <= self.lo)
                )
            if bad:
                op = "<" if self.open_lo else "<="
                raise ValueError(
                    f"{key}={value!r} is out of range; need {_num(self.lo)} {op} {key} "
                    f"<= {_num(self.hi)}"
                )
        return value

    def allowed(self) -> str:
        """What is allowed, in words (the README's settings table)."""
        if self.kind == "choice":
            return " / ".join(self.choices)
        if self.kind == "bool":
            return "true / false"
        if self.kind == "text":
            return "text"
        op = "<" if self.open_lo else "≤"
        whole = " (integer)" if self.kind == "int" else ""
        return f"{_num(self.lo)} {op} x ≤ {_num(self.hi)}{whole}"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def choice(doc: str, options: tuple[str, ...]) -> Spec:
    return Spec(doc, "choice", choices=tuple(options))


def flag(doc: str) -> Spec:
    return Spec(doc, "bool")


def whole(doc: str, lo: int, hi: int) -> Spec:
    return Spec(doc, "int", lo=lo, hi=hi)


def real(doc: str, lo: float, hi: float, *, open_lo: bool = False) -> Spec:
    return Spec(doc, "float", lo=lo, hi=hi, open_lo=open_lo)


def text(doc: str) -> Spec:
    return Spec(doc, "text")


def format_value(value: Any) -> str:
    """The string form of a value in a flat dict (URL query, ``--set``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["lr_d=1e-3", "loss=ns"]`` -> ``{"lr_d": "1e-3", "loss": "ns"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
