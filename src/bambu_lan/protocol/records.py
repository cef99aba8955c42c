"""Immutable records: frozen dataclasses that cost little to declare and to make.

``@dataclass(frozen=True)`` compiles five or six methods per class with ``exec`` when its module
is imported, about 0.4 ms a class. The protocol's types (the snapshot's sections, events,
commands, alerts) are a dozen and a half such classes on the import path of every client, so
that was most of the import time of ``Printer`` and of ``bambu-lan status``. A class declared
with ``@record`` and derived from ``Record`` is still a dataclass (``dataclasses.fields``,
``asdict``, ``replace`` and ``is_dataclass`` work), still frozen (assigning a field raises
``FrozenInstanceError``), and compares, hashes, prints and pickles like a frozen dataclass; but
those methods are shared by all records instead of compiled for each, and its ``__init__`` (the
one method generated) is about twice as fast: made on every report, construction is hot.

``slots=True`` gives slotted instances (small: trays, alerts, commands); without it, instances
keep their fields in ``__dict__``, which lets ``evolve`` copy one with a few fields changed in
one dict copy (the job and the temperatures, rebuilt on most reports).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

_T = TypeVar("_T")
_new = object.__new__
_set = object.__setattr__
_MISSING = dataclasses.MISSING


class Record:
    """Base of ``@record`` classes: the methods a frozen dataclass would compile for itself."""

    __slots__ = ()
    if TYPE_CHECKING:  # not in __annotations__: get_type_hints() of a record stays its own
        # Set by @record: a getter of the compared fields' values (a tuple), the shown fields.
        _record_values: ClassVar[Callable[..., tuple[Any, ...]]]
        _record_shown: ClassVar[tuple[str, ...]]

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._record_values(self) == self._record_values(other)

    def __hash__(self) -> int:
        return hash(self._record_values(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_shown)
        return f"{type(self).__qualname__}({shown})"

    def __getstate__(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            _set(self, name, value)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(*, slots: bool = False) -> Callable[[type[_T]], type[_T]]:
    """Make a ``Record`` subclass a frozen dataclass (see the module's docstring)."""

    def wrap(cls: type[_T]) -> type[_T]:
        if not issubclass(cls, Record):
            raise TypeError(f"@record needs a Record subclass, not {cls.__name__}")
        if not cls.__doc__:  # else dataclass() works one out with inspect, slowly
            cls.__doc__ = f"{cls.__name__}({', '.join(inspect.get_annotations(cls))})"
        made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=slots)(cls)
        fields = dataclasses.fields(made)  # type: ignore[arg-type]
        compared = [f.name for f in fields if f.compare]
        getter = attrgetter(*compared) if compared else (lambda _: ())
        values = getter if len(compared) != 1 else (lambda obj: (getter(obj),))
        # setattr: these are this module's own class attributes, set on the class it made.
        setattr(made, "_record_values", staticmethod(values))  # noqa: B010
        setattr(made, "_record_shown", tuple(f.name for f in fields if f.repr))  # noqa: B010
        setattr(made, "__init__", _make_init(made, fields, slots))  # noqa: B010
        return made

    return wrap


def _make_init(cls: type, fields: tuple[dataclasses.Field[Any], ...], slots: bool) -> Any:
    """An ``__init__`` with the dataclass's signature that sets the fields without
    ``object.__setattr__`` per field: the slot descriptors directly, or ``__dict__`` at once."""
    namespace: dict[str, Any] = {"_set": _set, "_MISSING": _MISSING}
    params, lines = [], []
    for f in fields:
        if not f.init or f.kw_only:
            raise TypeError(f"@record does not handle the field {cls.__name__}.{f.name}")
        if f.default is not _MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not _MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            lines.append(f"    if {f.name} is _MISSING: {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
        if slots:
            namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
            lines.append(f"    _set_{f.name}(self, {f.name})")
    if not slots:
        items = ", ".join(f"{f.name!r}: {f.name}" for f in fields)
        lines.append(f"    _set(self, '__dict__', {{{items}}})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines or ["    pass"])
    exec(source + "\n", namespace)  # noqa: S102 - fixed template, field names only (as dataclasses)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def evolve(section: _T, changes: dict[str, Any]) -> _T:
    """``dataclasses.replace`` for records without slots, several times faster: one dict
    copy, no ``__init__``. ``changes`` must name fields, with values of their types (not
    checked)."""
    values = section.__dict__.copy()
    values.update(changes)
    return remake(section, values)


def remake(like: _T, values: dict[str, Any]) -> _T:
    """A record of ``like``'s class (one without slots) holding ``values``, which must be
    all its fields (a copy of ``like.__dict__`` with some changed): no ``__init__``."""
    new: _T = _new(type(like))
    _set(new, "__dict__", values)
    return new


__all__ = ["Record", "evolve", "record", "remake"]
