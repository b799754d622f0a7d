"""The ``rollout`` Prefect flow: take a candidate through the configured steps (shadow, canary
shares, champion, bake) on live traffic, judging each step on the prediction log.

Every analysis that decides something is a ledger entry with its evidence. A failed step aborts
(canary share to 0, candidate aliases removed, exit 1); success promotes through the promotion
engine's compare-and-swap against the champion the rollout started from (exit 4 if it moved);
a breach during the bake rolls back to the previous champion by itself. A rollout re-run for the
same version resumes from the step the ledger shows it at.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from components.config import JobConfig, RolloutStep, load_config
from components.errors import BadInputError

if TYPE_CHECKING:
    from serving.analysis import StepEvidence

log = logging.getLogger("seqops.rollout")


def _start_index(
    steps: list[RolloutStep], aliases: dict[str, str], version: str, share: float | None
) -> int:
    """Where a rollout of ``version`` stands, from the ledger's aliases (resume after a restart).

    A version that is champion with the previous champion still shadowing it was interrupted in
    its bake: the bake resumes (against the previous champion). Any other champion is done."""
    kinds = [s.step for s in steps]
    if aliases.get("champion") == version:
        prev = aliases.get("previous-champion")
        if "bake" in kinds and prev and aliases.get("shadow") == prev:
            return kinds.index("bake")
        raise BadInputError(f"v{version} is already the champion; nothing to roll out")
    if aliases.get("canary") == version:
        for i, s in enumerate(steps):
            if s.step == "canary" and (share is None or (s.share or 0) >= share - 1e-9):
                return i
    if aliases.get("shadow") == version and "shadow" in kinds:
        return kinds.index("shadow")
    return 0


def _champion_since(history: list[dict[str, Any]], version: str) -> datetime | None:
    """When ``version`` last became champion (the ledger's alias move), for a resumed bake."""
    for e in reversed(history):
        if e["kind"] == "alias_set" and e["alias"] == "champion" and e["to_version"] == version:
            ts = datetime.fromisoformat(e["ts"])
            return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return None


@task(
    name="analyse-step",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=2,
)
def analyse_task(plog, model: str, step: str, candidate: str, baseline: str, since: datetime,
                 freq: str, job: JobConfig, min_labelled: int,
                 baseline_ops_since: datetime | None = None) -> StepEvidence:  # fmt: skip
    from serving.analysis import analyse_step

    return analyse_step(plog, model, step=step, candidate=candidate, baseline=baseline, since=since,
                        freq=freq, cfg=job.rollout, min_labelled=min_labelled,
                        baseline_ops_since=baseline_ops_since)  # fmt: skip


@flow(name="rollout", validate_parameters=False)
def rollout_flow(
    model: str,
    version: str,
    config_path: str,
    *,
    state_dir: str = ".seqops",
    ledger_url: str | None = None,
    predlog_url: str | None = None,
    force: bool = False,
    reason: str | None = None,
    approved_by: str | None = None,
) -> Any:
    """The outcome as a dict; a rollout that did not promote (aborted, rolled back, conflict)
    ends the flow run Failed, with the same dict as its result, so a deployment's run history
    and automations see it. Callers: ``rollout_flow(..., return_state=True)`` and
    ``state.result(raise_on_failure=False)``."""
    from prefect.states import Failed

    out = _rollout(model, version, config_path, state_dir=state_dir, ledger_url=ledger_url,
                   predlog_url=predlog_url, force=force, reason=reason,
                   approved_by=approved_by)  # fmt: skip
    if out["exit_code"] != 0:
        why = "; ".join(out["reasons"])
        return Failed(
            message=f"rollout of v{out['version']} {out['status']}: {why}"[:1000], data=out
        )
    return out


class _Plan(NamedTuple):
    job: JobConfig
    client: Any
    ledger: Any
    uri: str
    version: str
    aliases: dict[str, str]
    traffic: Any
    first: int
    approver: str | None


def _plan(model: str, version: str, config_path: str, *, state_dir: str,
          ledger_url: str | None, approved_by: str | None) -> _Plan:  # fmt: skip
    """Everything checked before any alias moves: the config, the model and version, a champion,
    the step to start (or resume) at, the approval. Raises BadInputError naming the problem."""
    from registry.promotion import resolve_version
    from registry.tracking import open_registry

    job = load_config(config_path)
    if not job.data.frequency:
        raise BadInputError(
            "rollout needs data.frequency in the config (to join actuals to forecasts)"
        )
    client, ledger, uri = open_registry(state_dir, ledger_url)
    try:
        version = str(resolve_version(client, model, version).version)
        aliases, traffic, _ = ledger.serving_state(model)
        if aliases.get("champion") is None:
            raise BadInputError(f"model {model!r} has no champion to roll out against")
        steps = job.rollout.steps
        first = _start_index(
            steps, aliases, version, traffic[1] if traffic and traffic[0] == version else None
        )
        approver = (approved_by or "").strip() or None
        champion_ahead = any(s.step == "champion" for s in steps[first:])
        if job.promotion.require_approval and champion_ahead and not approver:
            raise BadInputError(
                f"promotion.require_approval is set for {model!r}: the rollout's champion step "
                "needs --approved-by NAME (checked before any alias moves)"
            )
    except BaseException:
        ledger.dispose()
        raise
    return _Plan(job, client, ledger, uri, version, aliases, traffic, first, approver)


def check_inputs(model: str, version: str, config_path: str, *, state_dir: str,
                 ledger_url: str | None, approved_by: str | None) -> None:  # fmt: skip
    """The CLI's check before it starts the flow: bad input exits 2 with one line, without a flow
    run (and without Prefect's traceback of the exception)."""
    _plan(model, version, config_path, state_dir=state_dir, ledger_url=ledger_url,
          approved_by=approved_by).ledger.dispose()  # fmt: skip


def _rollout(
    model: str,
    version: str,
    config_path: str,
    *,
    state_dir: str,
    ledger_url: str | None,
    predlog_url: str | None,
    force: bool,
    reason: str | None,
    approved_by: str | None = None,
) -> dict[str, Any]:
    from components.errors import ConflictError
    from registry.promote import promote
    from registry.promotion import commit_move, rollback
    from registry.traffic import abort_candidate, record_step, remove_alias, set_canary_share
    from serving.analysis import warm_up
    from serving.predlog import PredictionLog, resolve_predlog_url

    job, client, ledger, uri, version, aliases, _traffic, first, approver = _plan(
        model, version, config_path, state_dir=state_dir, ledger_url=ledger_url,
        approved_by=approved_by)  # fmt: skip
    rcfg = job.rollout
    freq = job.data.frequency
    assert freq is not None  # checked by _plan
    plog = PredictionLog(resolve_predlog_url(predlog_url, state_dir, job.serving.predlog_url))
    champion = aliases["champion"]
    steps = rcfg.steps
    trail: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    if champion == version:  # interrupted in the bake: judge against the previous champion,
        champion = aliases["previous-champion"]  # its latency from before the move
        moved = _champion_since(ledger.history(model), version) or started
        started = moved - timedelta(hours=1)

    def done(status: str, code: int, reasons: list[str]) -> dict[str, Any]:
        after = ledger.aliases(model).get("champion")
        plog.close()
        ledger.dispose()
        return {"model": model, "version": version, "status": status, "exit_code": code,
                "champion_before": champion, "champion_after": after,
                "reasons": reasons, "steps": trail, "tracking_uri": uri}  # fmt: skip

    warm_up(plog, model, freq)  # before any alias moves: the first analysis is not a cold one
    if first:
        log.info(
            "resuming the rollout of v%s at step %d (%s) from the ledger",
            version,
            first + 1,
            steps[first].step,
        )
    for i, st in enumerate(steps[first:], start=first):
        label = f"{st.step}" + (f" {st.share:.0%}" if st.share else "")
        log.info("step %d/%d: %s", i + 1, len(steps), label)
        if st.step in ("shadow", "canary"):
            state = ledger.aliases(model)
            if state.get(st.step) != version:
                out = promote(client, ledger, model, ref=version, to=st.step, trigger="rollout",
                              force=force, reason=reason)  # fmt: skip
                if out.exit_code != 0:
                    trail.append({"step": label, "outcome": out.status, "reasons": out.reasons})
                    return done(out.status, out.exit_code, out.reasons)
            if st.step == "canary":
                set_canary_share(ledger, model, version=version, share=float(st.share or 0),
                                 reasons=[f"rollout step {i + 1}: {label}"])  # fmt: skip
        if st.step == "champion":
            evidence = {"rollout_steps": trail}
            try:
                out = commit_move(client, ledger, model, version=version, to="champion",
                                  expected_champion=champion, gate=evidence, trigger="rollout",
                                  forced=force, reasons=[f"online rollout passed: {', '.join(s['step'] for s in trail)}"],
                                  approved_by=approver)  # fmt: skip
            except ConflictError as exc:
                trail.append({"step": label, "outcome": "conflict", "reasons": [str(exc)]})
                abort_candidate(
                    client, ledger, model, version=version, reasons=[str(exc)], evidence={}
                )
                return done("conflict", 4, [str(exc)])
            trail.append({"step": label, "outcome": "committed", "reasons": out.reasons})
            continue
        if st.step == "bake" and ledger.aliases(model).get("shadow") != champion:
            commit_move(client, ledger, model, version=champion, to="shadow", expected_champion=version,
                            gate=None, trigger="rollout", forced=False, approved_by=None,
                            reasons=[f"bake: previous champion v{champion} shadows v{version} for comparison"])  # fmt: skip
        since = datetime.now(UTC) - timedelta(seconds=1)
        cand, base = version, champion
        deadline = time.monotonic() + st.max_minutes * 60
        inconclusive = 0
        next_at = time.monotonic()
        while True:
            # a fixed schedule: an analysis every interval, however long the analysis takes
            next_at += rcfg.analysis_interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
            res = analyse_task(plog, model, st.step, cand, base, since, freq, job, st.min_labelled,
                               started)  # fmt: skip
            log.info("%s: %s — %s", label, res.outcome, "; ".join(res.reasons))
            timed_out = time.monotonic() >= deadline
            if st.step == "bake":
                if res.outcome == "failed":
                    reasons = [f"bake breach: {r}" for r in res.reasons]
                    record_step(ledger, model, version=version, outcome="failed", reasons=reasons,
                                evidence=res.evidence, trigger="automatic-rollback")  # fmt: skip
                    try:
                        rb = rollback(client, ledger, model, to=champion, reason="; ".join(reasons),
                                      force=False, trigger="automatic-rollback")  # fmt: skip
                    except BadInputError:  # it served as champion after a forced promotion
                        rb = rollback(client, ledger, model, to=champion, reason="; ".join(reasons),
                                      force=True, trigger="automatic-rollback")  # fmt: skip
                    remove_alias(client, ledger, model, alias="shadow", version=champion,
                                 reasons=["bake ended: rolled back"], trigger="automatic-rollback")  # fmt: skip
                    trail.append(
                        {
                            "step": label,
                            "outcome": "rolled-back",
                            "reasons": reasons,
                            "evidence": res.evidence,
                        }
                    )
                    return done(
                        "rolled-back", 1, reasons + [f"champion back to v{rb.champion_after}"]
                    )
                if timed_out:
                    reasons = [
                        f"bake passed: no breach in {st.max_minutes:g} min ({res.outcome} at the end)"
                    ]
                    record_step(
                        ledger,
                        model,
                        version=version,
                        outcome="passed",
                        reasons=reasons,
                        evidence=res.evidence,
                    )
                    remove_alias(
                        client,
                        ledger,
                        model,
                        alias="shadow",
                        version=champion,
                        reasons=["bake ended"],
                    )
                    trail.append(
                        {
                            "step": label,
                            "outcome": "passed",
                            "reasons": reasons,
                            "evidence": res.evidence,
                        }
                    )
                    break
                continue
            if res.outcome == "passed":
                record_step(
                    ledger,
                    model,
                    version=version,
                    outcome="passed",
                    reasons=res.reasons,
                    evidence=res.evidence,
                )
                trail.append(
                    {
                        "step": label,
                        "outcome": "passed",
                        "reasons": res.reasons,
                        "evidence": res.evidence,
                    }
                )
                break
            fail_reasons: list[str] = []
            if res.outcome == "failed":
                fail_reasons = res.reasons
            elif res.outcome == "inconclusive":
                inconclusive += 1
                record_step(ledger, model, version=version, outcome="inconclusive", reasons=res.reasons,
                            evidence=res.evidence)  # fmt: skip
                if inconclusive >= rcfg.max_inconclusive:
                    fail_reasons = res.reasons + [
                        f"inconclusive {inconclusive} times (rollout.max_inconclusive)"
                    ]
            if not fail_reasons and timed_out:
                fail_reasons = res.reasons + [
                    f"step timed out after {st.max_minutes:g} min; a timeout never promotes"
                ]
            if fail_reasons:
                removed = abort_candidate(client, ledger, model, version=version, reasons=fail_reasons,
                                          evidence=res.evidence)  # fmt: skip
                trail.append(
                    {
                        "step": label,
                        "outcome": "failed",
                        "reasons": fail_reasons,
                        "evidence": res.evidence,
                    }
                )
                return done(
                    "aborted", 1, fail_reasons + [f"removed: {', '.join(removed) or 'nothing'}"]
                )
    return done("promoted", 0, [f"v{version} rolled out: {', '.join(s['step'] for s in trail)}"])
