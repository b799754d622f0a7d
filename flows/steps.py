"""Plain step functions the retrain flow wraps as tasks (testable without Prefect)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import JobConfig
from components.data import Panel, frame_digest, load_frame, to_panel
from components.drift import DriftSummary, run_drift
from components.errors import DataContractError
from components.evaluation import (
    EvalResult,
    evaluate,
    fold_windows,
    series_first_rows,
    summarize_folds,
)
from components.metrics import mase_scales, metric_table
from components.plots import forecast_plot, horizon_error_plot
from components.windows import Segments, WindowSet, build_windows, fit_scaler, split_panel

log = logging.getLogger(__name__)


def warm_imports() -> float:
    """Import the heavy libraries once, up front, so step timings measure the steps."""
    t0 = time.perf_counter()
    import evidently  # noqa: F401
    import great_expectations  # noqa: F401
    import keras  # noqa: F401
    import mlflow  # noqa: F401
    import tensorflow  # noqa: F401

    return time.perf_counter() - t0


def load_and_validate(job: JobConfig, base_dir: Path | None, report_dir: Path):
    from validation.contract import check_contract

    frame = load_frame(job.data, base_dir)
    result = check_contract(job, frame, report_dir=report_dir)
    if not result.success:
        raise DataContractError(
            f"data contract failed for {job.data.path}: {len(result.failures)} expectation(s) failed",
            failures=result.plain_lines(),
            report_paths={
                "validation_html": str(result.html_path),
                "validation_json": str(result.json_path),
            },
        )
    return frame, frame_digest(frame), result


@dataclass
class Prepared:
    panel: Panel
    segments: Segments
    train: WindowSet
    val: WindowSet
    test: WindowSet
    mean: np.ndarray
    std: np.ndarray
    scales: np.ndarray
    first_rows: np.ndarray


def prepare(job: JobConfig, frame: pd.DataFrame) -> Prepared:
    panel = to_panel(frame, job.data, job.missing)
    segs = split_panel(panel, job.window, job.split)
    mean, std = fit_scaler(panel, segs)
    wins = {s: build_windows(panel, segs, s, job.window) for s in ("train", "val", "test")}
    scales = mase_scales(panel.values, [b["train"] for b in segs.bounds])
    first = series_first_rows([len(v) for v in panel.values])
    log.info(
        "windows: %d train, %d val, %d test over %d series (lookback %d, horizon %d)",
        len(wins["train"]),
        len(wins["val"]),
        len(wins["test"]),
        len(panel.ids),
        job.window.lookback,
        job.window.horizon,
    )
    return Prepared(panel, segs, wins["train"], wins["val"], wins["test"], mean, std, scales, first)


def keras_predictor(model):
    """A compiled, fixed-signature inference function for a Keras model."""
    import tensorflow as tf

    _, L, F = model.input_shape
    fn = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, L, F], tf.float32)],
    )

    def predict(x: np.ndarray) -> np.ndarray:
        out = [fn(tf.constant(x[i : i + 4096])).numpy() for i in range(0, len(x), 4096)]
        return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)

    return predict


def evaluate_all(
    job: JobConfig, prep: Prepared, predict, plots_dir: Path
) -> tuple[EvalResult, dict[str, float]]:
    season = job.season_length()
    res = evaluate(
        prep.test, predict, scales=prep.scales, first_rows=prep.first_rows, season_length=season
    )
    folds = []
    if job.evaluation.backtest_folds:
        bounds = [
            (int(f) + b["test"][0], int(f) + b["test"][1])
            for f, b in zip(prep.first_rows, prep.segments.bounds, strict=True)
        ]
        for k, (starts, owner) in enumerate(
            fold_windows(prep.test, bounds, job.evaluation.backtest_folds), start=1
        ):
            if len(starts) == 0:
                continue
            r = evaluate(
                prep.test,
                predict,
                scales=prep.scales,
                first_rows=prep.first_rows,
                season_length=season,
                starts=starts,
                series_index=owner,
            )
            folds.append(
                {
                    "fold": k,
                    "n_windows": int(len(starts)),
                    **{
                        n: {m: t[m] for m in ("mae", "rmse", "smape", "mase")}
                        for n, t in r.metrics.items()
                    },
                }
            )
    res.backtest = folds
    plots_dir.mkdir(parents=True, exist_ok=True)
    _plots(job, prep, res, plots_dir)
    return res, summarize_folds(folds)


def _plots(job: JobConfig, prep: Prepared, res: EvalResult, out: Path) -> None:
    H = job.window.horizon
    owner = prep.test.series_index
    idx0 = np.flatnonzero(owner == 0)[::H]
    first = int(prep.first_rows[0])
    start, stop = prep.segments.bounds[0]["test"]
    ts = prep.panel.timestamps[0][start:stop]
    actual = prep.panel.values[0][start:stop, 0]
    origins_local = prep.test.origins()[idx0] - first - start
    forecast_plot(
        out / "forecast_vs_actual.png",
        timestamps=ts,
        actual=actual,
        origins_local=origins_local,
        forecasts={k: res.forecasts[k][idx0] for k in ("model", "seasonal_naive")},
        title=f"{job.name}: test split, series {prep.panel.ids[0]} (forecasts every {H} steps)",
    )
    horizon_error_plot(
        out / "error_by_horizon.png",
        {k: v["per_horizon"][job.gate.metric] for k, v in res.metrics.items()},  # type: ignore[index]
        metric=job.gate.metric,
        title=f"{job.name}: test {job.gate.metric.upper()} by horizon step",
    )


def compare_champion(job: JobConfig, prep: Prepared, res: EvalResult, champion):
    """Score the champion on the candidate's test windows (same origins, its own lookback).

    Returns (champion_table, candidate_table_on_same_windows, problem).
    """
    if champion.n_features != prep.panel.n_features:
        return (
            None,
            None,
            f"it takes {champion.n_features} features, the candidate {prep.panel.n_features}",
        )
    if champion.horizon != job.window.horizon:
        return (
            None,
            None,
            f"its horizon is {champion.horizon}, the candidate's {job.window.horizon}",
        )
    origins = prep.test.origins()
    starts_c = origins - champion.lookback + 1
    ok = starts_c >= prep.first_rows[prep.test.series_index]
    if not ok.any():
        return None, None, f"no test window has the {champion.lookback} steps of history it needs"
    xc = prep.test.data[starts_c[ok][:, None] + np.arange(champion.lookback)]
    y = res.y_true[ok]
    ch_pred = np.asarray(champion.predict(xc), dtype=np.float32)
    champ = metric_table(y, ch_pred, res.scale[ok])
    cand = metric_table(y, res.forecasts["model"][ok], res.scale[ok])
    return champ, cand, None


def drift_frame(job: JobConfig, panel: Panel, ranges: list[tuple[int, int]]) -> pd.DataFrame:
    """Drift features (target, its one-step change, covariates) over the given row ranges."""
    parts = []
    names = panel.feature_names
    for vals, (a, b) in zip(panel.values, ranges, strict=True):
        seg = vals[a:b].astype(np.float64)
        part = pd.DataFrame(seg, columns=names)
        part.insert(1, f"{names[0]}_diff", np.concatenate([[np.nan], np.diff(seg[:, 0])]))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def drift_step(
    job: JobConfig, prep: Prepared, champion, out_dir: Path
) -> tuple[DriftSummary, pd.DataFrame]:
    train_ranges = [b["train"] for b in prep.segments.bounds]
    current = drift_frame(job, prep.panel, train_ranges)
    if champion is not None and champion.reference is not None:
        reference, label = champion.reference, f"champion v{champion.version} training data"
    else:
        halves_old = [(0, len(v) // 2) for v in prep.panel.values]
        halves_new = [(len(v) // 2, len(v)) for v in prep.panel.values]
        reference = drift_frame(job, prep.panel, halves_old)
        current = drift_frame(job, prep.panel, halves_new)
        label = "older half of the data (no champion yet; current = newer half)"
    summary = run_drift(
        reference,
        current,
        out_dir=out_dir,
        reference_label=label,
        sample_size=job.drift.sample_size,
        drift_share=job.drift.drift_share,
        seed=job.training.seed,
    )
    new_reference = drift_frame(job, prep.panel, train_ranges)
    if len(new_reference) > job.drift.sample_size:
        new_reference = new_reference.sample(
            n=job.drift.sample_size, random_state=job.training.seed
        )
    return summary, new_reference


def write_absolute_config(job: JobConfig, base_dir: Path, dest: Path) -> Path:
    """The job as a standalone YAML file with an absolute data path and state directory, for a
    process that runs elsewhere (a Dask worker, a deployment's flow run in the code directory)."""
    import yaml

    from components.data import resolve_path

    raw = job.model_dump(mode="json")
    raw["data"]["path"] = str(resolve_path(job.data.path, base_dir).resolve())
    if job.monitor.data_path:
        raw["monitor"]["data_path"] = str(resolve_path(job.monitor.data_path, base_dir).resolve())
    raw["state_dir"] = str(Path(job.state_dir).resolve())
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest
