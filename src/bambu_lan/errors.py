"""The bambu-lan exception family: one root, one subclass per cause a user can act on.

Every message is one line a person can act on, and none of them ever contains the access code.
"""

from __future__ import annotations


class BambuError(Exception):
    """Root of every error bambu-lan raises on purpose.

    ``hint`` is a short, concrete next step for the user (shown by the CLI under the message).
    """

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(BambuError):
    """Missing or invalid settings (host, serial, access code, profile, file paths)."""


class ConnectError(BambuError):
    """The printer could not be reached or closed the connection before it was usable."""


class AuthError(ConnectError):
    """CONNACK 5: the printer refused the access code."""

    hint = (
        "re-read the access code on the printer's screen (Settings > WLAN/Network on the A1); "
        "it changes when LAN-only or Developer Mode is toggled"
    )


class TrustError(ConnectError):
    """The printer's certificate is not the one we trust; no credentials were sent."""


class NotConnected(BambuError):
    """A command was sent while there is no live MQTT session."""


class CommandError(BambuError):
    """A command did not succeed."""


class CommandRejected(CommandError):
    """The printer answered ``result: failed``."""

    def __init__(self, reason: str, err_code: int | None = None, *, command: str = "") -> None:
        self.reason = reason
        self.err_code = err_code
        self.command = command
        code = f" (err_code {err_code})" if err_code else ""
        what = f"{command}: " if command else ""
        super().__init__(f"{what}printer rejected the command: {reason or 'no reason given'}{code}")


class DeveloperModeRequired(CommandRejected):
    """The printer refused an unsigned control command (``mqtt message verify failed``)."""

    def __init__(self, reason: str, err_code: int | None = None, *, command: str = "") -> None:
        super().__init__(reason, err_code, command=command)
        what = f"{command}: " if command else ""
        code = f", err_code {err_code}" if err_code else ""
        self.args = (f"{what}the printer needs Developer Mode for this command ({reason}{code})",)

    hint = (
        "turn on LAN-only mode and then Developer Mode on the printer's screen, then re-read "
        "the access code (it changes when the mode is toggled)"
    )


class CommandTimeout(CommandError, TimeoutError):
    """No reply and no confirming state change within the timeout."""


class FileTransferError(BambuError):
    """The printer's storage (FTPS) refused or broke off an operation."""


class RemoteFileNotFound(FileTransferError):
    """No such file or folder on the printer's storage (FTP 550)."""


class StorageFull(FileTransferError):
    """The printer's card is full (FTP 552); the partial file was removed."""

    hint = "delete old files (timelapses, cached jobs) with `bambu-lan files rm`, or free the card"


class PrintFileError(BambuError):
    """A file to print is not one this printer can print (checked before anything is sent)."""


class PrintFailed(CommandError):
    """The printer accepted a job but reported it failed before it started."""


__all__ = [
    "AuthError",
    "BambuError",
    "CommandError",
    "CommandRejected",
    "CommandTimeout",
    "ConfigError",
    "ConnectError",
    "DeveloperModeRequired",
    "FileTransferError",
    "NotConnected",
    "PrintFailed",
    "PrintFileError",
    "RemoteFileNotFound",
    "StorageFull",
    "TrustError",
]
