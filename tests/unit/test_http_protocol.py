"""The response cycle's transport (``kpihub.http.protocol``): a response's head leaves
with its body in one send, and nothing held is ever left behind."""

from __future__ import annotations

import asyncio

import pytest

from kpihub.http.protocol import _OneSendTransport

pytestmark = pytest.mark.anyio


class Recorded:
    """What the connection's transport was asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[bytes, ...]]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", (data,)))

    def writelines(self, pieces: tuple[bytes, ...]) -> None:
        self.calls.append(("writelines", tuple(pieces)))

    def close(self) -> None:
        self.calls.append(("close", ()))

    def is_closing(self) -> bool:
        return False


def one_send(recorded: Recorded) -> _OneSendTransport:
    return _OneSendTransport(recorded, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_head_and_its_body_leave_in_one_send() -> None:
    recorded = Recorded()
    transport = one_send(recorded)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorded.calls == []  # held for the body
    transport.write(b"{}")
    assert recorded.calls == [("writelines", (b"HTTP/1.1 200 OK\r\n\r\n", b"{}"))]
    await asyncio.sleep(0)
    assert len(recorded.calls) == 1  # nothing left to flush


async def test_a_lone_write_leaves_at_the_end_of_the_loop_turn() -> None:
    recorded = Recorded()
    transport = one_send(recorded)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert recorded.calls == [("write", (b"HTTP/1.1 100 Continue\r\n\r\n",))]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")
    assert recorded.calls[1:] == [("writelines", (b"HTTP/1.1 200 OK\r\n\r\n", b"{}"))]


async def test_a_close_sends_what_is_held_first_and_the_rest_is_the_transports() -> None:
    recorded = Recorded()
    transport = one_send(recorded)
    assert transport.is_closing() is False  # delegated
    transport.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    transport.close()
    assert recorded.calls == [
        ("write", (b"HTTP/1.1 500 Internal Server Error\r\n\r\n",)),
        ("close", ()),
    ]
    await asyncio.sleep(0)
    assert len(recorded.calls) == 2
