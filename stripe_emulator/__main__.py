"""``python -m stripe_emulator --host 127.0.0.1 --port 12111 [--data FILE]``: serve the emulator over HTTP.

With ``--data`` the state is loaded at start and saved after every change and at exit.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from stripe_emulator.core.emulator import Emulator
from stripe_emulator.core.version import API_VERSION
from stripe_emulator.server import make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--data", help="JSON file to load state from and save it to")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    emulator = Emulator(data_path=args.data)
    server = make_server(emulator, args.host, args.port, verbose=args.verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"stripe emulator listening on {server.url} (api version {API_VERSION})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        emulator.close()  # saves --data one last time
    return 0


if __name__ == "__main__":
    sys.exit(main())
