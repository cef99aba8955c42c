"""Records: frozen dataclasses with shared methods behave like ``@dataclass(frozen=True)``."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import field
from typing import Any

import pytest

from bambu_lan.protocol.records import Record, evolve, record


@record(slots=True)
class Point(Record):
    """A slotted record."""

    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@record()
class Box(Record):
    name: str  # no docstring: one is made without inspect
    size: int
    extra: dict[str, Any] = field(default_factory=dict)
    hidden: str = field(default="", repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class PlainBox:
    """What a Box would be as a plain frozen dataclass."""

    name: str
    size: int
    extra: dict[str, Any] = field(default_factory=dict)
    hidden: str = field(default="", repr=False, compare=False)


def test_a_record_is_a_dataclass_with_its_fields_and_signature() -> None:
    assert dataclasses.is_dataclass(Point) and dataclasses.is_dataclass(Box(name="a", size=1))
    assert [f.name for f in dataclasses.fields(Box)] == ["name", "size", "extra", "hidden"]
    assert Point(1) == Point(x=1, y=0, tags=())
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    assert Box.__doc__ == "Box(name, size, extra, hidden)"
    assert not hasattr(Point(1), "__dict__") and hasattr(Box("a", 1), "__dict__")


def test_default_factories_give_each_instance_its_own_value() -> None:
    a, b = Box("a", 1), Box("b", 2)
    assert a.extra == {} and a.extra is not b.extra


@pytest.mark.parametrize("obj", [Point(1, 2), Box("a", 1)], ids=["slots", "dict"])
def test_fields_cannot_be_assigned_or_deleted(obj: Any) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.x = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        del obj.x


def test_equality_hash_and_repr_are_a_frozen_dataclass_s() -> None:
    ours, plain = Box("a", 1, {"k": 1}, hidden="x"), PlainBox("a", 1, {"k": 1}, hidden="x")
    assert repr(ours) == repr(plain).replace("PlainBox", "Box")
    assert ours == Box("a", 1, {"k": 1}, hidden="y")  # compare=False fields are not compared
    assert ours != Box("a", 2, {"k": 1})
    assert ours != plain  # another class, as dataclasses do
    assert hash(Point(1, 2, ("a",))) == hash(Point(1, 2, ("a",)))
    assert {Point(1), Point(1), Point(2)} == {Point(1), Point(2)}
    with pytest.raises(TypeError):
        hash(ours)  # a dict field, as with a frozen dataclass


@pytest.mark.parametrize("obj", [Point(1, 2, ("t",)), Box("a", 1, {"k": [1]})], ids=["s", "d"])
def test_pickle_copy_replace_and_asdict(obj: Any) -> None:
    assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 - our own bytes
    assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
    changed = dataclasses.replace(obj, **{dataclasses.fields(obj)[1].name: 9})
    assert changed != obj and type(changed) is type(obj)
    assert dataclasses.asdict(obj)[dataclasses.fields(obj)[0].name] == getattr(
        obj, dataclasses.fields(obj)[0].name
    )


def test_evolve_copies_a_record_with_fields_changed() -> None:
    box = Box("a", 1, {"k": 1})
    bigger = evolve(box, {"size": 2})
    assert bigger == Box("a", 2, {"k": 1}) and box.size == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        bigger.size = 3  # type: ignore[misc]


def test_record_needs_the_base_class() -> None:
    with pytest.raises(TypeError, match="Record subclass"):

        @record()
        class Loose:
            x: int
