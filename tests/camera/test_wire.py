"""The port-6000 wire format without sockets: login, headers, buffering by length."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bambu_lan.protocol.camera_wire import (
    HEADER_SIZE,
    FrameDecoder,
    FrameTooLarge,
    frame_header,
    is_whole_jpeg,
    login_packet,
)

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3 + b"\xff\xd9"


def test_login_packet_is_the_documented_80_bytes() -> None:
    packet = login_packet("12345678")
    assert len(packet) == 80
    # protocol.md §7.1: the first 20 bytes, byte for byte.
    assert packet[:20].hex(" ") == "40 00 00 00 00 30 00 00 00 00 00 00 00 00 00 00 62 62 6c 70"
    assert packet[16:48] == b"bblp".ljust(32, b"\0")
    assert packet[48:80] == b"12345678".ljust(32, b"\0")


def test_login_refuses_a_code_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="32"):
        login_packet("x" * 33)


def test_header_layout() -> None:
    assert struct.unpack("<IIII", frame_header(1234)) == (1234, 0, 1, 0)


def test_one_frame_in_one_piece() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame_header(len(JPEG)) + JPEG) == [JPEG]
    assert decoder.pending == 0
    assert not decoder.in_frame


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_any_split_gives_the_same_frames(cuts: list[int]) -> None:
    """TLS may deliver the stream in any pieces: frames come from lengths, not reads."""
    stream = (frame_header(len(JPEG)) + JPEG) * 3
    decoder = FrameDecoder()
    frames: list[bytes] = []
    position = 0
    for cut in cuts:
        frames += decoder.feed(stream[position : position + cut])
        position += cut
    frames += decoder.feed(stream[position:])
    assert frames == [JPEG] * 3
    assert decoder.stats.frames == 3
    assert decoder.pending == 0


def test_a_payload_that_is_not_a_jpeg_is_dropped_and_counted() -> None:
    decoder = FrameDecoder()
    junk = b"hello, not a picture"
    cut_off = JPEG[:-2]  # no end marker: not a whole JPEG
    out = decoder.feed(
        frame_header(len(junk)) + junk + frame_header(len(cut_off)) + cut_off
        + frame_header(len(JPEG)) + JPEG
    )  # fmt: skip
    assert out == [JPEG]
    assert decoder.stats.not_jpeg == 2
    assert decoder.stats.frames == 1


def test_a_huge_length_is_refused_before_any_of_it_is_buffered() -> None:
    decoder = FrameDecoder(max_frame=1024 * 1024)
    with pytest.raises(FrameTooLarge, match="52,428,800"):
        decoder.feed(frame_header(50 * 1024 * 1024) + b"\xff\xd8\xff" + b"x" * 1000)
    assert decoder.pending == 0  # nothing of the announced 50 MB is held


def test_a_stream_cut_in_a_frame_is_seen_as_incomplete() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame_header(len(JPEG)) + JPEG[:100]) == []
    assert decoder.in_frame
    partial = FrameDecoder()
    partial.feed(frame_header(len(JPEG))[: HEADER_SIZE - 3])
    assert partial.in_frame


def test_is_whole_jpeg() -> None:
    assert is_whole_jpeg(JPEG)
    assert not is_whole_jpeg(b"")
    assert not is_whole_jpeg(JPEG[:-1])
    assert not is_whole_jpeg(b"GIF89a" + JPEG)
