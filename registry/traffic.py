"""Online rollout moves through the ledger: the canary's traffic share, and aborting a candidate
(share to 0, alias removed, reasons and live evidence recorded). Both check that the version still
holds the alias (compare-and-swap), so a rollout never acts on a role someone else has changed."""

from __future__ import annotations

from typing import Any

from components.errors import ConflictError
from registry.ledger import Entry, Ledger
from registry.promotion import project_latest


def set_canary_share(
    ledger: Ledger,
    model: str,
    *,
    version: str,
    share: float,
    reasons: list[str],
    evidence: dict[str, Any] | None = None,
    trigger: str = "rollout",
) -> list[int]:
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        if state.get("canary") != version:
            raise ConflictError(
                f"v{version} of {model!r} no longer holds 'canary' (now v{state.get('canary')}); "
                "share not changed"
            )
        return ledger.append(
            conn,
            model,
            [
                Entry(
                    kind="traffic",
                    outcome="committed",
                    alias="canary",
                    to_version=version,
                    baseline_version=state.get("champion"),
                    reasons=tuple(reasons),
                    evidence={**(evidence or {}), "share": float(share)},
                )
            ],
            trigger=trigger,
        )


def record_step(
    ledger: Ledger,
    model: str,
    *,
    version: str,
    outcome: str,
    reasons: list[str],
    evidence: dict[str, Any],
    trigger: str = "rollout",
) -> list[int]:
    """One analysis of a rollout step (passed | failed | inconclusive | waiting), as a gate entry."""
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        return ledger.append(
            conn,
            model,
            [
                Entry(
                    kind="gate",
                    outcome=outcome,
                    to_version=version,
                    baseline_version=state.get("champion"),
                    reasons=tuple(reasons),
                    evidence=evidence,
                )
            ],
            trigger=trigger,
        )


def abort_candidate(
    client,
    ledger: Ledger,
    model: str,
    *,
    version: str,
    reasons: list[str],
    evidence: dict[str, Any],
    trigger: str = "rollout",
) -> list[str]:
    """A failed step: remove every candidate alias the version holds (shadow, canary; the canary
    share goes with it) and record the failure with its evidence. Returns the aliases removed."""
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        held = [a for a in ("shadow", "canary") if state.get(a) == version]
        entries = [
            Entry(
                kind="gate",
                outcome="failed",
                to_version=version,
                baseline_version=state.get("champion"),
                reasons=tuple(reasons),
                evidence=evidence,
            )
        ]
        entries += [
            Entry(
                kind="alias_removed",
                outcome="committed",
                alias=a,
                from_version=version,
                baseline_version=state.get("champion"),
                reasons=tuple(reasons),
            )
            for a in held
        ]
        ledger.append(conn, model, entries, trigger=trigger)
    project_latest(client, ledger, model)
    return held


def remove_alias(
    client,
    ledger: Ledger,
    model: str,
    *,
    alias: str,
    version: str,
    reasons: list[str],
    trigger: str = "rollout",
) -> bool:
    """Remove ``alias`` if ``version`` still holds it (False when someone else moved it)."""
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        if state.get(alias) != version:
            return False
        ledger.append(
            conn,
            model,
            [
                Entry(
                    kind="alias_removed",
                    outcome="committed",
                    alias=alias,
                    from_version=version,
                    baseline_version=state.get("champion"),
                    reasons=tuple(reasons),
                )
            ],
            trigger=trigger,
        )
    project_latest(client, ledger, model)
    return True
