"""A faithful simulated Bambu Lab printer: real TLS 1.2, a strict MQTT broker, a live model.

Every test of bambu-lan runs against it, ``bambu-lan sim`` serves it on the network and
``bambu-lan demo`` shows it live::

    from bambu_lan.sim import SimulatedPrinter

    async with SimulatedPrinter(model="a1", cert_dir="certs") as sim:
        print(sim.connection_info())

``SimFleet`` runs many printers in one process; ``SimThread`` runs either on a background
thread for blocking code.
"""

from __future__ import annotations

from bambu_lan.sim.device import SimulatedPrinter
from bambu_lan.sim.fleet import SimFleet
from bambu_lan.sim.profiles import PROFILES, ModelProfile, get_profile
from bambu_lan.sim.threaded import SimThread

__all__ = ["PROFILES", "ModelProfile", "SimFleet", "SimThread", "SimulatedPrinter", "get_profile"]
