"""Answering paused ``promote`` flow runs through the Prefect API (``seqops approve``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from components.errors import BadInputError


def paused_promotions() -> list[dict[str, Any]]:
    """The ``promote`` flow runs now paused for approval, oldest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["promote"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            sort=FlowRunSort.START_TIME_ASC,
            limit=200,
        )
    out = []
    for r in runs:
        p = r.parameters or {}
        out.append(
            {
                "flow_run_id": str(r.id),
                "name": r.name,
                "model": p.get("model"),
                "version": p.get("version"),
                "to": p.get("to", "champion"),
                "since": r.state.timestamp.isoformat() if r.state else None,
            }
        )
    return sorted(out, key=lambda r: r["since"] or "")


def answer(flow_run: str, *, approved_by: str, approve: bool, comment: str) -> dict[str, Any]:
    """Resume a paused promotion with the typed ``Approval`` input."""
    from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    try:
        run_id = UUID(flow_run)
    except ValueError:
        raise BadInputError(f"{flow_run!r} is not a flow run id (a UUID)") from None
    try:
        resume_flow_run(
            run_id,
            run_input={"approve": approve, "approved_by": approved_by.strip(), "comment": comment},
        )
    except ObjectNotFound:
        raise BadInputError(f"no flow run {flow_run}") from None
    except NotPausedError:
        raise BadInputError(f"flow run {flow_run} is not paused for approval") from None
    except FlowPauseTimeout:
        raise BadInputError(
            f"flow run {flow_run} timed out waiting and can no longer be approved"
        ) from None
    return {"flow_run_id": flow_run, "approved": approve, "approved_by": approved_by}
