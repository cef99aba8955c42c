"""A faithful simulated Bambu Lab printer: real TLS 1.2, a strict MQTT broker, a live model.

Every test of bambu-lan runs against it, ``bambu-lan sim`` serves it on the network and
``bambu-lan demo`` shows it live::

    from bambu_lan.sim import SimulatedPrinter

    async with SimulatedPrinter(model="a1", cert_dir="certs") as sim:
        print(sim.connection_info())

``SimFleet`` runs many printers in one process; ``SimThread`` runs either on a background
thread for blocking code.

Where things live (each module one job; imports point down the list):

- ``device.py`` ``SimulatedPrinter`` (one printer: certificates, listener, broker, model,
  fault verbs), ``fleet.py`` ``SimFleet``, ``threaded.py`` ``SimThread``.
- ``broker.py`` + ``mqtt_wire/``: the strict MQTT 3.1.1 broker over TLS 1.2 (``certs.py``),
  with the A1's rules and the connection-level faults; ``broker_rules.py`` (the rules, close
  reasons, counters), ``broker_table.py`` (live connections, waiters) and
  ``broker_connection.py`` (one client's TLS and MQTT state machine) are its parts.
- ``printer.py`` ``PrinterModel``: the firmware as MQTT sees it, assembled from ``model/``:
  ``model/state.py`` (the report object and every change to it), ``model/physics.py``
  (temperatures, job progress), ``model/pushes.py`` (full reports, deltas, replies),
  ``model/handlers.py`` (one handler per command, by table), ``model/gcode.py`` and
  ``model/scenarios.py`` (test verbs such as ``start_print``).
- ``report.py`` builds the report objects; ``profiles.py`` holds one profile per model.
"""

from __future__ import annotations

from bambu_lan.sim.device import SimulatedPrinter
from bambu_lan.sim.fleet import SimFleet
from bambu_lan.sim.profiles import PROFILES, ModelProfile, get_profile
from bambu_lan.sim.threaded import SimThread

__all__ = ["PROFILES", "ModelProfile", "SimFleet", "SimThread", "SimulatedPrinter", "get_profile"]
