"""Declared parameters of the segmentation methods, checked before any work.

Each method declares its parameters once (default, type, allowed range);
:func:`resolve` merges the user's keywords over the defaults and raises an
error naming the method, the parameter and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One parameter: its default and the values it accepts.

    ``kind`` is ``"int"``, ``"float"`` or ``"choice"``. Numbers are checked
    against ``low``/``high`` (``low_open`` makes the lower bound exclusive);
    ``odd`` requires an odd integer.
    """

    default: object
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    odd: bool = False
    choices: tuple = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = (
            "an odd integer" if self.odd else ("an integer" if self.kind == "int" else "a number")
        )
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            return f"{what} in {left}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what


def _check(method: str, name: str, spec: Param, value):
    where = f"{method}: parameter {name!r}"
    if spec.kind == "choice":
        if isinstance(value, str):
            value = value.lower()
        if value not in spec.choices:
            raise ValueError(f"{where} must be {spec.describe()}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be {spec.describe()}, got {type(value).__name__} {value!r}")
    if spec.kind == "int":
        if not isinstance(value, numbers.Integral):
            if float(value).is_integer():
                value = int(value)
            else:
                raise TypeError(f"{where} must be {spec.describe()}, got {value!r}")
        value = int(value)
        if spec.odd and value % 2 == 0:
            raise ValueError(f"{where} must be {spec.describe()}, got {value}")
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be {spec.describe()}, got {value}")
    too_low = spec.low is not None and (value <= spec.low if spec.low_open else value < spec.low)
    too_high = spec.high is not None and value > spec.high
    if too_low or too_high:
        raise ValueError(f"{where} must be {spec.describe()}, got {value!r}")
    return value


def resolve(method: str, specs: dict[str, Param], params: dict) -> dict:
    """Defaults of ``method`` overridden by ``params``, every value checked.

    Raises
    ------
    ValueError
        For an unknown parameter name or a value out of range.
    TypeError
        For a value of the wrong type (a string where a number is expected...).
    """
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise ValueError(
            f"{method}: unknown parameter {unknown[0]!r}; its parameters are " + ", ".join(specs)
        )
    out = {}
    for name, spec in specs.items():
        out[name] = _check(method, name, spec, params.get(name, spec.default))
    return out
