"""RTSP, SDP and RTP/H.264 as bytes, for the X1/P2S/H2 camera (protocol.md §7.2); no I/O.

bambu-lan speaks RTSP itself (over its own TLS connection, with the same trust as MQTT) so
that the access code only ever goes into an ``Authorization`` header on that connection,
never onto a child process's command line. What it needs of RTSP is small: requests and
responses (RFC 2326), Basic and Digest authentication (RFC 2617, MD5, with or without
``qop=auth``), the video track of the SDP (RFC 4566), RTP over the RTSP connection
("interleaved"), and H.264's RTP payload (RFC 6184: single NAL units, STAP-A, FU-A) turned
back into an Annex B byte stream for a decoder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

START_CODE = b"\x00\x00\x00\x01"
#: An access unit delimiter (NAL type 9, any picture type): written after each picture so a
#: decoder reading the byte stream knows the picture is whole without waiting for the next.
ACCESS_UNIT_DELIMITER = START_CODE + b"\x09\xf0"
MAX_HEAD = 16 * 1024  # a response head beyond this is refused
MAX_BODY = 64 * 1024  # an SDP beyond this is refused
DEFAULT_MAX_NAL = 8 * 1024 * 1024  # a NAL unit reassembled beyond this is refused

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
_STAP_A = 24
_FU_A = 28


class RtspProtocolError(ValueError):
    """The server sent something that is not RTSP/SDP/RTP as expected."""


# --- messages ---------------------------------------------------------------------------------


def request(method: str, uri: str, cseq: int, headers: Mapping[str, str] | None = None) -> bytes:
    """One RTSP request without a body."""
    lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}", "User-Agent: bambu-lan"]
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, list[str]]  # names lower-case; every value of a repeated header
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def content_length(self) -> int:
        value = self.header("content-length")
        if value is None:
            return 0
        try:
            length = int(value)
        except ValueError:
            raise RtspProtocolError(
                f"a Content-Length that is not a number: {value[:40]!r}"
            ) from None
        if not 0 <= length <= MAX_BODY:
            raise RtspProtocolError(f"a response body of {length} bytes (at most {MAX_BODY})")
        return length


def parse_response_head(head: bytes) -> Response:
    """A response's status line and headers (``head`` ends with the blank line)."""
    text = head.decode("utf-8", "replace")
    lines = text.split("\r\n")
    match = re.fullmatch(r"RTSP/1\.\d (\d{3}) ?(.*)", lines[0])
    if match is None:
        raise RtspProtocolError(f"not an RTSP response: {lines[0][:60]!r}")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise RtspProtocolError(f"a header line without a colon: {line[:60]!r}")
        if "\r" in line or "\n" in line:
            # A value sent back (Session, a Digest nonce) would break the next request.
            raise RtspProtocolError(f"a header line with a bare line break: {line[:60]!r}")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(int(match.group(1)), match.group(2).strip(), headers)


# --- authentication ---------------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower-case: "basic", "digest"
    params: Mapping[str, str]


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """The ``WWW-Authenticate`` headers of a 401 (one challenge per header, as RTSP servers
    send them)."""
    out = []
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        params = {}
        for match in _PARAM.finditer(rest):
            raw = match.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[match.group(1).lower()] = raw
        out.append(Challenge(scheme.lower(), params))
    return out


def new_cnonce() -> str:
    """The client's nonce of a Digest answer with ``qop=auth``."""
    return os.urandom(8).hex()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(slots=True)
