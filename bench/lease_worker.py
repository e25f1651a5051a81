"""One client process of `bench.leases`: at the Unix time `start`, makes `count` uses of a metered feature
(`api_calls`, or the one named after `start`) for `customer`, each with its own id — `consume` over HTTP, or `lease` from `LeasedQuota` (closed at the end, so
every use has reached the server) — and prints the seconds it took and how many uses were allowed."""

import sys
import time

from tollgate_client import Tollgate
from tollgate_client.leases import LeasedQuota


def main() -> None:
    url, key, customer, mode, name = sys.argv[1:6]
    count, start = int(sys.argv[6]), float(sys.argv[7])
    feature = sys.argv[8] if len(sys.argv) > 8 else "api_calls"
    with Tollgate(key, url, timeout=30) as tollgate:
        tollgate.entitlements.check(customer=customer, feature=feature)  # the connection is warm
        time.sleep(max(0.0, start - time.time()))
        began = time.perf_counter()
        allowed = 0
        if mode == "consume":
            for n in range(count):
                answer = tollgate.entitlements.consume(id=f"{name}-{n}", customer=customer, feature=feature)
                allowed += answer.allowed
        else:
            quota = LeasedQuota(tollgate, customer=customer, feature=feature, lease=2000)
            for n in range(count):
                allowed += quota.consume(id=f"{name}-{n}")
            quota.close()
        elapsed = time.perf_counter() - began
    sys.stdout.write(f"{elapsed} {allowed}\n")


if __name__ == "__main__":
    main()
