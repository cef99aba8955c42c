"""The A1/P1 camera stream on port 6000, without I/O (protocol.md §7.1).

After the TLS handshake the client writes one 80-byte login; the printer answers with nothing
but frames, each a 16-byte little-endian header (payload size, itrack 0, flags 1, 0) and a
JPEG. A wrong access code closes the connection.

``FrameDecoder`` turns bytes, in whatever pieces TLS delivers them, into whole frames: it
buffers by the announced length, never by record boundaries; refuses a length above its
limit before buffering any of it; and drops (and counts) payloads that are not a whole JPEG.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LOGIN_SIZE = 80
LOGIN_TYPE = 0x3000
HEADER_SIZE = 16
USERNAME = "bblp"
#: A 1280×720 frame is 50-300 KB; anything this large is a broken or hostile stream.
DEFAULT_MAX_FRAME = 8 * 1024 * 1024

_HEADER = struct.Struct("<IIII")
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"


def login_packet(access_code: str, username: str = USERNAME) -> bytes:
    """The 80-byte login: size 64, type 0x3000, two zero words, user and code NUL-padded."""
    user = username.encode("ascii")
    code = access_code.encode("ascii")
    if len(user) > 32 or len(code) > 32:
        raise ValueError("user name and access code are at most 32 characters")
    return _HEADER.pack(0x40, LOGIN_TYPE, 0, 0) + user.ljust(32, b"\0") + code.ljust(32, b"\0")


def frame_header(size: int) -> bytes:
    """The 16-byte header a printer sends before a JPEG of ``size`` bytes."""
    return _HEADER.pack(size, 0, 1, 0)


def is_whole_jpeg(data: bytes | bytearray | memoryview) -> bool:
    """Starts with SOI + a marker and ends with EOI (all a viewer needs to decode it)."""
    return bytes(data[:3]) == _JPEG_START and bytes(data[-2:]) == _JPEG_END


class FrameTooLarge(ValueError):
    """A header announced more bytes than the decoder's limit: the stream cannot be trusted."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a frame of {size:,} bytes was announced (the limit is {limit:,})")
        self.size = size
        self.limit = limit


@dataclass(slots=True)
class DecoderStats:
    frames: int = 0  # whole JPEGs handed out
    not_jpeg: int = 0  # payloads dropped because they were not a whole JPEG
    bytes: int = 0  # every byte fed


class FrameDecoder:
    """Bytes in, JPEG payloads out. ``feed`` raises ``FrameTooLarge`` on a hostile length."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._need: int | None = None  # payload size of the frame being read

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete header or frame (non-zero at EOF: truncated)."""
        return len(self._buffer)

    @property
    def in_frame(self) -> bool:
        return self._need is not None or bool(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Frames completed by ``data`` (usually zero or one)."""
        self.stats.bytes += len(data)
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        while True:
            if self._need is None:
                if len(buffer) < HEADER_SIZE:
                    return out
                size = _HEADER.unpack_from(buffer)[0]
                if size > self.max_frame:
                    buffer.clear()
                    raise FrameTooLarge(size, self.max_frame)
                del buffer[:HEADER_SIZE]
                self._need = size
            if len(buffer) < self._need:
                return out
            payload = bytes(buffer[: self._need])
            del buffer[: self._need]
            self._need = None
            if is_whole_jpeg(payload):
                self.stats.frames += 1
                out.append(payload)
            else:
                self.stats.not_jpeg += 1
