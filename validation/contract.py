"""The data contract: Great Expectations (Core 1.x) expectations derived from the job config.

Checks, in order: required columns exist and the table has rows; then per row: timestamps
parse, are strictly increasing within each series (duplicates and out-of-order rows reported
separately), gaps stay within ``validation.max_gap_steps``; target and covariates are numeric,
finite, and missing only as ``missing.policy`` allows; declared ranges hold; and per series:
enough rows for lookback + horizon in every split.

Derived helper columns (prefixed ``__``) carry the offending *original* values, so the plain-words
report shows what a person must fix rather than an internal flag.
"""

from __future__ import annotations

import html
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.config import JobConfig
from components.windows import min_rows_required, segment_bounds

log = logging.getLogger(__name__)


@dataclass
class Failure:
    column: str
    check: str
    expectation: str
    unexpected_count: int
    examples: list[Any]

    def plain(self) -> str:
        ex = ", ".join(repr(e) for e in self.examples[:5])
        count = f"{self.unexpected_count} offending value(s)" if self.unexpected_count else "failed"
        return f"[{self.column}] {self.check} ({self.expectation}): {count}" + (
            f"; e.g. {ex}" if ex else ""
        )


@dataclass
class ContractResult:
    success: bool
    n_rows: int
    n_series: int
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    json_path: str | None = None
    html_path: str | None = None

    def plain_lines(self) -> list[str]:
        return [f.plain() for f in self.failures]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failures"] = [asdict(f) | {"message": f.plain()} for f in self.failures]
        return d


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def _run_suite(frame: pd.DataFrame, expectations: list[Any], name: str) -> list[Any]:
    gx, _ = _gx()
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # pragma: no cover - older/newer GX without the knob
        pass
    asset = ctx.data_sources.add_pandas(f"seqops-{name}").add_dataframe_asset(name)
    batch_def = asset.add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"seqops-{name}"))
    for e in expectations:
        suite.add_expectation(e)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"v-{name}", data=batch_def, suite=suite)
    )
    res = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"})
    return list(res.results)


def _flag(values: pd.Series, mask: pd.Series | np.ndarray) -> pd.Series:
    """Original values where ``mask`` is true, None elsewhere (as an object column)."""
    out = pd.Series([None] * len(values), index=values.index, dtype="object")
    m = np.asarray(mask, dtype=bool)
    if m.any():
        out[m] = values[m].astype(str).to_numpy()
    return out


def _expectations_for_rows(job: JobConfig, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    _, gxe = _gx()
    d = job.data
    exps: list[Any] = []
    derived = pd.DataFrame(index=frame.index)

    def meta(column: str, check: str) -> dict[str, str]:
        return {"column": column, "check": check}

    raw_ts = frame[d.timestamp]
    ts = (
        pd.to_datetime(raw_ts, errors="coerce", format="mixed")
        if raw_ts.dtype == object
        else pd.to_datetime(raw_ts, errors="coerce")
    )
    derived["__ts_unparseable"] = _flag(raw_ts, ts.isna())
    exps.append(
        gxe.ExpectColumnValuesToBeNull(
            column="__ts_unparseable", meta=meta(d.timestamp, "timestamps must parse as dates")
        )
    )

    key = frame[d.series_id].astype(str) if d.series_id else pd.Series("all", index=frame.index)
    ns = ts.astype("int64", copy=False).where(ts.notna())
    step = ns.groupby(key).diff()
    derived["__ts_duplicate"] = _flag(raw_ts, step == 0)
    exps.append(
        gxe.ExpectColumnValuesToBeNull(
            column="__ts_duplicate",
            meta=meta(d.timestamp, "no duplicate timestamps within a series"),
        )
    )
    derived["__ts_out_of_order"] = _flag(raw_ts, step < 0)
    exps.append(
        gxe.ExpectColumnValuesToBeNull(
            column="__ts_out_of_order",
            meta=meta(d.timestamp, "timestamps strictly increasing within a series"),
        )
    )
    pos = step.where(step > 0)
    median = pos.groupby(key).transform("median")
    ratio = pos / median
    limit = job.validation.max_gap_steps + 0.5  # half a step of slack for calendar steps (months)
    too_big = (ratio > limit).fillna(False)
    gap_text = raw_ts.astype(str) + " (gap of " + ratio.round(1).astype(str) + " steps)"
    derived["__ts_gap"] = _flag(gap_text, too_big)
    exps.append(
        gxe.ExpectColumnValuesToBeNull(
            column="__ts_gap",
            meta=meta(
                d.timestamp,
                f"gaps at most {job.validation.max_gap_steps:g} median steps (validation.max_gap_steps)",
            ),
        )
    )

    allowed_missing = 0.0 if job.missing.policy == "fail" else job.missing.max_fraction
    for col in [d.target, *d.covariates]:
        raw = frame[col]
        num = (
            pd.to_numeric(raw, errors="coerce")
            if raw.dtype == object
            else raw.astype("float64", copy=False)
        )
        derived[f"__{col}_nonnumeric"] = _flag(raw, num.isna() & raw.notna())
        exps.append(
            gxe.ExpectColumnValuesToBeNull(
                column=f"__{col}_nonnumeric", meta=meta(col, "values must be numeric")
            )
        )
        derived[f"__{col}_num"] = num
        exps.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=f"__{col}_num",
                min_value=-np.finfo(np.float64).max,
                max_value=np.finfo(np.float64).max,
                meta=meta(col, "values must be finite (no inf)"),
            )
        )
        exps.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=col,
                mostly=max(1.0 - allowed_missing, 1e-9) if allowed_missing else 1.0,
                meta=meta(
                    col,
                    f"missing values allowed: {allowed_missing:.0%} (missing.policy={job.missing.policy})",
                ),
            )
        )
    for col, (lo, hi) in job.validation.ranges.items():
        src = f"__{col}_num" if f"__{col}_num" in derived else col
        exps.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=src,
                min_value=lo,
                max_value=hi,
                meta=meta(col, f"values within the declared range [{lo:g}, {hi:g}]"),
            )
        )
    return derived, exps


