"""Promotion, rollback and reconciliation: every alias move is gated, recorded in the ledger,
committed by compare-and-swap against the champion the gate saw, then projected onto MLflow.

Crash safety: the ledger commit is the decision. Projections follow it, moving ``champion``
first with an atomic overwrite (MLflow never shows it missing); a crash between the two leaves
MLflow on the old champion, and the next command (or ``seqops reconcile``) repairs it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from components.errors import BadInputError, ConflictError, RunFailedError
from registry.aliases import ALIASES
from registry.ledger import Entry, Ledger

log = logging.getLogger(__name__)

LIFECYCLE_TARGETS = ("shadow", "canary", "champion")
_STEP_ALIASES = ("challenger", "shadow", "canary")


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: SEQOPS_CRASH_AT=<name> kills the process here."""
    if os.environ.get("SEQOPS_CRASH_AT") == name:
        log.warning("SEQOPS_CRASH_AT=%s: killing the process (-9)", name)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Outcome:
    model: str
    version: str | None
    alias: str | None
    status: str  # promoted | no-op | rejected | inconclusive | dry-run | rolled-back
    exit_code: int
    champion_before: str | None = None
    champion_after: str | None = None
    reasons: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    forced: bool = False
    ledger_ids: list[int] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_version(client, model: str, ref: str):
    """A ModelVersion from ``N``, an alias, ``NAME/N`` or ``models:/NAME/N``; bad input is exit 2."""
    from mlflow.exceptions import MlflowException

    ensure_model(client, model)
    ref = ref.strip()
    m = re.fullmatch(r"(?:models:/)?(?:(?P<name>[^/@]+)/)?(?P<num>\d+)", ref)
    if m:
        name = m.group("name") or model
        if name != model:
            raise BadInputError(f"version {ref!r} belongs to model {name!r}, not {model!r}")
        try:
            return client.get_model_version(model, m.group("num"))
        except MlflowException:
            raise BadInputError(f"unknown version {m.group('num')} of model {model!r}") from None
    if ref in ALIASES:
        try:
            return client.get_model_version_by_alias(model, ref)
        except MlflowException:
            raise BadInputError(f"model {model!r} has no version with alias {ref!r}") from None
    raise BadInputError(
        f"malformed --version {ref!r}: expected a version number, an alias ({', '.join(ALIASES)}) or NAME/N"
    )


def _project(client, model: str, want: dict[str, str], *, crash_prefix: str = "") -> list[str]:
    """Make MLflow's aliases match ``want`` (the ledger's state). Champion is moved first and
    only by overwrite; stale aliases are deleted last."""
    have = {
        a: str(v) for a, v in client.get_registered_model(model).aliases.items() if a in ALIASES
    }
    changes = []
    order = sorted(ALIASES, key=lambda a: a != "champion")
    for alias in order:
        if alias in want and have.get(alias) != want[alias]:
            client.set_registered_model_alias(model, alias, want[alias])
            changes.append(f"{alias} -> v{want[alias]}")
            if crash_prefix:
                crash_point(f"{crash_prefix}_{alias}")
    for alias in order:
        if alias not in want and alias in have:
            client.delete_registered_model_alias(model, alias)
            changes.append(f"{alias} removed (was v{have[alias]})")
    return changes


def _tag_roles(client, model: str, want: dict[str, str]) -> None:
    """``seqops.role`` on the champion and previous champion; written only where it differs (a
    read is one call, a write in MLflow 3 is two)."""
    for alias, version in want.items():
        if (
            alias in ("champion", "previous-champion")
            and client.get_model_version(model, version).tags.get("seqops.role") != alias
        ):
            client.set_model_version_tag(model, version, "seqops.role", alias)


def _note(client, model: str, version: str, note: str) -> None:
    client.set_model_version_tag(
        model, version, "seqops.promoted_at", datetime.now(UTC).isoformat(timespec="seconds")
    )
    client.set_model_version_tag(model, version, "seqops.promotion", note[:4900])


def project_latest(
    client, ledger: Ledger, model: str, *, crash_prefix: str = ""
) -> tuple[dict[str, str], list[str]]:
    """Project the ledger's *latest* state onto MLflow while holding the model's lock.

    Projecting a process's own view outside the lock would let a slower process overwrite a newer
    champion; under the lock, the last projection always shows the last commit.
    """
    with ledger.locked(model) as conn:
        want = ledger.aliases(model, conn)
        changes = _project(client, model, want, crash_prefix=crash_prefix) if want else []
        _tag_roles(client, model, want)
    return want, changes


def reconcile(client, ledger: Ledger, model: str) -> list[str]:
    """Repair MLflow's aliases from the ledger (after a crash between commit and projection)."""
    _, changes = project_latest(client, ledger, model)
    if changes:
        log.warning("reconciled %s from the ledger: %s", model, "; ".join(changes))
    return changes


