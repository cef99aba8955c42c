"""decode_payload: bytes to a JSON object, leniently; odd payloads counted (protocol.md §3.3)."""

from __future__ import annotations

import logging

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_lan.protocol.decode import (
    EMPTY,
    NOT_JSON,
    NOT_OBJECT,
    NOT_UTF8,
    TRAILING_NUL,
    DecodeStats,
    decode_payload,
)

DELTA = {"print": {"bed_temper": 11.96875, "command": "push_status", "msg": 1, "sequence_id": "4"}}
LOGGER = "bambu_lan.protocol"


def test_compact_json_object_is_returned_and_not_counted() -> None:
    stats = DecodeStats()
    assert decode_payload(orjson.dumps(DELTA), stats) == DELTA
    assert stats.total == 0


def test_pretty_printed_x1_style_json_is_fine() -> None:
    stats = DecodeStats()
    payload = orjson.dumps(DELTA, option=orjson.OPT_INDENT_2) + b"\n"
    assert decode_payload(payload, stats) == DELTA
    assert stats.total == 0


def test_decoding_without_stats_still_works() -> None:
    assert decode_payload(b"\xff\xfe", None) is None
    assert decode_payload(b"", None) is None
    assert decode_payload(b"[1]", None) is None
    assert decode_payload(orjson.dumps(DELTA) + b"\x00", None) == DELTA


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00", b"\x00\n", b"\n\x00 "])
def test_trailing_nul_is_stripped_and_counted(tail: bytes) -> None:
    stats = DecodeStats()
    assert decode_payload(orjson.dumps(DELTA) + tail, stats) == DELTA
    assert stats.counts == {TRAILING_NUL: 1}


def test_latin1_bytes_are_decoded_and_counted() -> None:
    stats = DecodeStats()
    payload = '{"print":{"subtask_name":"Würfel","msg":1}}'.encode("latin-1")
    assert decode_payload(payload, stats) == {"print": {"subtask_name": "Würfel", "msg": 1}}
    assert stats.counts == {NOT_UTF8: 1}


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"", EMPTY),
        (b"\x00\x00", EMPTY),
        (b"  \r\n", EMPTY),
        (b"hello", NOT_JSON),
        (b'{"print":{"bed_temper":1', NOT_JSON),  # truncated
        (b"\xff\xfe\x00garbage", NOT_JSON),  # not UTF-8 and not JSON: one count, not two
        (b"[1, 2]", NOT_OBJECT),
        (b'["print"]\x00', NOT_OBJECT),
        (b'"text"', NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"null\x00", NOT_OBJECT),
    ],
)
def test_bad_payload_is_skipped_and_counted_once(payload: bytes, kind: str) -> None:
    stats = DecodeStats()
    assert decode_payload(payload, stats) is None
    assert stats.counts == {kind: 1}
    assert stats.total == 1


def test_each_kind_is_logged_once_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = DecodeStats(label="A1")
    samples = {
        EMPTY: b"",
        NOT_JSON: b"not json at all",
        NOT_OBJECT: b"[1, 2, 3]",
        NOT_UTF8: b'{"a":"\xe9"}',
        TRAILING_NUL: b'{"a":1}\x00',
    }
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            for payload in samples.values():
                decode_payload(payload, stats)
    assert stats.counts == dict.fromkeys(samples, 3)
    assert stats.total == 15
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == len(samples)
    assert all(r.getMessage().startswith("A1: ") for r in records)
    # Every kind is named in its one log line.
    messages = " ".join(r.getMessage() for r in records)
    for word in ("empty", "not JSON", "not an object", "latin-1", "NUL"):
        assert word in messages


def test_log_shows_only_the_start_of_a_long_payload(caplog: pytest.LogCaptureFixture) -> None:
    stats = DecodeStats()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        decode_payload(b"x" * 10_000, stats)
    (record,) = caplog.records
    assert "10000 bytes" in record.getMessage()
    assert len(record.getMessage()) < 300


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(payload: bytes) -> None:
    stats = DecodeStats()
    result = decode_payload(payload, stats)
    assert result is None or isinstance(result, dict)
    if result is None:
        # A skipped payload is always counted, exactly once.
        assert stats.total == 1
        assert set(stats.counts) <= {EMPTY, NOT_JSON, NOT_OBJECT}
    else:
        assert stats.total <= 1


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
            max_leaves=10,
        ),
        max_size=5,
    ),
    st.sampled_from([b"", b"\x00", b"\n", b"\x00\x00\r\n"]),
)
def test_any_json_object_round_trips(obj: dict[str, object], tail: bytes) -> None:
    assert decode_payload(orjson.dumps(obj) + tail, DecodeStats()) == obj
