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


class BambuTimeout(BambuError, TimeoutError):
    """Something did not happen in time: a connection (``ConnectTimeout``), a reply or a
    state (``CommandTimeout``). Also a builtin ``TimeoutError``."""


class ConfigError(BambuError):
    """Missing or invalid settings (host, serial, access code, profile, file paths)."""


class ConnectError(BambuError):
    """The printer could not be reached or closed the connection before it was usable.

    ``retryable`` says whether waiting can help (a busy or starting printer, a dropped
    network) or not (a refused access code, an untrusted identity, a host that does not
    exist); ``retry_reason`` is the short reason a retry notice shows.
    """

    retryable: bool = True
    retry_reason: str = ""


class ConnectTimeout(ConnectError, BambuTimeout):
    """No usable connection within the caller's deadline (the last failure is in the text)."""


class ClosedBeforeConnack(ConnectError):
    """The printer closed the connection after CONNECT, without answering it."""

    retry_reason = "the printer is at its session limit (closed before CONNACK)"
    hint = (
        "the printer accepts only a few sessions (about 4 on the A1) and refuses new ones while "
        "starting up: close Bambu Studio, Handy or Home Assistant, or wait 30 s and retry"
    )


class ConnackTimeout(ConnectError):
    """TLS and CONNECT went through, but no CONNACK came in time."""

    retry_reason = "the printer does not answer CONNECT"


class ServerUnavailable(ConnectError):
    """CONNACK 3: the broker is up but not serving yet (printer starting up)."""

    retry_reason = "the printer is starting up (CONNACK 3)"
    hint = "the printer is still starting up: wait 30 seconds and retry"


class HostNotFound(ConnectError):
    """The host name does not resolve: bad input, not worth retrying."""

    retryable = False


class AuthError(ConnectError):
    """CONNACK 5: the printer refused the access code."""

    retryable = False
    hint = (
        "re-read the access code on the printer's screen (Settings > WLAN/Network on the A1); "
        "it changes when LAN-only or Developer Mode is toggled"
    )


class TrustError(ConnectError):
    """The printer's certificate is not the one we trust; no credentials were sent."""

    retryable = False


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

    @classmethod
    def from_hms(cls, *, command: str = "") -> DeveloperModeRequired:
        """The refusal seen only as the printer's HMS alert 0500_0500_0001_0007."""
        return cls("HMS 0500_0500_0001_0007: MQTT command verification failed", command=command)

    hint = (
        "turn on LAN-only mode and then Developer Mode on the printer's screen, then re-read "
        "the access code (it changes when the mode is toggled)"
    )


class CommandTimeout(CommandError, BambuTimeout):
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
    "BambuTimeout",
    "ClosedBeforeConnack",
    "CommandError",
    "CommandRejected",
    "CommandTimeout",
    "ConfigError",
    "ConnackTimeout",
    "ConnectError",
    "ConnectTimeout",
    "DeveloperModeRequired",
    "FileTransferError",
    "HostNotFound",
    "NotConnected",
    "PrintFailed",
    "PrintFileError",
    "RemoteFileNotFound",
    "ServerUnavailable",
    "StorageFull",
    "TrustError",
]
