"""The client against a real mosquitto broker configured like a printer (not our simulator)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.client.mosquitto_printer import MosquittoPrinter, mosquitto_printer

from bambu_lan import AuthError, JobState, Printer, TrustError
from bambu_lan.printer import PrinterOptions
from bambu_lan.session import SessionOptions


@pytest.fixture
def broker(tmp_path: Path):
    with mosquitto_printer(tmp_path) as running:
        yield running


async def test_wire_sequence_and_state_match_what_was_published(broker: MosquittoPrinter) -> None:
    async with Printer(
        broker.host, broker.serial, broker.access_code, port=broker.port, ca_file=broker.ca_path
    ) as printer:
        state = await printer.wait_for_state(timeout=10)
        # The ACL allows only the two topics: anything else (wildcards, /request subscription)
        # would have been refused. The first two requests are get_version then pushall.
        requests = broker.wait_for_requests(2)
        assert [next(iter(r.values()))["command"] for r in requests[:2]] == [
            "get_version",
            "pushall",
        ]
        assert state.complete
        report = broker.full_report
        assert state.job.state is JobState(report["gcode_state"])
        assert state.temperatures.nozzle == pytest.approx(float(report["nozzle_temper"]))
        assert state.wifi_signal_dbm == int(report["wifi_signal"].removesuffix("dBm"))
        assert len(state.ams[0].trays) == len(report["ams"]["ams"][0]["tray"])
        assert {k: state.raw[k] for k in report} == report

        # A delta merges into the state; nested AMS trays survive it.
        before = printer.state
        assert before is not None
        broker.publish_report(
            {"nozzle_temper": 201.5, "mc_percent": 7, "command": "push_status", "msg": 1}
        )
        assert await printer._live().wait_until(
            lambda: printer.state is not None and printer.state.temperatures.nozzle == 201.5, 5
        )
        after = printer.state
        assert after is not None
        assert after.job.progress == 7
        assert after.ams == before.ams

        # get_version answered: model and firmware are known.
        assert await printer._live().wait_until(lambda: printer.info is not None, 5)
        assert printer.info is not None and printer.info.model == "A1"


async def test_wrong_access_code_is_auth_error(broker: MosquittoPrinter) -> None:
    with pytest.raises(AuthError) as caught:
        async with Printer(
            broker.host, broker.serial, "00000000", port=broker.port, ca_file=broker.ca_path
        ):
            pass
    assert "00000000" not in str(caught.value)
    assert caught.value.hint


async def test_foreign_ca_is_refused_before_credentials(
    broker: MosquittoPrinter, tmp_path: Path
) -> None:
    from bambu_lan.sim.certs import CertAuthority

    other = CertAuthority.load_or_create(tmp_path / "other-ca")
    options = PrinterOptions(session=SessionOptions(connect_timeout=5))
    with pytest.raises(TrustError, match="not signed by the given CA"):
        async with Printer(
            broker.host,
            broker.serial,
            broker.access_code,
            port=broker.port,
            ca_file=other.ca_path,
            options=options,
        ):
            pass
