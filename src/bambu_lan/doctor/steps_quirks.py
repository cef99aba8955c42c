"""Step 6, quirks (``probe_quirks``; it spends the printer's sessions): what this printer does
with an early subscribe, a wildcard subscribe, TLS 1.3, default TLS settings and a reused
client id. Informative only: a quirk never fails the diagnosis."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

from bambu_lan.doctor.probes import (
    ProbeError,
    probe_default_tls,
    probe_early_subscribe,
    probe_reused_id,
    probe_wildcard,
)
from bambu_lan.doctor.result import Status
from bambu_lan.doctor.run import DoctorRun


async def check_quirks(run: DoctorRun) -> None:
    assert run.peer is not None
    fingerprint = run.peer.fingerprint
    cfg, t = run.cfg, run.t
    probes: list[tuple[str, Callable[[], tuple[str, str]]]] = [
        ("quirk.early_subscribe", lambda: probe_early_subscribe(cfg, fingerprint, t.quirk)),
        ("quirk.wildcard_subscribe", lambda: probe_wildcard(cfg, fingerprint, t.quirk)),
    ]
    for step_id, probe in probes:
        await _quirk(run, step_id, probe)
    _quirk_tls13(run)
    await _quirk(run, "quirk.default_tls", lambda: probe_default_tls(cfg.host, cfg.port, t.quirk))
    await _quirk(run, "quirk.reused_client_id", lambda: probe_reused_id(cfg, fingerprint, t.quirk))


async def _quirk(run: DoctorRun, step_id: str, probe: Callable[[], tuple[str, str]]) -> None:
    started = time.monotonic()
    try:
        behaviour, evidence = await asyncio.to_thread(probe)
    except (ProbeError, OSError, ssl.SSLError) as exc:
        behaviour, evidence = "inconclusive", f"could not probe: {exc}"
    status = Status.WARN if behaviour == "inconclusive" else Status.PASS
    run.record(
        step_id, status, f"{behaviour}: {evidence}", required=False, started=started,
        data={"behaviour": behaviour},
    )  # fmt: skip


def _quirk_tls13(run: DoctorRun) -> None:
    r = run.tls13
    if r is None:
        run.record("quirk.tls13", Status.SKIP, "not probed", required=False)
        return
    behaviour, evidence = {
        "ok": ("tolerated", f"a TLS 1.3-only client connects ({r.version})"),
        "refused": ("dropped", f"a TLS 1.3-only client is refused ({r.detail})"),
        "closed": ("dropped", f"a TLS 1.3-only client is refused ({r.detail})"),
        "no_answer": ("dropped", "a TLS 1.3-only client gets no answer and hangs"),
    }.get(r.outcome, ("inconclusive", r.detail))
    status = Status.WARN if behaviour == "inconclusive" else Status.PASS
    run.record(
        "quirk.tls13", status, f"{behaviour}: {evidence} (seen in the TLS 1.3 step)",
        required=False, data={"behaviour": behaviour},
    )  # fmt: skip