def champion_stack(history: list[dict[str, Any]]) -> list[str]:
    """Champion versions as a stack: promotions push, rollbacks pop back to their target."""
    stack: list[str] = []
    for e in history:
        if e["kind"] != "alias_set" or e["alias"] != "champion":
            continue
        v = e["to_version"]
        if e["trigger"] in ("rollback", "automatic-rollback") and v in stack:
            while stack and stack[-1] != v:
                stack.pop()
        else:
            stack.append(v)
    return stack


def held_aliases(history: list[dict[str, Any]], version: str) -> set[str]:
    return {e["alias"] for e in history if e["kind"] == "alias_set" and e["to_version"] == version}


def record_alias(
    client, ledger: Ledger, model: str, alias: str, version: str, *, trigger: str, reasons=()
) -> None:
    """Set one alias through the ledger (used by retrain for ``challenger`` and a first champion)."""
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        if state.get(alias) == version:
            return
        ledger.append(
            conn,
            model,
            [
                Entry(
                    kind="alias_set",
                    outcome="committed",
                    alias=alias,
                    from_version=state.get(alias),
                    to_version=version,
                    baseline_version=state.get("champion"),
                    reasons=tuple(reasons),
                )
            ],
            trigger=trigger,
        )
    project_latest(client, ledger, model)


def commit_move(
    client,
    ledger: Ledger,
    model: str,
    *,
    version: str,
    to: str,
    expected_champion: str | None,
    gate: dict[str, Any] | None,
    trigger: str,
    forced: bool,
    reasons: list[str],
    approved_by: str | None,
    who: str | None = None,
) -> Outcome:
    """Compare-and-swap: commit the move only if the champion is still ``expected_champion``."""
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        current = state.get("champion")
        if current != expected_champion:
            raise ConflictError(
                f"champion of {model!r} moved to v{current} while this promotion was evaluated against "
                f"v{expected_champion}; nothing was changed. Re-run to evaluate against the new champion."
            )
        entries = [
            Entry(
                kind="gate",
                outcome="passed" if not forced else "forced",
                to_version=version,
                baseline_version=current,
                reasons=tuple(reasons),
                evidence=gate or {},
            )
        ]
        want = dict(state)
        if to == "champion":
            entries.append(
                Entry(
                    kind="alias_set",
                    outcome="committed",
                    alias="champion",
                    from_version=current,
                    to_version=version,
                    baseline_version=current,
                    reasons=tuple(reasons),
                )
            )
            want["champion"] = version
            if current is not None and current != version:
                entries.append(
                    Entry(
                        kind="alias_set",
                        outcome="committed",
                        alias="previous-champion",
                        from_version=state.get("previous-champion"),
                        to_version=current,
                        baseline_version=current,
                        reasons=tuple(reasons),
                    )
                )
                want["previous-champion"] = current
            for step in _STEP_ALIASES:  # the version leaves its candidate roles
                if state.get(step) == version:
                    entries.append(
                        Entry(
                            kind="alias_removed",
                            outcome="committed",
                            alias=step,
                            from_version=version,
                            baseline_version=current,
                            reasons=tuple(reasons),
                        )
                    )
                    want.pop(step)
        else:
            entries.append(
                Entry(
                    kind="alias_set",
                    outcome="committed",
                    alias=to,
                    from_version=state.get(to),
                    to_version=version,
                    baseline_version=current,
                    reasons=tuple(reasons),
                )
            )
            want[to] = version
        ids = ledger.append(
            conn, model, entries, trigger=trigger, forced=forced, approved_by=approved_by, who=who
        )
        crash_point("after_ledger_commit_pending")
    crash_point("after_ledger_commit")
    project_latest(client, ledger, model, crash_prefix="after_projection")
    _note(
        client, model, version, f"{to} via {trigger}; vs champion v{current}; " + "; ".join(reasons)
    )
    crash_point("after_tags")
    return Outcome(
        model=model,
        version=version,
        alias=to,
        status="promoted",
        exit_code=0,
        champion_before=current,
        champion_after=want.get("champion"),
        reasons=reasons,
        gate=gate,
        forced=forced,
        ledger_ids=ids,
    )


def record_rejection(
    ledger: Ledger,
    model: str,
    *,
    version: str,
    champion: str | None,
    outcome: str,
    reasons: list[str],
    gate: dict[str, Any] | None,
    trigger: str,
    approved_by: str | None,
) -> list[int]:
    with ledger.locked(model) as conn:
        return ledger.append(
            conn,
            model,
            [
                Entry(
                    kind="gate",
                    outcome=outcome,
                    to_version=version,
                    baseline_version=champion,
                    reasons=tuple(reasons),
                    evidence=gate or {},
                )
            ],
            trigger=trigger,
            approved_by=approved_by,
        )


