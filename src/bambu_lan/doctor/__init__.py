"""``bambu-lan doctor`` as a library: why a printer connection fails, and how to fix it.

``diagnose(cfg)`` walks the path a client takes, one step at a time, and stops at the first
required step that fails, naming one cause and one fix in plain words::

    diagnosis = await diagnose(cfg, check_control=True)
    print(diagnosis.verdict)          # one line
    for step in diagnosis.steps:      # ordered: input, network, TLS, MQTT, control, quirks
        print(step.status, step.title, step.evidence)

The steps:

1. **Input**: the address, the serial's shape (15 characters, upper case: a lower-case serial
   connects and then receives nothing), the access code's shape, the trust settings.
2. **Network**: TCP to the MQTT port; refused, no answer and unreachable are told apart.
   Optionally FTPS (990) and the camera (6000).
3. **TLS**: a TLS 1.2 handshake (cipher, certificate), a TLS 1.3-only attempt (refused or no
   answer: protocol.md §15), the certificate's CN against the serial, the chain against the
   given CA, the pinned fingerprint. The doctor never pins anything.
4. **MQTT**: CONNACK (5: access code; closed before CONNACK: session limit; 3: starting up;
   none in time), subscribe, first report (none: a silent printer), pushall → full report,
   get_version → model and firmware.
5. **Control** (``check_control``): one harmless signed-class command tells whether Developer
   Mode is on.
6. **Quirks** (``probe_quirks``, spends sessions): what this printer does with an early
   subscribe, a wildcard subscribe, TLS 1.3, default TLS settings and a reused client id.

The access code is never formatted into a step, the verdict or the JSON; as a second lock,
every text a step records also passes through ``redact``.

The package: ``result.py`` (the result model: ``Step``, ``Diagnosis``, ``CAUSES``,
``DoctorTimeouts``), ``run.py`` (one diagnosis in progress: the plan, recording steps,
stopping at the first required failure), the steps in order (``steps_input.py``,
``steps_network.py`` for TCP and TLS, ``steps_mqtt.py`` for MQTT and control: one
``session.Link`` feeding the library's own ``PrinterCore``, which decodes, merges, matches
replies and sees Developer Mode refusals exactly as for ``Printer``;
``steps_quirks.py``), and ``probes.py`` (raw blocking TLS handshakes and a deliberately crude
MQTT client for the quirk probes). It never imports the simulator.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

from bambu_lan.config import PrinterConfig
from bambu_lan.doctor.result import (
    CAUSES,
    EXTRA_PORTS,
    Diagnosis,
    DoctorTimeouts,
    Status,
    Step,
    config_failure,
    mosquitto_sub_command,
)
from bambu_lan.doctor.run import Blocked, DoctorRun
from bambu_lan.doctor.steps_input import check_input
from bambu_lan.doctor.steps_mqtt import check_mqtt
from bambu_lan.doctor.steps_network import check_network, check_tls
from bambu_lan.doctor.steps_quirks import check_quirks

__all__ = [
    "CAUSES",
    "EXTRA_PORTS",
    "Diagnosis",
    "DoctorTimeouts",
    "Status",
    "Step",
    "config_failure",
    "diagnose",
    "mosquitto_sub_command",
]


async def diagnose(
    cfg: PrinterConfig,
    *,
    check_control: bool = False,
    probe_quirks: bool = False,
    ports: Sequence[int] = (),
    timeouts: DoctorTimeouts | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Diagnosis:
    """Diagnose the connection to one printer; never raises for a printer problem.

    ``cfg`` need not be valid (``PrinterConfig(...)`` without ``validate()``): invalid input
    is the first thing reported. ``ports``: other TCP ports to check as well (``EXTRA_PORTS``:
    FTPS and camera). ``check_control`` sends one harmless control command;
    ``probe_quirks`` opens several deliberately wrong sessions (it spends the printer's
    sessions: run it when nothing else is connected). ``on_step`` sees each step as it ends.
    """
    started = time.monotonic()
    run = DoctorRun(
        cfg,
        check_control=check_control,
        probe_quirks=probe_quirks,
        ports=ports,
        timeouts=timeouts or DoctorTimeouts(),
        on_step=on_step,
    )
    with contextlib.suppress(Blocked):
        await check_input(run)
        await check_network(run)
        await check_tls(run)
        await check_mqtt(run)
        if probe_quirks:
            await check_quirks(run)
    return run.result(started)
