#!/usr/bin/env python3
"""The smallest correct client for a Bambu Lab A1 on the LAN: plain paho-mqtt 2.x, no bambu_lan.

    python examples/a1_minimal.py --host 192.168.1.50 --serial 03919A3B1200123 \\
        --access-code 12345678 --ca-file bambu_certs/bambu.cert

(or set BAMBU_HOST, BAMBU_PORT, BAMBU_SERIAL, BAMBU_ACCESS_CODE, BAMBU_CA_FILE). It prints every
report the printer sends; --count N stops after N reports.

What the A1 insists on, and where this script does it:

* TLS 1.2 exactly, on port 8883 ........................................ make_tls_context()
* user "bblp", password = the access code shown on the printer's screen ...... main()
* subscribe only after a CONNACK that *accepted* us (paho calls on_connect for refusals
  too; subscribing after a refusal gets the socket closed) ............... on_connect()
* subscribe to device/SERIAL/report only: never a wildcard, never /request ... on_connect()
* one pushall after the SUBACK, then the printer sends deltas ................ on_subscribe()
* a unique client id: two clients with the same id knock each other off ...... main()

Trust: the printer's certificate names its serial (CN = serial) and carries no IP address,
so the usual host-name check against the IP can never pass. With --ca-file the chain is
verified against the CA and then the CN is compared to --serial, inside the TLS handshake,
so a wrong or impostor printer never receives the access code. Without --ca-file nothing
proves who answers; the script says so and shows the certificate's fingerprint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import ssl
import sys
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def make_tls_context(serial: str, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the A1 speaks 1.2 only
    ctx.check_hostname = False  # the certificate names the serial, not the IP: checked below
    if ca_file:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca_file)
        # Bambu's CA lacks extensions that Python 3.13's strict X.509 mode requires.
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    else:
        ctx.verify_mode = ssl.CERT_NONE

    class CheckedSocket(ssl.SSLSocket):
        """Checks who answered right after the handshake, before paho sends CONNECT."""

        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)  # with a CA: raises unless the chain verifies
            der = self.getpeercert(binary_form=True) or b""
            cn = common_name(self.getpeercert()) if ca_file else None
            if ca_file and cn != serial:
                raise ssl.SSLCertVerificationError(
                    f"the certificate is for {cn!r}, not {serial!r}: wrong IP or serial"
                )
            if not ca_file:
                print(
                    "warning: no --ca-file, the printer's identity is NOT verified "
                    f"(certificate SHA-256 {hashlib.sha256(der).hexdigest()[:32]}...)",
                    file=sys.stderr,
                )

    ctx.sslsocket_class = CheckedSocket
    return ctx


def common_name(cert: Any) -> str | None:
    """The subject CN of a certificate as returned by ``SSLSocket.getpeercert()``."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Print the reports of a Bambu Lab printer.")
    parser.add_argument("--host", default=env("BAMBU_HOST"), help="printer IP (BAMBU_HOST)")
    parser.add_argument("--port", type=int, default=int(env("BAMBU_PORT") or 8883))
    parser.add_argument("--serial", default=env("BAMBU_SERIAL"), help="(BAMBU_SERIAL)")
    parser.add_argument("--access-code", default=env("BAMBU_ACCESS_CODE"))
    parser.add_argument("--ca-file", default=env("BAMBU_CA_FILE"), help="e.g. bambu.cert")
    parser.add_argument("--count", type=int, default=0, help="exit after N reports")
    args = parser.parse_args()
    if not (args.host and args.serial and args.access_code):
        parser.error("--host, --serial and --access-code are required (or BAMBU_* variables)")

    report_topic = f"device/{args.serial}/report"
    request_topic = f"device/{args.serial}/request"
    received = 0
    failed = False

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        nonlocal failed
        if reason.is_failure:  # e.g. "Not authorized": a wrong access code
            print(f"connection refused: {reason}", file=sys.stderr)
            failed = True
            client.disconnect()  # do not let loop_forever retry a refused code in a loop
            return
        client.subscribe(report_topic, qos=0)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        nonlocal failed
        if any(code.is_failure for code in codes):
            failed = True
            print(f"subscription refused: {codes}", file=sys.stderr)
            client.disconnect()
            return
        # Granted: ask for the full state once; from now on the printer sends changes.
        pushall = {
            "pushing": {
                "sequence_id": str(random.randint(1, 99999)),
                "command": "pushall",
                "version": 1,
                "push_target": 1,
            }
        }
        client.publish(request_topic, json.dumps(pushall))

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        print(message.payload.decode("utf-8", "replace").rstrip("\0"), flush=True)
        if args.count and received >= args.count:
            client.disconnect()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"a1-minimal-{uuid.uuid4()}",
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=True,
    )
    client.username_pw_set("bblp", args.access_code)
    client.tls_set_context(make_tls_context(args.serial, args.ca_file))
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(args.host, args.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:  # refused, unreachable, or not the printer we mean
        reason = exc.args[-1] if exc.args else exc
        print(f"cannot connect to {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        client.disconnect()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
