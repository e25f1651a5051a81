"""``python -m stripe_emulator --host 127.0.0.1 --port 12111 [--data FILE] [--public-url URL]``: serve the
emulator over HTTP.

With ``--data`` the state is loaded at start and saved after every change and at exit. Hosted URLs
(Checkout, invoices, portal) start with ``--public-url`` (or ``$STRIPE_EMULATOR_PUBLIC_URL``), by default
the address served.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from urllib.parse import urlsplit

from stripe_emulator.core.emulator import Emulator
from stripe_emulator.core.version import API_VERSION
from stripe_emulator.server import EmulatorServer, make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--data", help="JSON file to load state from and save it to")
    parser.add_argument(
        "--public-url",
        default=os.environ.get("STRIPE_EMULATOR_PUBLIC_URL") or None,
        help="base of the hosted page URLs it renders, as a browser reaches it (default: the address served; "
        "env STRIPE_EMULATOR_PUBLIC_URL)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.public_url is not None:
        parts = urlsplit(args.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            parser.error(
                f"--public-url must be an http(s) base URL like http://localhost:12111, not {args.public_url!r}"
            )

    # SIGTERM and SIGINT ask the server to stop; the state is then saved and the process exits 0. The handler
    # raises nothing: an exception raised at whatever line the signal lands on (a second SIGTERM while closing
    # waits for a webhook delivery or saves --data) would end the process with a traceback and half a save.
    stopping = threading.Event()
    server: EmulatorServer | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if server is not None:  # shutdown() waits for serve_forever's loop: not from the thread running it
            threading.Thread(target=server.shutdown, name="stripe-emulator-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emulator = Emulator(data_path=args.data)
    try:
        server = make_server(emulator, args.host, args.port, verbose=args.verbose, public_url=args.public_url)
        try:
            if not stopping.is_set():  # a signal during start-up: stop before serving
                print(
                    f"stripe emulator listening on {server.url} (api version {API_VERSION}), hosted pages at "
                    f"{emulator.base_url}",
                    flush=True,
                )
                server.serve_forever()
        finally:
            server.server_close()
    finally:
        emulator.close()  # saves --data one last time
    return 0


if __name__ == "__main__":
    sys.exit(main())
