"""Reading announcements (protocol.md §9.1) without sockets, hostile ones included."""

from __future__ import annotations

import pytest

from bambu_lan.discovery import (
    SEARCH_TARGET,
    BadAnnouncement,
    parse_announcement,
    parse_target,
    shown,
)
from bambu_lan.errors import ConfigError


def notify(*headers: str, first: str = "NOTIFY * HTTP/1.1", kind: str = "NT") -> bytes:
    lines = [first, f"{kind}: {SEARCH_TARGET}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


A1 = (
    "Location: 10.1.2.3",
    "USN: 03919A3B1200123",
    "DevModel.bambu.com: N2S",
    "DevName.bambu.com: Workshop A1",
    "DevSignal.bambu.com: -51",
    "DevConnect.bambu.com: lan",
    "DevBind.bambu.com: free",
    "DevVersion.bambu.com: 01.05.00.00",
)


def test_a_notify() -> None:
    found = parse_announcement(notify(*A1), "10.1.2.3")
    assert found is not None
    assert (found.serial, found.host, found.model, found.model_code) == (
        "03919A3B1200123", "10.1.2.3", "A1", "N2S",
    )  # fmt: skip
    assert found.name == "Workshop A1"
    assert found.firmware == "01.05.00.00"
    assert found.lan_only is True and found.bind == "free" and found.signal == -51
    assert not found.reply
    assert found.to_dict()["lan_only"] is True


def test_an_m_search_answer_uses_st() -> None:
    found = parse_announcement(notify(*A1, first="HTTP/1.1 200 OK", kind="ST"), "10.1.2.3")
    assert found is not None and found.reply


def test_header_names_are_case_insensitive() -> None:
    headers = [h.split(":", 1)[0].upper() + ":" + h.split(":", 1)[1] for h in A1]
    found = parse_announcement(notify(*headers, kind="nt"), "10.1.2.3")
    assert found is not None and found.model_code == "N2S" and found.serial == "03919A3B1200123"


def test_location_as_a_url() -> None:
    found = parse_announcement(notify("Location: http://10.9.8.7:80/desc.xml", A1[1]), "10.0.0.1")
    assert found is not None and found.host == "10.9.8.7"


def test_missing_location_falls_back_to_the_sender() -> None:
    found = parse_announcement(notify("USN: 01P00A4C2009981"), "10.4.4.4")
    assert found is not None
    assert found.host == "10.4.4.4"
    assert found.model == "P1S"  # from the serial when there is no DevModel
    assert found.lan_only is None and found.name is None


def test_a_hostile_location_is_not_used() -> None:
    found = parse_announcement(notify("Location: \x1b]0;pwned\x07evil", A1[1]), "10.4.4.4")
    assert found is not None
    assert found.host == "10.4.4.4"
    assert "\x1b" not in found.warnings[0] and "pwned" in found.warnings[0]


def test_legacy_x1_model_string() -> None:
    found = parse_announcement(
        notify("USN: 00M09A350100001", "DevModel.bambu.com: 3DPrinter-X1-Carbon"), "10.0.0.2"
    )
    assert found is not None and found.model == "X1 Carbon"


@pytest.mark.parametrize(
    "usn",
    ["", "USN: ", "USN: 0391;rm -rf", "USN: " + "A" * 40, "USN: \x1b[2J0391"],
)
def test_unusable_serials_are_refused(usn: str) -> None:
    with pytest.raises(BadAnnouncement):
        parse_announcement(notify(usn, "Location: 10.0.0.1") if usn else notify(), "10.0.0.1")


@pytest.mark.parametrize(
    "data",
    [
        b"M-SEARCH * HTTP/1.1\r\nST: " + SEARCH_TARGET.encode() + b"\r\n\r\n",  # a question
        b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nUSN: uuid:tv\r\n\r\n",  # another device
        b"\xff\xfe\x00garbage",
        b"",
        b"HTTP/1.1 404 Not Found\r\n\r\n",
    ],
)
def test_other_datagrams_are_ignored(data: bytes) -> None:
    assert parse_announcement(data, "10.0.0.1") is None


def test_huge_values_are_cut() -> None:
    found = parse_announcement(notify(*A1, "DevName.bambu.com: " + "x" * 5000), "10.1.2.3")
    assert found is not None and found.name == "Workshop A1"  # the first one counts
    long = parse_announcement(notify(A1[1], "DevName.bambu.com: " + "y" * 5000), "10.1.2.3")
    assert long is not None and long.name is not None and len(long.name) <= 200


def test_shown_is_terminal_safe_and_short() -> None:
    assert shown("plain name") == "plain name"
    assert shown("Drucker Küche 3D") == "Drucker Küche 3D"
    assert shown("\x1b[31mred\x1b[0m") == "[31mred[0m"
    assert shown("a\u202eb") == "ab"  # a bidi override cannot reorder the line
    assert shown("x" * 300, 10) == "x" * 9 + "…"


def test_parse_target() -> None:
    assert parse_target("127.0.0.1:2021") == ("127.0.0.1", 2021)
    for bad in ("127.0.0.1", "host:12", "127.0.0.1:0", "127.0.0.1:99999", ":2021"):
        with pytest.raises(ConfigError):
            parse_target(bad)
