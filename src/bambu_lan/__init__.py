"""bambu-lan: talk to Bambu Lab printers on the local network, no cloud.

The public surface is what this module exports; everything else may change. Names are
imported on first use (PEP 562), so ``bambu-lan --help`` does not pay for paho and asyncio.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

# A library leaves showing its log to the application (the logging HOWTO's advice): without
# this, an application that never configured logging gets our warnings on stderr through
# Python's last-resort handler. The CLI shows them its own way (bambu_lan.cli.log_lines).
logging.getLogger(__name__).addHandler(logging.NullHandler())

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
    "BambuTimeout": "bambu_lan.errors",
    "ClosedBeforeConnack": "bambu_lan.errors",
    "ConnackTimeout": "bambu_lan.errors",
    "ConnectTimeout": "bambu_lan.errors",
    "HostNotFound": "bambu_lan.errors",
    "ServerUnavailable": "bambu_lan.errors",
    "Update": "bambu_lan.printer",
    "UpdateStream": "bambu_lan.printer",
    "Command": "bambu_lan.protocol.commands",
    "Reply": "bambu_lan.protocol.commands",
    "PrinterCore": "bambu_lan.protocol.core",
    "Step": "bambu_lan.protocol.core",
    "Pending": "bambu_lan.protocol.core",
    "Outgoing": "bambu_lan.protocol.core",
    "Outcome": "bambu_lan.protocol.core",
    "PrinterInfo": "bambu_lan.protocol.state",
    "LinkState": "bambu_lan.session",
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
    "AmsKind": "bambu_lan.protocol.state",
    "AmsUnit": "bambu_lan.protocol.state",
    "Fans": "bambu_lan.protocol.state",
    "Job": "bambu_lan.protocol.state",
    "Nozzle": "bambu_lan.protocol.state",
    "Speed": "bambu_lan.protocol.state",
    "Temperatures": "bambu_lan.protocol.state",
    "Tray": "bambu_lan.protocol.state",
    "HmsAlert": "bambu_lan.protocol.errors_table",
    "PrintError": "bambu_lan.protocol.errors_table",
    "SequenceIds": "bambu_lan.protocol.commands",
    "Progress": "bambu_lan.files",
    "Camera": "bambu_lan.camera",
}

__all__ = [
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
    from bambu_lan.camera import Camera
    from bambu_lan.config import PrinterConfig, Secret, resolve_printer
    from bambu_lan.errors import (
        AuthError,
        BambuError,
        BambuTimeout,
        ClosedBeforeConnack,
        CommandError,
        CommandRejected,
        CommandTimeout,
        ConfigError,
        ConnackTimeout,
        ConnectError,
        ConnectTimeout,
        DeveloperModeRequired,
        FileTransferError,
        HostNotFound,
        NotConnected,
        PrintFailed,
        PrintFileError,
        RemoteFileNotFound,
        ServerUnavailable,
        StorageFull,
        TrustError,
    )
    from bambu_lan.farm import Farm
    from bambu_lan.files import Progress, RemoteEntry, Storage, SyncStorage
    from bambu_lan.print_job import PrintOptions, PrintStarted
    from bambu_lan.printer import CommandResult, Printer, PrinterOptions, Update, UpdateStream
    from bambu_lan.protocol.commands import Command, Reply, SequenceIds
    from bambu_lan.protocol.core import Outcome, Outgoing, Pending, PrinterCore, Step
    from bambu_lan.protocol.errors_table import HmsAlert, PrintError
    from bambu_lan.protocol.events import Event, EventKind
    from bambu_lan.protocol.state import (
        AmsKind,
        AmsUnit,
        Fans,
        Job,
        JobState,
        Nozzle,
        PrinterInfo,
        PrinterState,
        Speed,
        Temperatures,
        Tray,
    )
    from bambu_lan.session import ConnectionStatus, LinkState, SessionOptions
    from bambu_lan.sync import SyncPrinter
    from bambu_lan.trust import TrustConfig