def _series_expectations(job: JobConfig, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    _, gxe = _gx()
    d = job.data
    counts = (
        frame.groupby(frame[d.series_id].astype(str)).size()
        if d.series_id
        else pd.Series({"(single series)": len(frame)})
    )
    need_rows = min_rows_required(job.window, job.split)
    need = job.window.lookback + job.window.horizon
    problems: list[str | None] = []
    for sid, n in counts.items():
        if n >= need_rows:
            problems.append(None)
            continue
        b = segment_bounds(int(n), job.split)
        short = [
            f"{seg} split {stop - start} rows"
            for seg, (start, stop) in b.items()
            if stop - start < need
        ]
        extra = ""
        t0, t1 = b["test"]
        if job.window.horizon > t1 - t0:
            extra = f"; horizon {job.window.horizon} is longer than the test split ({t1 - t0} rows)"
        problems.append(
            f"series {sid}: {n} rows < {need_rows} needed ({', '.join(short)} < lookback+horizon {need}{extra})"
        )
    series = pd.DataFrame(
        {"series": counts.index.astype(str), "rows": counts.to_numpy(), "__too_short": problems}
    )
    exps = [
        gxe.ExpectColumnValuesToBeNull(
            column="__too_short",
            meta={
                "column": d.series_id or d.target,
                "check": "enough rows per series for lookback + horizon in every split",
            },
        )
    ]
    return series, exps


def _failures(results: list[Any]) -> list[Failure]:
    out = []
    for r in results:
        if r.success:
            continue
        conf = r.expectation_config
        meta = conf.meta or {}
        res = r.result or {}
        examples = [e for e in res.get("partial_unexpected_list", []) if e is not None][:5]
        if r.exception_info and r.exception_info.get("raised_exception"):
            examples = [str(r.exception_info.get("exception_message"))[:200]]
        out.append(
            Failure(
                column=str(meta.get("column", conf.kwargs.get("column"))),
                check=str(meta.get("check", conf.type)),
                expectation=str(conf.type),
                unexpected_count=int(res.get("unexpected_count") or 0),
                examples=[e.item() if isinstance(e, np.generic) else e for e in examples],
            )
        )
    return out


def check_contract(
    job: JobConfig, frame: pd.DataFrame, *, report_dir: Path | None = None
) -> ContractResult:
    """Run the contract; write JSON and HTML reports to ``report_dir`` when given."""
    _, gxe = _gx()
    t0 = time.perf_counter()
    d = job.data
    required = [d.timestamp, d.target, *d.covariates] + ([d.series_id] if d.series_id else [])
    col_exps = [
        gxe.ExpectColumnToExist(column=c, meta={"column": c, "check": "required column present"})
        for c in required
    ]
    col_exps.append(
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, meta={"column": "(table)", "check": "at least one row"}
        )
    )
    results = _run_suite(frame, col_exps, "columns")
    evaluated = len(results)
    failures = _failures(results)
    n_series = int(frame[d.series_id].nunique()) if d.series_id and d.series_id in frame else 1
    if not failures:
        derived, row_exps = _expectations_for_rows(job, frame)
        row_results = _run_suite(pd.concat([frame, derived], axis=1), row_exps, "rows")
        series, s_exps = _series_expectations(job, frame)
        s_results = _run_suite(series, s_exps, "series")
        evaluated += len(row_results) + len(s_results)
        failures = _failures(row_results) + _failures(s_results)
    result = ContractResult(
        success=not failures,
        n_rows=int(len(frame)),
        n_series=n_series,
        evaluated=evaluated,
        failures=failures,
        seconds=time.perf_counter() - t0,
    )
    if report_dir is not None:
        write_reports(result, report_dir, title=f"Data contract: {job.name} ({d.path})")
    log.info(
        "data contract %s: %d expectations, %d failed, %d rows, %d series, %.1fs",
        "passed" if result.success else "FAILED",
        evaluated,
        len(failures),
        result.n_rows,
        n_series,
        result.seconds,
    )
    return result


def write_reports(result: ContractResult, report_dir: Path, *, title: str) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    js = report_dir / "validation.json"
    ht = report_dir / "validation.html"
    result.json_path, result.html_path = str(js), str(ht)
    js.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    rows = "".join(
        f"<tr><td>{html.escape(f.column)}</td><td>{html.escape(f.check)}</td><td><code>{html.escape(f.expectation)}</code></td>"
        f"<td>{f.unexpected_count}</td><td>{html.escape(', '.join(map(repr, f.examples)))}</td></tr>"
        for f in result.failures
    )
    status = "PASSED" if result.success else "FAILED"
    color = "#1a7f37" if result.success else "#cf222e"
    ht.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p style='color:{color};font-weight:bold'>{status}</p>"
        f"<p>{result.evaluated} expectations evaluated (Great Expectations) on {result.n_rows} rows, "
        f"{result.n_series} series, in {result.seconds:.2f}s.</p>"
        + (
            f"<table><tr><th>column</th><th>check</th><th>expectation</th><th>offending</th><th>examples</th></tr>{rows}</table>"
            if result.failures
            else "<p>All expectations passed.</p>"
        )
        + "</body></html>",
        encoding="utf-8",
    )
