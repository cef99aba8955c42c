"""bambu-lan: talk to Bambu Lab printers on the local network, no cloud.

The public surface is what this module exports; everything else may change. Names are
imported on first use (PEP 562), so ``bambu-lan --help`` does not pay for paho and asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AuthError": "bambu_lan.errors",
    "BambuError": "bambu_lan.errors",
    "CommandError": "bambu_lan.errors",
    "CommandRejected": "bambu_lan.errors",
    "CommandTimeout": "bambu_lan.errors",
    "ConfigError": "bambu_lan.errors",
    "ConnectError": "bambu_lan.errors",
    "DeveloperModeRequired": "bambu_lan.errors",
    "NotConnected": "bambu_lan.errors",
    "TrustError": "bambu_lan.errors",
    "PrinterConfig": "bambu_lan.config",
    "Secret": "bambu_lan.config",
    "resolve_printer": "bambu_lan.config",
    "Farm": "bambu_lan.farm",
    "CommandResult": "bambu_lan.printer",
    "Printer": "bambu_lan.printer",
    "PrinterOptions": "bambu_lan.printer",
    "Event": "bambu_lan.protocol.events",
    "EventKind": "bambu_lan.protocol.events",
    "JobState": "bambu_lan.protocol.state",
    "PrinterState": "bambu_lan.protocol.state",
    "ConnectionStatus": "bambu_lan.session",
    "SessionOptions": "bambu_lan.session",
    "SyncPrinter": "bambu_lan.sync",
    "TrustConfig": "bambu_lan.trust",
    "FileTransferError": "bambu_lan.errors",
    "PrintFailed": "bambu_lan.errors",
    "PrintFileError": "bambu_lan.errors",
    "RemoteFileNotFound": "bambu_lan.errors",
    "StorageFull": "bambu_lan.errors",
    "Storage": "bambu_lan.files",
    "SyncStorage": "bambu_lan.files",
    "RemoteEntry": "bambu_lan.files",
    "PrintOptions": "bambu_lan.print_job",
    "PrintStarted": "bambu_lan.print_job",
}

__all__ = [
    "AuthError",
    "BambuError",
    "CommandError",
    "CommandRejected",
    "CommandResult",
    "CommandTimeout",
    "ConfigError",
    "ConnectError",
    "ConnectionStatus",
    "DeveloperModeRequired",
    "Event",
    "EventKind",
    "Farm",
    "FileTransferError",
    "JobState",
    "NotConnected",
    "PrintFailed",
    "PrintFileError",
    "PrintOptions",
    "PrintStarted",
    "Printer",
    "PrinterConfig",
    "PrinterOptions",
    "PrinterState",
    "RemoteEntry",
    "RemoteFileNotFound",
    "Secret",
    "SessionOptions",
    "Storage",
    "StorageFull",
    "SyncPrinter",
    "SyncStorage",
    "TrustConfig",
    "TrustError",
    "resolve_printer",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bambu_lan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from bambu_lan.config import PrinterConfig, Secret, resolve_printer
    from bambu_lan.errors import (
        AuthError,
        BambuError,
        CommandError,
        CommandRejected,
        CommandTimeout,
        ConfigError,
        ConnectError,
        DeveloperModeRequired,
        FileTransferError,
        NotConnected,
        PrintFailed,
        PrintFileError,
        RemoteFileNotFound,
        StorageFull,
        TrustError,
    )
    from bambu_lan.farm import Farm
    from bambu_lan.files import RemoteEntry, Storage, SyncStorage
    from bambu_lan.print_job import PrintOptions, PrintStarted
    from bambu_lan.printer import CommandResult, Printer, PrinterOptions
    from bambu_lan.protocol.events import Event, EventKind
    from bambu_lan.protocol.state import JobState, PrinterState
    from bambu_lan.session import ConnectionStatus, SessionOptions
    from bambu_lan.sync import SyncPrinter
    from bambu_lan.trust import TrustConfig
