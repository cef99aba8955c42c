"""bambu-lan: talk to Bambu Lab printers on the local network, no cloud.

The public surface is what this module exports; everything else may change.
"""

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
