"""A client process for `test_local_entitlements_processes.py` and `bench.local_checks`: checks one feature of one
customer from a `LocalEntitlements` in a loop, and prints `<answer> <unix time>` each time the answer changes.

    python -m tests.clients.local_checker URL KEY CUSTOMER FEATURE [POLL_INTERVAL [push|nopush]]
"""

import sys
import time

from tollgate_client import Tollgate
from tollgate_client.local import LocalEntitlements


def _answer(local: LocalEntitlements, customer: str, feature: str) -> str:
    check = local.check(customer=customer, feature=feature)
    return f"{check.allowed}/{check.limit}"


def main() -> None:
    url, key, customer, feature = sys.argv[1:5]
    poll_interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
    push = sys.argv[6] != "nopush" if len(sys.argv) > 6 else True
    with (
        Tollgate(key, url, timeout=10) as client,
        LocalEntitlements(client, poll_interval=poll_interval, push=push) as local,
    ):
        last = ""
        while True:
            answer = _answer(local, customer, feature)
            if answer != last:
                sys.stdout.write(f"{answer} {time.time()}\n")
                sys.stdout.flush()
                last = answer
            time.sleep(0.002)


if __name__ == "__main__":
    main()
