"""A real vsftpd configured like a printer's storage (shared/reference/vsftpd-printer.md).

Implicit TLS with a certificate whose CN is the serial, ``require_ssl_reuse=YES``, TLS forced
on logins and data, passive ports on loopback, the card chrooted. The local user ``bblp``
(password = ``VSFTPD_ACCESS_CODE``) is machine set-up: ``scripts/setup-vsftpd-user``, run by
``.ci/run``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.processes import dies_with_the_tests

from bambu_lan.sim.certs import CertAuthority

VSFTPD = Path("/usr/sbin/vsftpd")
VSFTPD_ACCESS_CODE = "41825307"  # scripts/setup-vsftpd-user sets it; a test fixture


def require(condition: bool, reason: str) -> None:
    """Skip when a real component is missing; under CI=true that is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must provide it: .ci/run installs and sets it up)")
    pytest.skip(reason)


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive loopback ports free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


@dataclass
class VsftpdPrinter:
    host: str
    port: int
    serial: str
    access_code: str
    ca_path: Path
    card: Path


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vsftpd exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)  # no readiness signal from vsftpd: poll the port
    raise RuntimeError("vsftpd did not start listening")


@contextlib.contextmanager
def run_vsftpd(cert_dir: Path, serial: str) -> Iterator[VsftpdPrinter]:
    require(VSFTPD.exists(), "vsftpd is not installed (apt-get install vsftpd)")
    try:
        user = pwd.getpwnam("bblp")
    except KeyError:
        user = None
    require(user is not None, "no local user bblp for vsftpd: run scripts/setup-vsftpd-user")
    require(os.geteuid() == 0, "vsftpd tests need root (vsftpd drops to the bblp user)")
    assert user is not None
    authority = CertAuthority.load_or_create(cert_dir)
    authority.leaf(serial)
    work = Path(tempfile.mkdtemp(prefix="bambu-vsftpd-", dir="/tmp"))
    try:
        card = work / "card"
        card.mkdir()
        for folder in ("cache", "timelapse", "image", "logger"):
            (card / folder).mkdir()
        for path in [card, *card.iterdir()]:
            os.chown(path, user.pw_uid, user.pw_gid)
        work.chmod(0o755)
        empty = work / "empty"
        empty.mkdir()
        port = free_port_range(1)
        pasv = free_port_range(10)
        config = work / "vsftpd.conf"
        config.write_text(
            "\n".join(
                [
                    "listen=YES",
                    "listen_ipv6=NO",
                    "listen_address=127.0.0.1",
                    f"listen_port={port}",
                    "background=NO",
                    "anonymous_enable=NO",
                    "local_enable=YES",
                    "write_enable=YES",
                    f"local_root={card}",
                    "chroot_local_user=YES",
                    "allow_writeable_chroot=YES",
                    f"secure_chroot_dir={empty}",
                    "ssl_enable=YES",
                    "implicit_ssl=YES",
                    f"rsa_cert_file={authority.leaf_path(serial)}",
                    f"rsa_private_key_file={authority.leaf_key_path}",
                    "force_local_logins_ssl=YES",
                    "force_local_data_ssl=YES",
                    "require_ssl_reuse=YES",
                    "ssl_ciphers=HIGH",
                    "pasv_enable=YES",
                    f"pasv_min_port={pasv}",
                    f"pasv_max_port={pasv + 9}",
                    "pasv_address=127.0.0.1",
                    "seccomp_sandbox=NO",
                    "pam_service_name=vsftpd",
                    "xferlog_enable=NO",
                    "",
                ]
            )
        )
        process = subprocess.Popen(
            dies_with_the_tests([str(VSFTPD), str(config)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_listening(port, process)
            yield VsftpdPrinter(
                host="127.0.0.1",
                port=port,
                serial=serial,
                access_code=VSFTPD_ACCESS_CODE,
                ca_path=authority.ca_path,
                card=card,
            )
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