def rollback(
    client,
    ledger: Ledger,
    model: str,
    *,
    to: str | None,
    reason: str,
    force: bool,
    trigger: str = "rollback",
) -> Outcome:
    """Return ``champion`` to the previous champion (walking back through history), or to ``to``."""
    if not reason.strip():
        raise BadInputError("a rollback needs --reason TEXT")
    reconcile(client, ledger, model)
    state = ledger.aliases(model)
    current = state.get("champion")
    if current is None:
        raise BadInputError(f"model {model!r} has no champion in the ledger; nothing to roll back")
    stack = champion_stack(ledger.history(model))
    if to is not None:
        target = str(resolve_version(client, model, to).version)
        candidates = [target]
    else:
        candidates = [v for v in reversed(stack[:-1]) if v != current]
        if not candidates:
            raise BadInputError(f"model {model!r} has no previous champion to roll back to")
    chosen = None
    for v in candidates:
        gate_tag = client.get_model_version(model, v).tags.get("seqops.gate")
        if gate_tag == "rejected" and not force:
            log.warning("skipping v%s: it failed its gates (use --force to allow it)", v)
            continue
        chosen = v
        break
    if chosen is None:
        raise BadInputError(
            f"no previous champion of {model!r} passed its gates; use --to VERSION --force --reason"
        )
    if chosen == current:
        return Outcome(
            model=model,
            version=chosen,
            alias="champion",
            status="no-op",
            exit_code=0,
            champion_before=current,
            champion_after=current,
            reasons=[reason],
        )
    with ledger.locked(model) as conn:
        state = ledger.aliases(model, conn)
        if state.get("champion") != current:
            raise ConflictError(
                f"champion of {model!r} moved to v{state.get('champion')} during the rollback; nothing was changed"
            )
        remaining = [v for v in stack if v != current]
        while remaining and remaining[-1] != chosen:
            remaining.pop()
        prev = remaining[-2] if len(remaining) >= 2 else None
        entries = [
            Entry(
                kind="alias_set",
                outcome="committed",
                alias="champion",
                from_version=current,
                to_version=chosen,
                baseline_version=current,
                reasons=(reason,),
            )
        ]
        want = {**state, "champion": chosen}
        if prev is not None:
            entries.append(
                Entry(
                    kind="alias_set",
                    outcome="committed",
                    alias="previous-champion",
                    from_version=state.get("previous-champion"),
                    to_version=prev,
                    baseline_version=current,
                )
            )
            want["previous-champion"] = prev
        elif "previous-champion" in state:
            entries.append(
                Entry(
                    kind="alias_removed",
                    outcome="committed",
                    alias="previous-champion",
                    from_version=state["previous-champion"],
                    baseline_version=current,
                )
            )
            want.pop("previous-champion")
        ids = ledger.append(conn, model, entries, trigger=trigger, forced=force)
    client.set_model_version_tag(model, current, "seqops.role", "rolled-back")
    project_latest(client, ledger, model)
    _note(client, model, chosen, f"rollback from v{current}: {reason}")
    return Outcome(
        model=model,
        version=chosen,
        alias="champion",
        status="rolled-back",
        exit_code=0,
        champion_before=current,
        champion_after=chosen,
        reasons=[reason],
        forced=force,
        ledger_ids=ids,
    )


def ensure_model(client, model: str):
    """The registered model, or exit 2 naming it."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # MLflow down, auth refused: not bad input
            raise RunFailedError(
                f"MLflow registry failed reading model {model!r}: {exc.message}"
            ) from None
        raise BadInputError(f"unknown model {model!r}: no registered model of that name") from None


def status(client, ledger: Ledger, model: str) -> dict[str, Any]:
    rm = ensure_model(client, model)
    ledger_aliases = ledger.aliases(model)
    mlflow_aliases = {a: str(v) for a, v in rm.aliases.items()}
    hist = ledger.history(model)
    # inconclusive gate evaluations not superseded by a later decision or move of that version
    latest: dict[str, dict[str, Any]] = {}
    for e in hist:
        if e["to_version"] is not None:
            latest[e["to_version"]] = e
    pending = [e for e in latest.values() if e["kind"] == "gate" and e["outcome"] == "inconclusive"]
    return {
        "model": model,
        "aliases": ledger_aliases,
        "mlflow_aliases": mlflow_aliases,
        "in_sync": {a: v for a, v in mlflow_aliases.items() if a in ALIASES} == ledger_aliases,
        "champion_stack": champion_stack(hist),
        "pending": [
            {"version": e["to_version"], "since": e["ts"], "reasons": e["reasons"]} for e in pending
        ],
        "ledger_entries": len(hist),
    }
