"""The public surface: ``__all__`` pinned, every type a public signature names exported, and
``SyncPrinter`` in step with ``Printer``."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

import bambu_lan
from bambu_lan import (
    CommandResult,
    ConnectionStatus,
    Event,
    Farm,
    Printer,
    PrinterCore,
    PrinterOptions,
    PrinterState,
    Step,
    SyncPrinter,
    UpdateStream,
)

EXPECTED_ALL = [
    "AmsKind",
    "AmsUnit",
    "AuthError",
    "BambuError",
    "BambuTimeout",
    "Camera",
    "ClosedBeforeConnack",
    "Command",
    "CommandError",
    "CommandRejected",
    "CommandResult",
    "CommandTimeout",
    "ConfigError",
    "ConnackTimeout",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionStatus",
    "DeveloperModeRequired",
    "Event",
    "EventKind",
    "Fans",
    "Farm",
    "FileTransferError",
    "HmsAlert",
    "HostNotFound",
    "Job",
    "JobState",
    "LinkState",
    "NotConnected",
    "Nozzle",
    "Outcome",
    "Outgoing",
    "Pending",
    "PrintError",
    "PrintFailed",
    "PrintFileError",
    "PrintOptions",
    "PrintStarted",
    "Printer",
    "PrinterConfig",
    "PrinterCore",
    "PrinterInfo",
    "PrinterOptions",
    "PrinterState",
    "Progress",
    "RemoteEntry",
    "RemoteFileNotFound",
    "Reply",
    "Secret",
    "SequenceIds",
    "ServerUnavailable",
    "SessionOptions",
    "Speed",
    "Step",
    "Storage",
    "StorageFull",
    "SyncPrinter",
    "SyncStorage",
    "Temperatures",
    "Tray",
    "TrustConfig",
    "TrustError",
    "Update",
    "UpdateStream",
    "resolve_printer",
]


def test_all_is_exactly_the_public_surface() -> None:
    assert sorted(bambu_lan.__all__) == EXPECTED_ALL
    assert len(set(bambu_lan.__all__)) == len(bambu_lan.__all__)


def test_every_exported_name_resolves() -> None:
    for name in bambu_lan.__all__:
        assert getattr(bambu_lan, name) is not None, name
    assert set(dir(bambu_lan)) >= set(bambu_lan.__all__)


def _classes_in(hint: Any) -> Iterator[type]:
    if isinstance(hint, type) and not isinstance(hint, types.GenericAlias):
        yield hint
    for arg in typing.get_args(hint):
        yield from _classes_in(arg)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        yield origin


def _namespace(obj: Any) -> dict[str, Any]:
    """The names an annotation may use: its module's, and every export (some modules import
    the types of their signatures only for type checking)."""
    module = inspect.getmodule(obj)
    exports = {name: getattr(bambu_lan, name) for name in bambu_lan.__all__}
    return {**exports, **(vars(module) if module else {})}


def _hints(obj: Any) -> dict[str, Any]:
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if not callable(obj) or isinstance(obj, type):
        return {}
    return typing.get_type_hints(obj, globalns=_namespace(obj))


SURFACE = (
    Printer,
    SyncPrinter,
    Farm,
    PrinterCore,
    Step,
    UpdateStream,
    PrinterOptions,
    CommandResult,
    ConnectionStatus,
    Event,
    PrinterState,
)


def _named_types() -> Iterator[tuple[str, type]]:
    seen: set[type] = set()
    todo = list(SURFACE)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        members = dict(inspect.getmembers(cls))
        for name, member in members.items():
            if name.startswith("_") and name != "__init__":
                continue
            for used in _hints(member).values():
                for found in _classes_in(used):
                    yield f"{cls.__name__}.{name}", found
        if dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls, globalns=_namespace(cls))
            for f in dataclasses.fields(cls):
                for found in _classes_in(hints[f.name]):
                    yield f"{cls.__name__}.{f.name}", found
                    if found.__module__.startswith("bambu_lan") and found not in seen:
                        todo.append(found)  # a section type: its fields count too


def test_every_type_in_a_public_signature_is_exported() -> None:
    exported = {getattr(bambu_lan, name) for name in bambu_lan.__all__}
    missing = {
        f"{where}: {found.__module__}.{found.__qualname__}"
        for where, found in _named_types()
        if found.__module__.startswith("bambu_lan") and found not in exported
    }
    assert not missing, "export these from bambu_lan (or keep them out of signatures):\n" + (
        "\n".join(sorted(missing))
    )


def _public(cls: type) -> dict[str, Any]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


# What only one side has, and why.
# Objects with async APIs of their own (blocking code has SyncStorage; the camera is async).
ASYNC_ONLY = {"storage", "camera"}
SYNC_EXTRA_PARAMETERS = {"timeout"}  # a blocking iterator needs a way to stop waiting


def test_sync_printer_offers_everything_printer_does() -> None:
    missing = set(_public(Printer)) - set(_public(SyncPrinter)) - ASYNC_ONLY
    assert not missing, f"SyncPrinter lacks {sorted(missing)}"


def test_sync_printer_methods_take_the_same_parameters() -> None:
    sync = _public(SyncPrinter)
    for name, member in _public(Printer).items():
        if not callable(member) or isinstance(member, property) or name in ASYNC_ONLY:
            continue
        ours = inspect.signature(member).parameters
        theirs = inspect.signature(sync[name]).parameters
        assert list(ours) == [p for p in theirs if p not in SYNC_EXTRA_PARAMETERS or p in ours], (
            name
        )
        for pname, param in ours.items():
            assert theirs[pname].default == param.default, f"{name}({pname}=...)"
