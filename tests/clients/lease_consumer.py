"""One client process of the lease tests: consumes one unit at a time from `LeasedQuota` until refused, prints
how many uses it was allowed, and closes (reports and releases). With `hang`, it prints after its first
`hang` uses and waits to be killed instead; with `entity`, the uses are that entity's."""

import sys
import time

from tollgate_client import Tollgate
from tollgate_client.leases import LeasedQuota


def main() -> None:
    url, key, customer, feature, name = sys.argv[1:6]
    lease = int(sys.argv[6])
    hang = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    entity = sys.argv[8] if len(sys.argv) > 8 else None
    with Tollgate(key, url, timeout=30, max_retries=5) as tollgate:
        quota = LeasedQuota(
            tollgate,
            customer=customer,
            feature=feature,
            lease=lease,
            expires_in=30,
            flush_every=0.2,
            entity=entity,
        )
        allowed = 0
        while quota.consume(id=f"{name}-{allowed}"):
            allowed += 1
            if hang and allowed == hang:
                quota.flush()
                _say(allowed)
                time.sleep(600)
        quota.close()
        _say(allowed)


def _say(allowed: int) -> None:
    sys.stdout.write(f"{allowed}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
