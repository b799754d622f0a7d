"""The ``promote`` Prefect flow: gate the version, pause for a person's typed approval when the
config requires it, then commit by compare-and-swap (so a champion that moved while the flow was
paused makes it a conflict, never a move on stale evidence)."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.input import RunInput
from pydantic import Field

log = logging.getLogger("seqops.promote")


class Approval(RunInput):
    """The form a person fills in (Prefect UI "Resume", or ``seqops approve``)."""

    approve: bool = Field(True, description="Approve this champion promotion?")
    approved_by: str = Field(..., min_length=1, description="Your name, recorded in the ledger.")
    comment: str = Field("", description="Why (recorded in the ledger).")


@flow(name="promote", validate_parameters=False)
def promote_flow(
    model: str,
    version: str,
    to: str = "champion",
    *,
    trigger: str = "manual",
    force: bool = False,
    reason: str | None = None,
    approved_by: str | None = None,
    config_path: str | None = None,
    state_dir: str = ".seqops",
    ledger_url: str | None = None,
    approval_timeout_s: int = 3600,
    poll_interval_s: int = 5,
) -> dict[str, Any]:
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    from flows.summary import promotion_markdown
    from registry.promote import ApprovalAnswer, promote
    from registry.promotion import Outcome
    from registry.tracking import open_registry

    client, ledger, uri = open_registry(state_dir, ledger_url)
    ctx = FlowRunContext.get()
    run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None

    def ask(pending: Outcome) -> ApprovalAnswer:
        md = promotion_markdown(pending.to_dict(), uri)
        create_markdown_artifact(
            md, description=f"{model} v{pending.version} waits for approval to become champion"
        )
        log.warning(
            "%s v%s passed its gate and waits for approval (timeout %d s): "
            "seqops approve %s --approved-by NAME [--decline], or Resume in the Prefect UI",
            model,
            pending.version,
            approval_timeout_s,
            run_id,
        )
        try:
            answer = pause_flow_run(
                wait_for_input=Approval.with_initial_data(description=md, approve=True),
                timeout=approval_timeout_s,
                poll_interval=poll_interval_s,
            )
        except FlowPauseTimeout:
            return ApprovalAnswer(False, None, f"no answer within {approval_timeout_s} s")
        assert answer is not None
        return ApprovalAnswer(answer.approve, answer.approved_by.strip(), answer.comment.strip())

    try:
        outcome = promote(
            client,
            ledger,
            model,
            ref=version,
            to=to,
            trigger=trigger,
            force=force,
            reason=reason,
            approved_by=approved_by,
            config_path=config_path,
            ask_approval=ask,
        )
    finally:
        ledger.dispose()
    result = {**outcome.to_dict(), "tracking_uri": uri, "flow_run_id": run_id}
    create_markdown_artifact(
        promotion_markdown(result, uri), description=f"{model} v{outcome.version}: {outcome.status}"
    )
    return result
