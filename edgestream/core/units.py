"""Physical units of channels: parse what streams and files declare, scale between them.

LSL streams declare units as free text ("microvolts", "uV", "µV", "V"); MNE uses FIFF integer
codes (107 = volt) together with a power-of-ten multiplier (``unit_mul``, -6 for micro). Both
are normalised to short canonical strings so that a pipeline expecting µV receives µV whether
the producer sent volts or microvolts.
"""

from __future__ import annotations

from edgestream.core.checks import fail

# canonical base unit → aliases (lower-case)
_BASES = {
    "V": ("v", "volt", "volts"),
    "T": ("t", "tesla", "teslas"),
    "T/m": ("t/m", "tesla/meter", "teslas/meter", "tesla/metre"),
    "a.u.": ("a.u.", "au", "arbitrary", "n/a", "na", "none", "", "unitless", "counts"),
    "s": ("s", "sec", "second", "seconds"),
    "dB": ("db", "decibel", "decibels"),
    "Hz": ("hz", "hertz"),
    "%": ("%", "percent"),
    "K": ("k", "kelvin"),
    "m": ("m", "meter", "metre", "meters", "metres"),
}
_PREFIXES = {"": 0, "m": -3, "milli": -3, "u": -6, "µ": -6, "μ": -6, "micro": -6, "n": -9, "nano": -9, "p": -12, "pico": -12, "f": -15, "femto": -15, "k": 3, "kilo": 3}
_SHORT_PREFIX = {0: "", -3: "m", -6: "u", -9: "n", -12: "p", -15: "f", 3: "k"}

# MNE / FIFF unit codes (mne.io.constants.FIFF.FIFF_UNIT_*)
_FIFF_CODES = {107: "V", 112: "T", 201: "T/m", -1: "a.u.", 0: "a.u.", 2: "s", 101: "Hz", 108: "a.u.", 114: "K"}

_ALIASES: dict[str, tuple[str, int]] = {}
for _base, _names in _BASES.items():
    for _alias in _names:
        _ALIASES[_alias] = (_base, 0)
for _base, _names in _BASES.items():
    if _base in ("a.u.", "dB", "%"):
        continue
    for _pname, _exp in _PREFIXES.items():
        if not _pname:
            continue
        for _alias in _names:
            if _alias and len(_pname) + len(_alias) > 1 and not (len(_pname) == 1 and len(_alias) > 3):
                _ALIASES.setdefault(_pname + _alias, (_base, _exp))


def parse_unit(unit: str | int, unit_mul: int = 0) -> tuple[str, int]:
    """Return ``(base, exponent)`` for a unit string or a FIFF integer code.

    Examples: ``"microvolts" → ("V", -6)``, ``"uV" → ("V", -6)``, ``107 → ("V", 0)``,
    ``(107, unit_mul=-6) → ("V", -6)``.
    """
    if isinstance(unit, bool):
        fail("unit", "be a unit string or an MNE FIFF unit code", unit)
    if isinstance(unit, int):
        if unit not in _FIFF_CODES:
            fail("unit", "be a known FIFF unit code (" + ", ".join(map(str, sorted(_FIFF_CODES))) + ")", unit,
                 "Pass the unit as a string such as 'uV' instead.")
        return _FIFF_CODES[unit], int(unit_mul)
    if not isinstance(unit, str):
        fail("unit", "be a unit string or an MNE FIFF unit code", unit)
    key = unit.strip()
    if key in _ALIASES or key.lower() in _ALIASES:
        base, exp = _ALIASES.get(key) or _ALIASES[key.lower()]
        return base, exp + int(unit_mul)
    # case-sensitive SI forms such as "mV", "uV", "nT", "fT/cm" fall through to prefix parsing
    for pname, exp in sorted(_PREFIXES.items(), key=lambda kv: -len(kv[0])):
        if pname and key.startswith(pname) and key[len(pname):] in _BASES:
            return key[len(pname):], exp + int(unit_mul)
    fail("unit", "be a recognised unit (e.g. 'V', 'uV', 'microvolts', 'a.u.')", unit,
         "Declare the unit in the stream's desc/channels/channel/unit, or pass units= to the source.")


def canonical(unit: str | int, unit_mul: int = 0) -> str:
    """Short canonical string: ``"microvolts" → "uV"``."""
    base, exp = parse_unit(unit, unit_mul)
    if base in ("a.u.", "dB", "%") or exp not in _SHORT_PREFIX:
        return base if exp == 0 else f"1e{exp} {base}"
    return _SHORT_PREFIX[exp] + base


def scale_factor(from_unit: str | int, to_unit: str | int) -> float:
    """Multiplier converting values in ``from_unit`` to ``to_unit`` (e.g. V → uV is 1e6)."""
    fb, fe = parse_unit(from_unit)
    tb, te = parse_unit(to_unit)
    if fb != tb:
        fail("to_unit", f"measure the same quantity as {from_unit!r} ({fb})", to_unit)
    return 10.0 ** (fe - te)
