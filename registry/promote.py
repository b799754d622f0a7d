"""``seqops promote``: resolve, check, recompute the gate's evidence, decide, and commit by CAS."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.config import JobConfig, load_config, parse_config
from components.errors import BadInputError
from registry.champion import load_version
from registry.evidence import promotion_evidence
from registry.gate import promotion_gate
from registry.ledger import Ledger
from registry.promotion import (
    LIFECYCLE_TARGETS,
    Outcome,
    commit_move,
    crash_point,
    held_aliases,
    reconcile,
    record_rejection,
    resolve_version,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApprovalAnswer:
    """A person's answer to a champion promotion that needs approval."""

    approved: bool
    approved_by: str | None
    comment: str = ""


# Called with the pending outcome (gate passed, nothing committed) when approval is required and
# no --approved-by was given; blocks until a person answers (the Prefect flow pauses here).
AskApproval = Callable[[Outcome], ApprovalAnswer]


def candidate_config(run_id: str) -> JobConfig:
    """The resolved config the candidate was trained with (logged by retrain)."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            p = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="config/config.resolved.yaml", dst_path=tmp
            )
        except Exception as exc:
            raise BadInputError(
                f"run {run_id} has no logged config (not trained by seqops?): {exc}"
            ) from None
        return parse_config(yaml.safe_load(Path(p).read_text()), source=f"run {run_id} config")


def promote(
    client,
    ledger: Ledger,
    model: str,
    *,
    ref: str,
    to: str,
    trigger: str = "manual",
    force: bool = False,
    reason: str | None = None,
    approved_by: str | None = None,
    dry_run: bool = False,
    config_path: str | None = None,
    ask_approval: AskApproval | None = None,
) -> Outcome:
    if to not in LIFECYCLE_TARGETS:
        raise BadInputError(
            f"--to {to!r} is not a lifecycle step; expected one of {', '.join(LIFECYCLE_TARGETS)}"
        )
    if force and not (reason or "").strip():
        raise BadInputError("a forced promotion needs --reason TEXT")
    mv = resolve_version(client, model, ref)
    version = str(mv.version)
    repaired = reconcile(client, ledger, model)
    state = ledger.aliases(model)
    champion_v = state.get("champion")
    base = Outcome(
        model=model,
        version=version,
        alias=to,
        status="no-op",
        exit_code=0,
        champion_before=champion_v,
        champion_after=champion_v,
        repaired=repaired,
    )
    if state.get(to) == version:
        base.reasons = [f"v{version} already holds {to!r}"]
        return base
    job = load_config(config_path) if config_path else candidate_config(mv.run_id)
    pcfg = job.promotion
    passed_offline = mv.tags.get("seqops.gate") == "passed"
    if not passed_offline and not force:
        raise BadInputError(
            f"v{version} of {model!r} never passed the offline gate (seqops.gate={mv.tags.get('seqops.gate')!r}); "
            "promote it only with --force --reason TEXT"
        )
    needs_approval = to == "champion" and pcfg.require_approval and not approved_by
    if needs_approval and ask_approval is None:
        raise BadInputError(
            f"promotion.require_approval is set for {model!r}: pass --approved-by NAME "
            "(or run the promotion flow with --wait-for-approval)"
        )
    reasons: list[str] = []
    gate_dict = None
    if force:
        reasons = [f"forced: {reason}"]
    elif to == "champion":
        hist = ledger.history(model)
        held = held_aliases(hist, version)
        missing = [s for s in pcfg.required_steps if s not in held]
        champion = None
        if champion_v is not None:
            cmv = client.get_model_version(model, champion_v)
            champion = load_version(model, champion_v, cmv.run_id)
        candidate = load_version(model, version, mv.run_id)
        ev = promotion_evidence(job, candidate, champion, base_dir=Path.cwd())
        decision = promotion_gate(
            job.gate,
            pcfg,
            candidate=ev.candidate,
            seasonal_naive=ev.seasonal_naive,
            champion=ev.champion,
            champion_version=champion_v,
            dm=ev.dm,
        )
        if ev.champion_problem:
            decision.passed, decision.outcome = False, "failed"
            decision.reasons.append(ev.champion_problem)
        if missing:
            decision.passed, decision.outcome = False, "failed"
            decision.reasons.append(
                f"required lifecycle steps not yet held: {', '.join(missing)} (promotion.required_steps)"
            )
        gate_dict = {**decision.to_dict(), "evidence": ev.to_dict()}
        crash_point("after_gate")
        if not decision.passed:
            status = "inconclusive" if decision.outcome == "inconclusive" else "rejected"
            ids = (
                []
                if dry_run
                else record_rejection(
                    ledger,
                    model,
                    version=version,
                    champion=champion_v,
                    outcome=decision.outcome,
                    reasons=decision.reasons,
                    gate=gate_dict,
                    trigger=trigger,
                    approved_by=approved_by,
                )
            )
            return Outcome(
                model=model,
                version=version,
                alias=to,
                status=status,
                exit_code=1,
                champion_before=champion_v,
                champion_after=champion_v,
                reasons=decision.reasons,
                gate=gate_dict,
                ledger_ids=ids,
                repaired=repaired,
            )
        reasons = [
            f"gate passed vs champion v{champion_v}"
            if champion_v
            else "gate passed (no champion yet)"
        ]
    else:
        reasons = [f"{to}: passed the offline gate at retrain"]
    if needs_approval and not dry_run:
        assert ask_approval is not None
        pending = Outcome(
            model=model,
            version=version,
            alias=to,
            status="awaiting-approval",
            exit_code=0,
            champion_before=champion_v,
            champion_after=champion_v,
            reasons=reasons,
            gate=gate_dict,
            forced=force,
            repaired=repaired,
        )
        answer = ask_approval(pending)
        if not answer.approved:
            if answer.approved_by:
                why = [f"approval declined by {answer.approved_by}"]
                why = [why[0] + f": {answer.comment}"] if answer.comment else why
            else:
                why = [f"not approved: {answer.comment or 'no answer'}"]
            ids = record_rejection(
                ledger,
                model,
                version=version,
                champion=champion_v,
                outcome="declined",
                reasons=why,
                gate=gate_dict,
                trigger=trigger,
                approved_by=answer.approved_by,
            )
            pending.status, pending.exit_code = "declined", 1
            pending.reasons, pending.ledger_ids = why, ids
            return pending
        approved_by = answer.approved_by
        if answer.comment:
            reasons = [*reasons, f"approved by {approved_by}: {answer.comment}"]
    if dry_run:
        return Outcome(
            model=model,
            version=version,
            alias=to,
            status="dry-run",
            exit_code=0,
            champion_before=champion_v,
            champion_after=version if to == "champion" else champion_v,
            reasons=reasons,
            gate=gate_dict,
            forced=force,
            repaired=repaired,
        )
    out = commit_move(
        client,
        ledger,
        model,
        version=version,
        to=to,
        expected_champion=champion_v,
        gate=gate_dict,
        trigger=trigger,
        forced=force,
        reasons=reasons,
        approved_by=approved_by,
    )
    out.repaired = repaired
    return out
