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
    "JobState",
    "NotConnected",
    "Printer",
    "PrinterConfig",
    "PrinterOptions",
    "PrinterState",
    "Secret",
    "SessionOptions",
    "SyncPrinter",
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
        NotConnected,
        TrustError,
    )
    from bambu_lan.farm import Farm
    from bambu_lan.printer import CommandResult, Printer, PrinterOptions
    from bambu_lan.protocol.events import Event, EventKind
    from bambu_lan.protocol.state import JobState, PrinterState
    from bambu_lan.session import ConnectionStatus, SessionOptions
    from bambu_lan.sync import SyncPrinter
    from bambu_lan.trust import TrustConfig
