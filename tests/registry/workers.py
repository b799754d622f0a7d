"""Process entry points for the concurrency and crash tests (importable under spawn)."""

from __future__ import annotations

import random
import sys
import time


def promote_once(tracking_uri: str, ledger_url: str, model: str, version: str, seed: int) -> str:
    from mlflow import MlflowClient

    from components.errors import ConflictError
    from registry.ledger import Ledger
    from registry.promotion import commit_move

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    ledger = Ledger(ledger_url)
    seen = ledger.aliases(model).get("champion")  # what this promotion's gate compares against
    time.sleep(random.Random(seed).uniform(0.0, 0.3))  # the gate's evaluation time
    try:
        commit_move(
            client,
            ledger,
            model,
            version=version,
            to="champion",
            expected_champion=seen,
            gate={"seen": seen},
            trigger="ci",
            forced=False,
            reasons=[f"test promotion of v{version}"],
            approved_by=None,
            who=f"w{seed}",
        )
        return "promoted"
    except ConflictError:
        return "conflict"
    finally:
        ledger.dispose()


if __name__ == "__main__":  # crash test: python -m tests.registry.workers URI LEDGER MODEL VERSION
    uri, ledger_url, model, version = sys.argv[1:5]
    print(promote_once(uri, ledger_url, model, version, 0))
