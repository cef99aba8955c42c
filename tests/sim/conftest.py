"""Fixtures of the simulator tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
from tests.sim.support import RawClient

from bambu_lan.sim import SimulatedPrinter


class ClientPool:
    """Opens raw clients and closes every one of them at teardown (no leaked sockets)."""

    def __init__(self) -> None:
        self.clients: list[RawClient] = []

    async def open(
        self, sim: SimulatedPrinter, *, context: ssl.SSLContext | None = None
    ) -> RawClient:
        client = await RawClient.open(sim, context=context)
        self.clients.append(client)
        return client

    async def session(
        self, sim: SimulatedPrinter, client_id: str | None = None, *, subscribe: bool = True
    ) -> RawClient:
        client = await RawClient.session(sim, client_id, subscribe=subscribe)
        self.clients.append(client)
        return client

    async def close_all(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def clients() -> AsyncIterator[ClientPool]:
    """Raw MQTT clients for broker tests, all closed at teardown."""
    pool = ClientPool()
    yield pool
    await pool.close_all()
