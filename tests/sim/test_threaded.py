"""``SimThread``: a simulator on a background loop, driven from blocking code."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bambu_lan.errors import ConfigError
from bambu_lan.sim import SimFleet, SimThread, SimulatedPrinter


def test_run_and_call_from_blocking_code(sim_thread: SimThread[SimulatedPrinter]) -> None:
    sim = sim_thread.target
    assert sim.running
    assert sim_thread.alive
    assert sim_thread.call(lambda: threading.current_thread().name) == "bambu-lan-sim"
    assert sim_thread.call(sim.drop_connections) == 0
    sim_thread.run(sim.broker.wait_for_sessions(0))


def test_stop_ends_the_thread_and_closes_the_port(sim_cert_dir: Path) -> None:
    st = SimThread(SimulatedPrinter(cert_dir=sim_cert_dir))
    with st:
        port = st.target.port
        loop = st.loop
    assert not st.alive
    assert loop.is_closed()
    assert not st.target.running
    with pytest.raises(RuntimeError):
        st.loop  # noqa: B018
    st.stop()  # idempotent
    probe = SimThread(SimulatedPrinter(cert_dir=sim_cert_dir, port=port))
    with probe:  # the port is free again
        assert probe.target.port == port


def test_start_errors_reach_the_caller(
    sim_thread: SimThread[SimulatedPrinter], sim_cert_dir: Path
) -> None:
    busy = SimThread(SimulatedPrinter(cert_dir=sim_cert_dir, port=sim_thread.target.port))
    with pytest.raises(ConfigError, match="already in use"):
        busy.start()
    assert not busy.alive


def test_a_fleet_runs_too(sim_cert_dir: Path) -> None:
    with SimThread(SimFleet(3, port=0, cert_dir=sim_cert_dir)) as st:
        assert len(st.target.listing()) == 3
        assert st.call(st.target.drop_connections) == 0
