"""Markdown summaries of promotion decisions (``--summary-md`` and ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def promotion_markdown(o: dict[str, Any], tracking_uri: str | None = None) -> str:
    icon = {"promoted": "✅", "rolled-back": "↩️", "no-op": "➖", "dry-run": "🔎"}.get(
        o["status"], "❌"
    )
    lines = [
        f"## {icon} seqops: {o['model']} v{o.get('version')} → {o.get('alias')}: **{o['status']}**",
        "",
    ]
    lines.append(
        f"Champion before: v{o.get('champion_before')} · after: v{o.get('champion_after')}"
        + (" · **forced**" if o.get("forced") else "")
    )
    lines += [""] + [f"- {r}" for r in o.get("reasons", [])]
    ev = (o.get("gate") or {}).get("evidence")
    if ev:
        lines += ["", "| model | MASE | MAE | RMSE | sMAPE |", "|---|---|---|---|---|"]
        for who in ("candidate", "champion", "seasonal_naive", "naive"):
            t = ev.get(who)
            if t:
                lines.append(
                    f"| {who} | {t['mase']:.4f} | {t['mae']:.4f} | {t['rmse']:.4f} | {t['smape']:.3f} |"
                )
        if ev.get("dm"):
            dm = ev["dm"]
            lines.append(
                f"\nDiebold-Mariano on {dm['n']} paired windows: statistic {dm['statistic']:.3f}, p {dm['p_value']:.3g}"
            )
    if tracking_uri and tracking_uri.startswith("http") and o.get("version"):
        lines.append(
            f"\n[MLflow version page]({tracking_uri.rstrip('/')}/#/models/{o['model']}/versions/{o['version']})"
        )
    return "\n".join(lines) + "\n"


def write_summaries(markdown: str, path: str | None) -> list[str]:
    written = []
    for target in (path, os.environ.get("GITHUB_STEP_SUMMARY")):
        if target:
            with Path(target).open("a", encoding="utf-8") as fh:
                fh.write(markdown)
            written.append(target)
    return written
