"""A client that pushes a bundle slowly, saying how far it got after every chunk.

    python -m tests.catalog.slow_push ADDRESS TOKEN BUNDLE

Tests kill it in the middle of its push.
"""

from __future__ import annotations

import sys
import time

from modelwire.catalog.client import CatalogClient
from modelwire.config import CatalogSettings


def main() -> None:
    address, token, bundle = sys.argv[1:4]

    def progress(done: int, total: int) -> None:
        print(f"sent {done} of {total}", flush=True)
        time.sleep(0.05)

    with CatalogClient(CatalogSettings(address, token)) as client:
        client.push(bundle, progress=progress)
    print("done", flush=True)


if __name__ == "__main__":
    main()
