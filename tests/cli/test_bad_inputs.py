"""Every bad input a user can give, through the real CLI entry point: exit code 2, one
``error:`` line and one ``hint:`` line, no traceback, never an access code, and within 2 s
when no network is involved (a hang guard: these must fail before connecting).

Each row of ``CASES`` is one input: the command line, the files it needs, the words the error
must name. Rows marked ``net`` need a server: the simulated A1, a port that resets, a TLS
server with an expired certificate, or plain MQTT without TLS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Result
from tests.processes import dies_with_the_tests

from bambu_lan.sim import SimulatedPrinter

SERIAL = "03919A3B1200123"
SECRET = "Zq7Kx9Wm"  # the access code of every row without a printer: never shown
ADDR = ("--host", "127.0.0.1", "--serial", SERIAL)
GOOD_PROFILE = f'host = "127.0.0.1"\nserial = "{SERIAL}"\naccess_code = "{SECRET}"\n'
PEM_JUNK = "<!doctype html><title>Bambu Lab</title>saved from the browser\n"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    words: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative to tmp: content
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None
    net: str | None = None  # None, "sim", "reset", "expired", "not_yet_valid", "plain_mqtt"


def config(text: str) -> dict[str, str | bytes]:
    return {"config.toml": text}


CASES = [
    # --- the config file ---
    Case("config_insecure_string", ("status", "--printer", "p"),
         ("{tmp}/config.toml", "[printers.p] insecure", "true or false", "'false'"),
         config(f'[printers.p]\n{GOOD_PROFILE}insecure = "false"\n')),
    Case("config_unknown_key", ("status", "--printer", "p"), ("ca_flie", "did you mean ca_file"),
         config(f'[printers.p]\n{GOOD_PROFILE}ca_flie = "x.pem"\n')),
    Case("config_serial_list", ("status",), ("[printers.p] serial", "must be a string"),
         config('[printers.p]\nserial = ["a"]\n'), env={"BAMBU_PRINTER": "p"}),
    Case("config_host_number", ("status", "--printer", "p"), ("host", "must be a string"),
         config("[printers.p]\nhost = 5\n")),
    Case("config_code_number", ("status", "--printer", "p"), ("access_code", "in quotes"),
         config("[printers.p]\naccess_code = 12345678\n")),
    Case("config_port_string", ("status", "--printer", "p"), ("port", "port number"),
         config('[printers.p]\nport = "8883"\n')),
    Case("config_port_range", ("status", "--printer", "p"), ("port", "out of range"),
         config("[printers.p]\nport = 99999\n")),
    Case("config_host_with_port", ("status", "--printer", "p"), ("host", "includes a port"),
         config('[printers.p]\nhost = "10.0.0.5:8883"\n')),
    Case("config_default_missing", ("status",), ("default", "names no printer"),
         config('default = "nope"\n[printers.p]\nhost = "h"\n')),
    Case("config_top_level_typo", ("status",), ("printer", "did you mean printers"),
         config('[printer.p]\nhost = "h"\n')),
    Case("config_insecure_and_ca", ("status", "--printer", "p"), ("would drop the CA",),
         config(f'[printers.p]\n{GOOD_PROFILE}insecure = true\nca_dir = "certs"\n')),
    Case("config_not_utf8", ("status",), ("not UTF-8", "line 2"),
         config(b'[printers.p]\nhost = "caf\xe9"\n')),  # type: ignore[arg-type]
    Case("config_utf16", ("status",), ("UTF-16",),
         config('[printers.p]\nhost = "h"\n'.encode("utf-16"))),  # type: ignore[arg-type]
    Case("config_bad_toml", ("status",), ("not valid TOML",), config("[printers.p\n")),
    Case("config_is_folder", ("status",), ("is a folder",), env={"BAMBU_CONFIG": "{tmp}"}),
    Case("config_check", ("config", "check"), ("2 problems",),
         config('[printers.p]\nhost = 5\nca_flie = "x"\n')),
    Case("config_check_json", ("config", "check", "--json"), ("2 problems",),
         config('[printers.p]\nhost = 5\nca_flie = "x"\n')),
    Case("config_show_bad", ("config", "show"), ("unknown key",), config("[printers.p]\nx = 1\n")),
    Case("config_check_utf16", ("config", "check"), ("UTF-16",),
         config("[printers.p]\n".encode("utf-16"))),  # type: ignore[arg-type]
    Case("unknown_profile", ("status", "--printer", "nowhere"), ("no printer named 'nowhere'",)),
    # --- the known-printers file ---
    Case("pins_not_utf8", ("status", *ADDR), ("known-printers file", "not UTF-8"),
         {"known_printers": b"# pins\n03919A3B1200123 \xff\xfe\n"}),
    Case("trust_list_not_utf8", ("trust", "list"), ("not UTF-8",),
         {"known_printers": b"\xff\xfe0\x00"}),
    Case("trust_list_folder", ("trust", "list"), ("is a directory",),
         env={"BAMBU_KNOWN_PRINTERS": "{tmp}"}),
    Case("trust_forget_unknown", ("trust", "forget", SERIAL), ("is not pinned",)),
    # --- the address ---
    Case("host_with_port", ("status", "--host", "127.0.0.1:8883", "--serial", SERIAL),
         ("includes a port", "--host 127.0.0.1 --port 8883")),
    Case("host_env_with_port", ("status", "--serial", SERIAL), ("includes a port",),
         env={"BAMBU_HOST": "127.0.0.1:8883"}),
    Case("host_url", ("status", "--host", "http://192.168.1.50:8883/", "--serial", SERIAL),
         ("is a URL", "--host 192.168.1.50 --port 8883")),
    Case("host_inner_space", ("status", "--host", "192.168 .1.50", "--serial", SERIAL),
         ("not an IP address or host name",)),
    Case("host_brackets_port", ("status", "--host", "[::1]:8883", "--serial", SERIAL),
         ("includes a port", "--host ::1 --port 8883")),
    Case("host_unbalanced", ("status", "--host", "[::1", "--serial", SERIAL),
         ("unbalanced brackets",)),
    Case("host_empty_label", ("status", "--host", "printer..lan", "--serial", SERIAL),
         ("not a valid host name", "empty or longer than 63")),
    Case("host_long_label", ("status", "--host", "p" * 64 + ".lan", "--serial", SERIAL),
         ("not a valid host name",)),
    Case("host_bad_ipv4", ("status", "--host", "192.168.1.300", "--serial", SERIAL),
         ("not a valid IPv4",)),
    Case("host_blank", ("status", "--host", "   ", "--serial", SERIAL), ("no printer address",)),
    Case("host_missing", ("status", "--serial", SERIAL), ("no printer address", "--host")),
    Case("port_too_big", ("status", *ADDR, "--port", "99999"), ("--port", "99999")),
    Case("port_zero", ("status", *ADDR, "--port", "0"), ("--port",)),
    Case("port_word", ("status", *ADDR, "--port", "mqtt"), ("--port",)),
    Case("port_env_word", ("status", *ADDR), ("BAMBU_PORT", "port number"),
         env={"BAMBU_PORT": "mqtt"}),
    Case("port_env_range", ("status", *ADDR), ("BAMBU_PORT", "out of range"),
         env={"BAMBU_PORT": "70000"}),
    # --- serial and access code ---
    Case("serial_lower", ("status", "--host", "127.0.0.1", "--serial", SERIAL.lower()),
         ("upper case",)),
    Case("serial_short", ("status", "--host", "127.0.0.1", "--serial", "0391"), ("15 characters",)),
    Case("code_short", ("status", *ADDR, "--access-code", "s3cr"), ("8 characters",)),
    Case("code_file_missing", ("status", *ADDR, "--access-code-file", "{tmp}/nope"),
         ("no such file",), env={"BAMBU_ACCESS_CODE": ""}),
    Case("code_file_not_utf8", ("status", *ADDR, "--access-code-file", "{tmp}/code"),
         ("not UTF-8",), {"code": b"\xff\xfe\xfd"}, env={"BAMBU_ACCESS_CODE": ""}),
    Case("code_and_code_file", ("status", *ADDR, "--access-code-file", "{tmp}/code"),
         ("both --access-code",), {"code": SECRET}),
    Case("code_stdin_empty", ("status", *ADDR, "--access-code-file", "-"),
         ("nothing on standard input",), env={"BAMBU_ACCESS_CODE": ""}, stdin=""),
    Case("code_env_file_short", ("status", *ADDR), ("8 characters",), {"code": "abc\n"},
         env={"BAMBU_ACCESS_CODE": "", "BAMBU_ACCESS_CODE_FILE": "{tmp}/code"}),
    # --- trust ---
    Case("ca_file_junk", ("status", *ADDR, "--ca-file", "{tmp}/bambu.cert"),
         ("not usable", "no PEM certificate"), {"bambu.cert": PEM_JUNK}),
    Case("ca_file_missing", ("status", *ADDR, "--ca-file", "{tmp}/missing.pem"),
         ("CA file not found",)),
    Case("ca_dir_all_junk", ("status", *ADDR, "--ca-dir", "{tmp}/certs"),
         ("no usable CA certificate", "bambu.cert"), {"certs/bambu.cert": PEM_JUNK}),
    Case("ca_dir_empty", ("status", *ADDR, "--ca-dir", "{tmp}/certs"),
         ("no certificate files",), {"certs/readme.txt": "x"}),
    Case("ca_dir_missing", ("status", *ADDR, "--ca-dir", "{tmp}/nowhere"),
         ("CA directory not found",)),
    Case("insecure_with_ca", ("status", *ADDR, "--insecure", "--ca-file", "{tmp}/ca.pem"),
         ("--insecure and --ca-file contradict",), {"ca.pem": PEM_JUNK}),
    # --- send ---
    Case("raw_deep_json", ("send", "raw", *ADDR, "system", "x", "[" * 100_000),
         ("nested too deeply",)),
    Case("raw_deep_object", ("send", "raw", *ADDR, "system", "x", '{"a":' * 300 + "1" + "}" * 300),
         ("cannot be sent as JSON",)),
    Case("raw_sequence_id", ("send", "raw", *ADDR, "system", "ledctrl", '{"sequence_id": "1"}'),
         ("sequence_id cannot be set",)),
    Case("raw_command", ("send", "raw", *ADDR, "print", "pause", '{"command": "stop"}'),
         ("command cannot be set",)),
    Case("raw_not_json", ("send", "raw", *ADDR, "system", "x", "{nope"), ("not valid JSON",)),
    Case("raw_array", ("send", "raw", *ADDR, "system", "x", "[1]"), ("JSON object",)),
    Case("raw_surrogate", ("send", "raw", *ADDR, "system", "x", '{"a": "\\ud800"}'),
         ("cannot be sent as JSON",)),
    Case("raw_bad_class", ("send", "raw", *ADDR, "sys tem", "x"), ("must be a word",)),
    Case("gcode_not_utf8", ("send", "gcode", *ADDR, "M117 \udcff"), ("not UTF-8",)),
    Case("gcode_non_ascii", ("send", "gcode", *ADDR, "M117 Grüße"), ("outside ASCII",)),
    Case("gcode_control", ("send", "gcode", *ADDR, "M117 \x1b[2J"), ("control characters",)),
    Case("gcode_only_comment", ("send", "gcode", *ADDR, "; nothing"), ("no G-code",)),
    Case("speed_nine", ("send", "speed", *ADDR, "9"), ("use 1-4",)),
    Case("light_maybe", ("send", "light", *ADDR, "maybe"), ("maybe",)),
    # --- the command line itself ---
    Case("unknown_command", ("frobnicate",), ("No such command",)),
    Case("unknown_option", ("status", "--hots", "x"), ("No such option",)),
    Case("sim_speed_zero", ("sim", "--speed", "0"), ("--speed",)),
    # --- with a server (net) ---
    Case("wrong_code", ("status", "--access-code", "87654321"), ("refused the access code",),
         net="sim"),
    Case("wrong_serial", ("status", "--serial", SERIAL), ("no credentials were sent",), net="sim"),
    Case("pause_no_job", ("send", "pause", "--timeout", "2"), ("pause",), net="sim"),
    Case("host_trimmed_wrong_code", ("status", "--host", " 127.0.0.1 ", "--access-code",
                                     "87654321"), ("refused the access code",), net="sim"),
    Case("reset", ("status", *ADDR, "--port", "{port}"), ("127.0.0.1",), net="reset"),
    Case("expired", ("status", *ADDR, "--port", "{port}", "--ca-file", "{tmp}/ca.pem"),
         ("has expired", "clock"), net="expired"),
    Case("not_yet_valid", ("status", *ADDR, "--port", "{port}", "--ca-file", "{tmp}/ca.pem"),
         ("not valid yet", "clock"), net="not_yet_valid"),
    Case("plain_mqtt", ("status", *ADDR, "--port", "{port}"), ("127.0.0.1",), net="plain_mqtt"),
]  # fmt: skip


def assert_error_and_hint(result: Result, *words: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: "), lines
    assert lines[1].startswith("hint: ") and len(lines[1]) > len("hint: "), lines
    assert "Traceback" not in result.out + result.err
    for word in words:
        assert word in result.err, (word, result.err)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    cli: Cli,
    isolated_env: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tmp = isolated_env
    monkeypatch.setenv("BAMBU_ACCESS_CODE", SECRET)
    secrets = [SECRET]
    port = 0
    if case.net == "sim":
        sim = request.getfixturevalue("printer_env")
        secrets.append(sim.access_code)
    elif case.net is not None:
        port = request.getfixturevalue(f"{case.net}_server")
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        path.chmod(0o600)  # a group-readable secret file warns: a third line
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp)))
    if case.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(case.stdin))
    args = [arg.replace("{tmp}", str(tmp)).replace("{port}", str(port)) for arg in case.args]
    words = [word.replace("{tmp}", str(tmp)) for word in case.words]

    started = time.monotonic()
    result = cli(*args)
    elapsed = time.monotonic() - started

    print(result.err)  # shown with -rP: the messages themselves are worth reading
    assert_error_and_hint(result, *words)
    for secret in secrets:
        assert secret not in result.out + result.err
    if case.net is None:
        assert elapsed < 2.0, f"{case.id} took {elapsed:.2f} s without any network"
    if "--json" in args:
        assert result.json()["ok"] is False


def test_every_row_has_a_unique_id() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_non_utf8_arguments_through_a_real_process(isolated_env: Path) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape).
    code = "from bambu_lan.cli.main import main; main()"
    env = {"BAMBU_ACCESS_CODE": SECRET, "PATH": "/usr/bin:/bin", "HOME": str(isolated_env)}
    for args in (
        [b"send", b"gcode", *(a.encode() for a in ADDR), b"M117 \xff\xfe"],
        [b"send", b"raw", *(a.encode() for a in ADDR), b"system", b"x\xff"],
        [b"status", b"--host", b"printer\xff.lan", b"--serial", SERIAL.encode()],
        [b"status", *(a.encode() for a in ADDR), b"--access-code", b"\xff" * 8],
    ):
        proc = subprocess.run(
            [sys.executable.encode(), b"-c", code.encode(), *args],
            capture_output=True,
            timeout=60,
            env={**env, "BAMBU_CONFIG": str(isolated_env / "none.toml")},
            check=False,
        )
        err = proc.stderr.decode("utf-8", "replace")
        result = Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), err)
        assert_error_and_hint(result)
        assert SECRET not in result.out + result.err


def test_a_junk_file_beside_a_valid_ca_is_skipped_and_named(
    cli: Cli, printer_env: object, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bambu_lan.trust import TrustConfig

    certs = isolated_env / "bambu_certs"
    certs.mkdir()
    shutil.copy(printer_env.ca_path, certs / "bambu.cert")  # type: ignore[attr-defined]
    (certs / "bambu_p2s_250626.cert").write_text(PEM_JUNK, encoding="utf-8")
    monkeypatch.delenv("BAMBU_CA_FILE")

    result = cli("status", "--json", "--ca-dir", str(certs))

    assert result.code == 0, result.err
    files = TrustConfig(ca_dir=certs).ca_files()
    assert files == [certs / "bambu.cert"]


# --- servers for the net rows ---------------------------------------------------------------


class _Server:
    """A loopback TCP server running ``handle(conn)`` for each connection on a thread."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.handle = handle
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self.handle(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def reset_server() -> Iterator[int]:
    """Accepts, then resets the connection (SO_LINGER 0)."""

    def handle(conn: socket.socket) -> None:
        import struct

        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = _Server(handle)
    yield server.port
    server.close()


@pytest.fixture
def plain_mqtt_server() -> Iterator[int]:
    """A broker without TLS, strict like mosquitto: a CONNECT gets a CONNACK (5: not
    authorized), anything else (a TLS ClientHello) is a protocol error: closed."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        first = conn.recv(4096)
        if first[:1] == b"\x10":
            conn.sendall(b"\x20\x02\x00\x05")

    server = _Server(handle)
    yield server.port
    server.close()


@pytest.fixture
def plain_mosquitto(tmp_path: Path) -> Iterator[int]:
    """A real mosquitto listening without TLS on a free loopback port."""
    exe = shutil.which("mosquitto")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is missing on CI (.ci/run installs it)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    conf = tmp_path / "plain.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
        "log_dest stderr\nlog_type information\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(dies_with_the_tests([exe, "-c", str(conf)]), stderr=subprocess.PIPE)
    assert process.stderr is not None
    for raw in process.stderr:  # it says when it listens
        if b" running" in raw:
            break
    threading.Thread(target=process.stderr.read, daemon=True).start()
    yield port
    process.terminate()
    process.wait(timeout=10)


def _tls_server(tmp: Path, not_before: dt.datetime, not_after: dt.datetime) -> _Server:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(SERIAL))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp / "leaf.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    return _Server(handle)


@pytest.fixture
def expired_server(isolated_env: Path) -> Iterator[int]:
    now = dt.datetime.now(dt.UTC)
    server = _tls_server(isolated_env, now - dt.timedelta(days=800), now - dt.timedelta(days=30))
    yield server.port
    server.close()


@pytest.fixture
def not_yet_valid_server(isolated_env: Path) -> Iterator[int]:
    now = dt.datetime.now(dt.UTC)
    server = _tls_server(isolated_env, now + dt.timedelta(days=30), now + dt.timedelta(days=800))
    yield server.port
    server.close()


# --- the doctor: the same normalisation, and the right cause ----------------------------


def _doctor_json(cli: Cli, *args: str) -> dict[str, object]:
    result = cli("doctor", "--json", "--timeout", "3", *args)
    assert "Traceback" not in result.err
    assert SECRET not in result.out + result.err
    data: dict[str, object] = json.loads(result.out)
    return data


@pytest.mark.parametrize("server", ["plain_mqtt_server", "plain_mosquitto"])
def test_doctor_tells_plain_mqtt_from_a_tls_problem(
    cli: Cli, server: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(server)

    data = _doctor_json(cli, *ADDR, "--port", str(port), "--access-code", SECRET)

    assert data["cause"] == "plain_mqtt"
    assert "plain MQTT broker" in str(data["fix"])
    assert "cipher" not in str(data["fix"]).lower()


def test_doctor_does_not_call_a_reset_plain_mqtt(cli: Cli, reset_server: int) -> None:
    data = _doctor_json(cli, *ADDR, "--port", str(reset_server), "--access-code", SECRET)

    assert data["cause"] not in ("plain_mqtt", None)


def test_doctor_names_an_expired_certificate(
    cli: Cli, expired_server: int, isolated_env: Path
) -> None:
    data = _doctor_json(
        cli, *ADDR, "--port", str(expired_server), "--access-code", SECRET,
        "--ca-file", str(isolated_env / "ca.pem"),
    )  # fmt: skip

    assert data["cause"] == "certificate_dates"
    assert "clock" in str(data["fix"])


@pytest.mark.parametrize(
    ("host", "cause", "words"),
    [
        ("127.0.0.1:8883", "host_invalid", "--host 127.0.0.1 --port 8883"),
        ("http://127.0.0.1", "host_invalid", "--host 127.0.0.1"),
        ("printer..lan", "host_invalid", "IP address"),
        ("  ", "host_missing", "--host"),
    ],
)
def test_doctor_uses_the_same_host_checks(cli: Cli, host: str, cause: str, words: str) -> None:
    data = _doctor_json(cli, "--host", host, "--serial", SERIAL, "--access-code", SECRET)

    assert data["cause"] == cause
    assert words in str(data["fix"])


def test_doctor_trims_the_host_and_reads_the_code_file(
    cli: Cli, printer_env: SimulatedPrinter, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = isolated_env / "code"
    code.write_text(printer_env.access_code + "\n", encoding="utf-8")
    code.chmod(0o600)
    monkeypatch.delenv("BAMBU_ACCESS_CODE")

    data = _doctor_json(cli, "--host", f" [{printer_env.host}] ".replace("[", "").replace("]", ""),
                        "--access-code-file", str(code))  # fmt: skip

    assert data["ok"] is True, data
    assert data["target"]["host"] == printer_env.host  # type: ignore[index]
