"""RTSP, SDP, Digest and RTP/H.264 as bytes (``bambu_lan.camera_rtsp_wire``), no sockets."""

from __future__ import annotations

import hashlib
import struct

import pytest

from bambu_lan import camera_rtsp_wire as wire
from bambu_lan.camera_rtsp_wire import (
    Credentials,
    H264Depacketizer,
    RtspProtocolError,
    annex_b,
    parse_challenges,
    parse_response_head,
    request,
    track_uri,
    video_track,
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def rtp(seq: int, payload: bytes, *, pt: int = 96, marker: bool = False) -> bytes:
    return struct.pack(">BBHII", 0x80, pt | (0x80 if marker else 0), seq, 90000, 1234) + payload


# --- authentication ---------------------------------------------------------------------------


def test_digest_with_qop_matches_rfc_2617(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worked example of RFC 2617 §3.5."""
    monkeypatch.setattr(wire, "new_cnonce", lambda: "0a4f113b")
    creds = Credentials("Mufasa", "Circle Of Life")
    header = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert creds.choose(parse_challenges([header]))
    answer = creds.authorization("GET", "/dir/index.html")
    assert answer is not None
    assert 'response="6629fae49393a05397450978507c4ef1"' in answer
    assert "nc=00000001" in answer and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in answer
    assert "nc=00000002" in (creds.authorization("GET", "/dir/index.html") or "")


def test_digest_without_qop_and_digest_preferred_over_basic() -> None:
    creds = Credentials("bblp", "12345678")
    challenges = parse_challenges(
        ['Basic realm="x"', 'Digest realm="LIVE555 Streaming Media", nonce="abc"']
    )
    assert creds.choose(challenges)
    uri = "rtsps://h:322/streaming/live/1"
    answer = creds.authorization("DESCRIBE", uri)
    ha1 = md5("bblp:LIVE555 Streaming Media:12345678")
    expected = md5(f"{ha1}:abc:{md5('DESCRIBE:' + uri)}")  # RFC 2617 without qop
    assert answer is not None and answer.startswith('Digest username="bblp"')
    assert f'response="{expected}"' in answer
    assert "qop" not in answer and "12345678" not in answer
    assert "12345678" not in repr(creds)


def test_basic_and_unknown_schemes() -> None:
    creds = Credentials("bblp", "12345678")
    assert creds.authorization("OPTIONS", "x") is None  # nothing asked yet
    assert creds.choose(parse_challenges(['Basic realm="printer"']))
    assert creds.authorization("DESCRIBE", "x") == "Basic YmJscDoxMjM0NTY3OA=="
    assert not Credentials("a", "b").choose(parse_challenges(['Bearer realm="x"']))
    sha = 'Digest realm="r", nonce="n", algorithm=SHA-256'
    assert not Credentials("a", "b").choose(parse_challenges([sha]))


# --- messages and SDP ---------------------------------------------------------------------------


def test_request_and_response() -> None:
    sent = request("SETUP", "rtsps://h/streaming/live/1/track1", 3, {"Transport": "RTP/AVP/TCP"})
    assert sent.startswith(b"SETUP rtsps://h/streaming/live/1/track1 RTSP/1.0\r\nCSeq: 3\r\n")
    assert sent.endswith(b"Transport: RTP/AVP/TCP\r\n\r\n")
    with pytest.raises(ValueError, match="line break"):
        request("PLAY", "x", 1, {"Session": "a\r\nEvil: 1"})
    head = (
        b'RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Basic realm="a"\r\n'
        b'www-authenticate: Digest realm="a", nonce="n"\r\nContent-Length: 5\r\n\r\n'
    )
    response = parse_response_head(head)
    assert (response.status, response.reason, response.content_length) == (401, "Unauthorized", 5)
    assert len(response.headers["www-authenticate"]) == 2


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n",
        # A Session or nonce echoed in the next request must not hold a line break.
        b"RTSP/1.0 200 OK\r\nSession: ab\ncd\r\n\r\n",
        b'RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest nonce="a\rb"\r\n\r\n',
    ],
)
def test_bad_response_heads(head: bytes) -> None:
    with pytest.raises(RtspProtocolError):
        parse_response_head(head)


@pytest.mark.parametrize("length", [b"-1", b"99999999", b"ten"])
def test_bad_content_lengths(length: bytes) -> None:
    response = parse_response_head(b"RTSP/1.0 200 OK\r\nContent-Length: " + length + b"\r\n\r\n")
    with pytest.raises(RtspProtocolError):
        _ = response.content_length


SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\n"
    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000\r\na=control:track0\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1; profile-level-id=42e01f; "
    "sprop-parameter-sets=Z0LgH5ZSAoA=,aM4xEg==\r\na=control:track1\r\n"
)


def test_sdp_video_track() -> None:
    track = video_track(SDP)
    assert (track.payload_type, track.codec, track.clock_rate, track.control) == (
        96, "H264", 90000, "track1",
    )  # fmt: skip
    assert [p[0] & 0x1F for p in track.parameter_sets()] == [7, 8]
    with pytest.raises(RtspProtocolError, match="no video track"):
        video_track("v=0\r\nm=audio 0 RTP/AVP 0\r\n")


def test_sdp_numbers_that_are_digits_but_not_decimal_are_refused_not_crashed_on() -> None:
    # "²" passes str.isdigit() but not int(): a ValueError here ended the camera's task.
    with pytest.raises(RtspProtocolError, match="no video track"):
        video_track("v=0\r\nm=video 0 RTP/AVP \u00b2\r\n")
    track = video_track("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/9\u00b2\r\n")
    assert (track.codec, track.clock_rate) == ("H264", 90000)


def test_track_uri() -> None:
    base = "rtsps://h:322/streaming/live/1/"
    assert track_uri(base, "track1") == "rtsps://h:322/streaming/live/1/track1"
    assert track_uri(base, "*") == base
    assert track_uri(base, "rtsps://h:322/other") == "rtsps://h:322/other"


# --- RTP / H.264 ---------------------------------------------------------------------------------


def test_single_nal_stap_a_and_fu_a() -> None:
    depack = H264Depacketizer(96)
    sps, pps, idr = b"\x67spsdata", b"\x68pps", b"\x65" + bytes(range(200))
    stap = b"\x78" + struct.pack(">H", len(sps)) + sps + struct.pack(">H", len(pps)) + pps
    assert depack.feed(rtp(1, stap)) == [sps, pps]
    # FU-A: indicator keeps F/NRI (0x60) with type 28; the header carries S/E and type 5.
    body = idr[1:]
    parts = [body[:80], body[80:160], body[160:]]
    assert depack.feed(rtp(2, b"\x7c\x85" + parts[0])) == []
    assert depack.feed(rtp(3, b"\x7c\x05" + parts[1])) == []
    assert depack.feed(rtp(4, b"\x7c\x45" + parts[2], marker=True)) == [b"\x65" + body]
    assert depack.feed(rtp(5, b"\x41slice")) == [b"\x41slice"]
    assert depack.stats.nal_units == 4 and depack.stats.lost == 0
    assert annex_b([sps, pps]) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps


def test_a_lost_fragment_drops_its_nal_unit() -> None:
    depack = H264Depacketizer(96)
    depack.feed(rtp(10, b"\x7c\x85start"))
    assert depack.feed(rtp(12, b"\x7c\x45end")) == []  # 11 went missing
    assert depack.stats.lost == 1 and depack.stats.dropped >= 1
    assert depack.feed(rtp(13, b"\x41ok")) == [b"\x41ok"]


def test_hostile_packets() -> None:
    depack = H264Depacketizer(96, max_nal=1000)
    with pytest.raises(RtspProtocolError, match="not RTP"):
        depack.feed(b"\x00" * 20)
    assert depack.feed(rtp(1, b"\x41x", pt=97)) == []  # another payload type: ignored
    depack.feed(rtp(2, b"\x7c\x85" + b"a" * 900))
    with pytest.raises(RtspProtocolError, match="over 1000 bytes"):
        depack.feed(rtp(3, b"\x7c\x05" + b"a" * 900))
    # A STAP-A whose sizes run past its end keeps what is whole.
    stap = b"\x78" + struct.pack(">H", 3) + b"\x67ab" + struct.pack(">H", 50) + b"\x68"
    assert depack.feed(rtp(4, stap)) == [b"\x67ab"]
    # Padding and a header extension are skipped.
    padded = bytearray(rtp(5, b"\x41pay" + b"\x00\x00\x03"))
    padded[0] |= 0x20
    assert depack.feed(bytes(padded)) == [b"\x41pay"]
    ext = struct.pack(">BBHII", 0x90, 96, 6, 0, 0) + b"\xbe\xde\x00\x01abcd" + b"\x41e"
    assert depack.feed(ext) == [b"\x41e"]
