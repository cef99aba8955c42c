"""``PrinterConfig``: everything needed to reach one printer, and its validation."""

from __future__ import annotations

import dataclasses
from dataclasses import field

from bambu_lan.config.inputs import DEFAULT_FTPS_PORT, normalize_host, parse_port
from bambu_lan.config.secret import Secret, access_code_problem
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.topics import DEFAULT_PORT, serial_problem
from bambu_lan.trust import TrustConfig


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class PrinterConfig(Record):
    """Everything needed to reach one printer."""

    host: str
    serial: str
    access_code: Secret = field(repr=False)
    port: int = DEFAULT_PORT
    trust: TrustConfig = field(default_factory=TrustConfig)
    name: str = ""
    camera_port: int | None = None  # None: the model's own (6000 JPEG, 322 RTSPS)
    ftps_port: int = DEFAULT_FTPS_PORT

    def validate(self) -> PrinterConfig:
        """This config with the host normalised, or a ConfigError for the first problem
        (checked before any connection: host, serial, access code, port, trust files)."""
        host = normalize_host(self.host)
        problem = serial_problem(self.serial)
        if problem:
            raise ConfigError(
                f"serial number: {problem}",
                hint="the serial is on the printer's screen (Settings > Device) and its label",
            )
        code_problem = access_code_problem(self.access_code.reveal())
        if code_problem:
            raise ConfigError(
                code_problem,
                hint="the access code is on the printer's screen (Settings > WLAN on the A1, "
                "LAN-only mode); pass --access-code-file FILE, --access-code or set "
                "BAMBU_ACCESS_CODE",
            )
        parse_port(self.port)
        if self.camera_port is not None:
            parse_port(self.camera_port, source="--camera-port")
        parse_port(self.ftps_port, source="ftps_port")
        self.trust.check()
        return self if host == self.host else dataclasses.replace(self, host=host)

    @property
    def label(self) -> str:
        return self.name or self.serial