class Credentials:
    """Answers a server's challenge; ``authorization(method, uri)`` for each request after.

    Digest is preferred over Basic when both are offered. The password is used only to
    compute the header (the connection is TLS, opened after the identity check).
    """

    user: str
    password: str = field(repr=False)
    challenge: Challenge | None = None
    _nc: int = 0

    def choose(self, challenges: list[Challenge]) -> bool:
        """Pick the challenge to answer; False if none is one we speak."""
        digest = [
            c
            for c in challenges
            if c.scheme == "digest"
            and c.params.get("algorithm", "MD5").upper() == "MD5"
            and "nonce" in c.params
        ]
        basic = [c for c in challenges if c.scheme == "basic"]
        choices = digest or basic
        if not choices:
            return False
        self.challenge, self._nc = choices[0], 0
        return True

    def authorization(self, method: str, uri: str) -> str | None:
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
            return f"Basic {token}"
        p = challenge.params
        realm, nonce = p.get("realm", ""), p["nonce"]
        ha1 = _md5(f"{self.user}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
        if "auth" in qops:
            self._nc += 1
            nc, cnonce = f"{self._nc:08x}", new_cnonce()
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        fields.append("algorithm=MD5")
        return "Digest " + ", ".join(fields)


# --- SDP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoTrack:
    payload_type: int
    codec: str  # upper-case encoding name: "H264"
    clock_rate: int
    control: str  # the a=control of the media ("" when absent)
    fmtp: Mapping[str, str]

    def parameter_sets(self) -> list[bytes]:
        """The NAL units of ``sprop-parameter-sets`` (SPS, PPS), if the SDP carries them."""
        value = self.fmtp.get("sprop-parameter-sets", "")
        out = []
        for item in value.split(","):
            if item:
                try:
                    out.append(base64.b64decode(item, validate=True))
                except ValueError:
                    continue  # a damaged one is left out: the stream repeats them in-band
        return out


def video_track(sdp: str) -> VideoTrack:
    """The first video track of an SDP; raises ``RtspProtocolError`` if it has none."""
    media: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
    for lines in media:
        parts = lines[0][2:].split()
        if len(parts) < 4 or parts[0] != "video" or not parts[3].isdecimal():
            continue
        payload_type = int(parts[3])
        codec, clock, control, fmtp = "", 90000, "", {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key == "a=rtpmap" and value.startswith(f"{payload_type} "):
                name = value.split(" ", 1)[1].split("/")
                codec = name[0].upper()
                if len(name) > 1 and name[1].isdecimal():
                    clock = int(name[1])
            elif key == "a=fmtp" and value.startswith(f"{payload_type} "):
                for item in value.split(" ", 1)[1].split(";"):
                    name_, _, val = item.strip().partition("=")
                    if name_:
                        fmtp[name_.lower()] = val.strip()
            elif key == "a=control":
                control = value.strip()
        return VideoTrack(payload_type, codec, clock, control, fmtp)
    raise RtspProtocolError("the stream description (SDP) has no video track")


def track_uri(base: str, control: str) -> str:
    """The SETUP address of a track: its control URL, absolute or relative to ``base``."""
    if not control or control == "*":
        return base
    if "://" in control:
        return control
    return base.rstrip("/") + "/" + control


# --- RTP / H.264 --------------------------------------------------------------------------------


@dataclass(slots=True)
class DepacketizerStats:
    packets: int = 0
    nal_units: int = 0
    lost: int = 0  # sequence gaps
    dropped: int = 0  # packets or partial NAL units thrown away (a gap, unknown kind)


class H264Depacketizer:
    """RTP packets of one H.264 stream in; whole NAL units (without start codes) out."""

    def __init__(self, payload_type: int, *, max_nal: int = DEFAULT_MAX_NAL) -> None:
        self.payload_type = payload_type
        self.max_nal = max_nal
        self.stats = DepacketizerStats()
        #: The RTP marker bit of the last packet of our stream: it ends an access unit (a
        #: picture) in H.264's RTP payload format.
        self.marker = False
        self._seq: int | None = None
        self._fu: bytearray | None = None

    def feed(self, packet: bytes) -> list[bytes]:
        """The NAL units ``packet`` completes. Raises ``RtspProtocolError`` on a packet that
        is not RTP, or a NAL unit larger than ``max_nal``."""
        payload = self._payload(packet)
        if payload is None:
            return []
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._fu = None
            return self._out([payload])
        if kind == _STAP_A:
            self._fu = None
            return self._out(self._stap_a(payload))
        if kind == _FU_A:
            return self._out(self._fu_a(payload))
        self.stats.dropped += 1  # STAP-B, MTAP, FU-B: not in packetization mode 1
        return []

    def _payload(self, packet: bytes) -> bytes | None:
        if len(packet) < 12 or packet[0] >> 6 != 2:
            raise RtspProtocolError("a packet on the video channel that is not RTP")
        if packet[1] & 0x7F != self.payload_type:
            return None  # not our stream (RTCP is on the other channel)
        self.stats.packets += 1
        self.marker = bool(packet[1] & 0x80)
        seq = struct.unpack_from(">H", packet, 2)[0]
        if self._seq is not None and seq != (self._seq + 1) & 0xFFFF:
            self.stats.lost += 1
            if self._fu is not None:
                self._fu = None  # a fragment went missing: the NAL unit is lost
                self.stats.dropped += 1
        self._seq = seq
        start = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10:  # a header extension
            if len(packet) < start + 4:
                raise RtspProtocolError("an RTP packet cut inside its header extension")
            start += 4 + 4 * struct.unpack_from(">H", packet, start + 2)[0]
        end = len(packet)
        if packet[0] & 0x20:  # padding
            end -= packet[-1]
        if end <= start:
            self.stats.dropped += 1
            return None
        return packet[start:end]

    def _stap_a(self, payload: bytes) -> list[bytes]:
        out, at = [], 1
        while at + 2 <= len(payload):
            size = struct.unpack_from(">H", payload, at)[0]
            at += 2
            if size == 0 or at + size > len(payload):
                self.stats.dropped += 1
                break
            out.append(payload[at : at + size])
            at += size
        return out

    def _fu_a(self, payload: bytes) -> list[bytes]:
        if len(payload) < 2:
            self.stats.dropped += 1
            return []
        indicator, header = payload[0], payload[1]
        if header & 0x80:  # start
            self._fu = bytearray([(indicator & 0xE0) | (header & 0x1F)])
        elif self._fu is None:
            self.stats.dropped += 1  # the middle of a NAL unit whose start we missed
            return []
        self._fu += payload[2:]
        if len(self._fu) > self.max_nal:
            self._fu = None
            raise RtspProtocolError(f"a video NAL unit over {self.max_nal} bytes; refused")
        if header & 0x40:  # end
            nal, self._fu = bytes(self._fu), None
            return [nal]
        return []

    def _out(self, nals: list[bytes]) -> list[bytes]:
        self.stats.nal_units += len(nals)
        return nals


def annex_b(nals: Iterable[bytes]) -> bytes:
    """NAL units as an H.264 Annex B byte stream (what a decoder reads from a file or pipe)."""
    return b"".join(START_CODE + nal for nal in nals)


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


__all__ = [
    "ACCESS_UNIT_DELIMITER",
    "Challenge",
    "Credentials",
    "H264Depacketizer",
    "Response",
    "RtspProtocolError",
    "VideoTrack",
    "annex_b",
    "nal_type",
    "parse_challenges",
    "parse_response_head",
    "request",
    "track_uri",
    "video_track",
]
