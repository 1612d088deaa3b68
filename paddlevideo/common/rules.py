"""Value rules: what a setting may hold, checked with a message that says what is allowed.

A rule is called with the value and returns ``None`` when it is fine, else the text of the problem
without the key (``"must be an integer >= 1, got 'abc'"``); the caller adds the key path. Rules are
small and composable: ``optional(number(gt=0))``, ``list_of(integer(ge=0), increasing=True)``.

A constructor declares its arguments' rules as annotations, in the words at the end of this module
(``img_size: PositiveInt = 224``, ``qk_scale: Optional[Positive] = None``, ``mode: OneOf("train", "test")``;
plain ``bool``, ``int``, ``float``, ``str`` mean the obvious rule); :func:`rule_of` reads one back.
"""

import numbers
import typing


def _show(value):
    return repr(value) if isinstance(value, str) else str(value)


def _is_bool(value):
    return isinstance(value, bool)


def _is_int(value):
    """An int, or a float with an integer value (``1e2`` is a float to YAML); never a bool."""
    if _is_bool(value):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value):
    return isinstance(value, numbers.Real) and not _is_bool(value)


class Rule:
    """A named check; ``text`` says what is allowed (used in messages and in ``--keys`` listings).

    ``convert`` turns an accepted value into the form the engine wants (``4.0`` -> ``4`` for an integer:
    ``-o epochs=1e2`` is a float to YAML, and a float frame count would reach a tensor shape).
    """

    def __init__(self, text, problem, convert=None):
        self.text = text
        self._problem = problem
        self.convert = convert or (lambda value: value)

    def __call__(self, value):
        return self._problem(value)

    def __repr__(self):
        return f"Rule({self.text})"


def _bounds_text(ge=None, gt=None, le=None, lt=None):
    parts = [f">= {ge}" if ge is not None else None, f"> {gt}" if gt is not None else None,
             f"<= {le}" if le is not None else None, f"< {lt}" if lt is not None else None]
    return " and ".join(p for p in parts if p)


def _out_of_bounds(value, ge, gt, le, lt):
    return ((ge is not None and value < ge) or (gt is not None and value <= gt)
            or (le is not None and value > le) or (lt is not None and value >= lt))


def _ranged(kind, is_kind, ge=None, gt=None, le=None, lt=None, convert=None):
    bounds = _bounds_text(ge, gt, le, lt)

    def problem(value):
        if not is_kind(value):
            return f"must be {kind}{' ' + bounds if bounds else ''}, got {_show(value)}"
        if _out_of_bounds(value, ge, gt, le, lt):
            return f"must be {bounds}, got {_show(value)}"
        return None

    return Rule(f"{kind}{' ' + bounds if bounds else ''}", problem, convert)


def integer(ge=None, gt=None, le=None, lt=None):
    """An integer (``4``, or ``4.0`` which becomes ``4``; not ``True``) within the given bounds."""
    return _ranged("an integer", _is_int, ge, gt, le, lt, convert=lambda v: int(v) if isinstance(v, float) else v)


def number(ge=None, gt=None, le=None, lt=None):
    """An int or float (not a bool) within the given bounds."""
    return _ranged("a number", _is_number, ge, gt, le, lt)


def boolean():
    return Rule("true or false", lambda v: None if _is_bool(v) else f"must be true or false, got {_show(v)}")


def string(nonempty=False):
    def problem(value):
        if not isinstance(value, str):
            return f"must be a string, got {_show(value)}"
        if nonempty and not value.strip():
            return "must not be empty"
        return None

    return Rule("a non-empty string" if nonempty else "a string", problem)


def choice(*values):
    """One of ``values`` (compared exactly: ``'info'`` is not ``'INFO'``); they are the rule's ``values``."""
    listed = ", ".join(str(v) for v in values)

    def problem(value):
        if any(value == v and type(value) is type(v) for v in values):
            return None
        return f"{_show(value)} is unknown; use one of {listed}"

    rule = Rule(f"one of {listed}", problem)
    rule.values = tuple(values)
    return rule


def optional(rule):
    """``rule``, or ``null``."""
    return Rule(f"{rule.text}, or null", lambda v: None if v is None else rule(v), rule.convert)


def list_of(rule, length=None, increasing=False):
    """A list whose items satisfy ``rule`` (of ``length`` items; strictly increasing if asked)."""
    text = f"a list of {length} items" if length else "a list"
    text += f" (each {rule.text}{', increasing' if increasing else ''})"

    def problem(value):
        if not isinstance(value, (list, tuple)):
            return f"must be {text}, got {_show(value)}"
        if length is not None and len(value) != length:
            return f"must be {text}, got {len(value)} items {_show(list(value))}"
        for index, item in enumerate(value):
            bad = rule(item)
            if bad:
                return f"item {index} {bad}"
        if increasing and any(b <= a for a, b in zip(value, value[1:])):
            return f"must be increasing, got {_show(list(value))}"
        return None

    return Rule(text, problem)


def anything():
    return Rule("any value", lambda v: None)


def from_default(default):
    """A rule guessed from a constructor default, for arguments without an annotation."""
    if _is_bool(default):
        return boolean()
    if _is_int(default) and not isinstance(default, float):
        return integer()
    if _is_number(default):
        return number()
    if isinstance(default, str):
        return string()
    return anything()


# --- the words of annotations ----------------------------------------------------------------------------

PositiveInt = integer(ge=1)
NonNegativeInt = integer(ge=0)
Positive = number(gt=0)
NonNegative = number(ge=0)
Fraction = number(ge=0, lt=1)  # a rate: dropout, label smoothing
Probability = number(ge=0, le=1)
NonEmptyStr = string(nonempty=True)
PLAIN = {bool: boolean(), int: integer(), float: number(), str: string()}


def OneOf(*values):  # noqa: N802 - reads as a type in a signature
    """``mode: OneOf("train", "test") = "train"``."""
    return choice(*values)


def ListOf(item, increasing=False):  # noqa: N802 - reads as a type in a signature
    """``mean: ListOf(float)``, ``milestones: ListOf(NonNegativeInt, increasing=True)``."""
    return list_of(rule_of(item), increasing=increasing)


def rule_of(annotation):
    """The :class:`Rule` an annotation states (a rule, ``bool`` / ``int`` / ``float`` / ``str``, or
    ``Optional[...]`` of one), or None for no annotation or one that states no rule."""
    if isinstance(annotation, Rule):
        return annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and len(args) == 2 and type(None) in args:
        inner = rule_of(args[0] if args[1] is type(None) else args[1])
        return None if inner is None else optional(inner)
    return PLAIN.get(annotation) if isinstance(annotation, type) else None
