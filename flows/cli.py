"""The ``seqops`` command line. Heavy libraries are imported inside commands so --help is fast.

Exit codes (ARCHITECTURE.md): 0 done/passed, 1 gate rejected, 2 bad input (nothing changed),
3 run failed (nothing registered), 4 conflict.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="seqops",
    help="MLOps lifecycle for LSTM forecasters: validate data, train, evaluate against baselines and "
    "the champion, report drift, register in MLflow and gate promotions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and check job configs.", no_args_is_help=True)
data_app = typer.Typer(help="Data utilities.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout; logs go to stderr.")
]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it between invocations)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _setup_logging(verbose: bool = False) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    root = logging.getLogger()
    if not any(getattr(h, "_seqops", False) for h in root.handlers):
        h = _StderrHandler()
        h.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        h._seqops = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in (
        "great_expectations",
        "absl",
        "tensorflow",
        "h5py",
        "matplotlib",
        "urllib3",
        "alembic",
        "httpx",
        "mlflow.store",
        "PIL",
        "numexpr",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=_jsonable) + "\n")
    sys.stdout.flush()


def _fail(exc: Exception, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    from components.errors import SeqopsError

    code = exc.exit_code if isinstance(exc, SeqopsError) else 3
    kind = exc.kind if isinstance(exc, SeqopsError) else "run_failed"
    if as_json:
        _emit({"status": kind, "exit_code": code, "error": str(exc), **(extra or {})})
    typer.echo(f"error ({kind}, exit {code}): {exc}", err=True)
    for line in getattr(exc, "failures", []) or []:
        typer.echo(f"  - {line}", err=True)
    for name, path in (getattr(exc, "report_paths", {}) or {}).items():
        typer.echo(f"  {name}: {path}", err=True)
    raise typer.Exit(code)


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of a job config."""
    from components.config import json_schema

    _emit(json_schema())


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="YAML config to validate.")],
    as_json: JsonFlag = False,
) -> None:
    """Validate a config file (exit 2 naming every bad or unknown key)."""
    from components.config import load_config
    from components.errors import ConfigError

    try:
        job = load_config(file)
    except ConfigError as exc:
        _fail(exc, as_json)
        return
    resolved = job.model_dump(mode="json")
    if as_json:
        _emit(
            {"status": "ok", "exit_code": 0, "config": resolved, "config_hash": job.config_hash()}
        )
    else:
        typer.echo(
            f"{file}: OK (model {job.name!r}, lookback {job.window.lookback}, horizon {job.window.horizon}, "
            f"season length {job.season_length()}, config hash {job.config_hash()})"
        )


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.csv or .parquet).")],
    series: Annotated[int, typer.Option(help="Number of series.")] = 4,
    length: Annotated[int, typer.Option(help="Rows per series.")] = 400,
    freq: Annotated[str, typer.Option(help="Pandas frequency alias.")] = "D",
    season_length: Annotated[int, typer.Option(help="Seasonal period in rows.")] = 7,
    trend: Annotated[float, typer.Option(help="Trend per row.")] = 0.02,
    noise: Annotated[
        float, typer.Option(help="Noise, as a fraction of the seasonal amplitude.")
    ] = 0.3,
    drift_start: Annotated[
        int | None, typer.Option(help="Row from which drift is injected (none by default).")
    ] = None,
    drift_shift: Annotated[float, typer.Option(help="Level shift, in seasonal amplitudes.")] = 3.0,
    drift_scale: Annotated[float, typer.Option(help="Noise multiplier after drift_start.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Write a seeded synthetic panel (series_id, timestamp, value, temperature)."""
    from components.synth import synth_panel

    if series < 1 or length < 2:
        typer.echo("error: --series must be >= 1 and --length >= 2", err=True)
        raise typer.Exit(2)
    df = synth_panel(
        n_series=series,
        length=length,
        freq=freq,
        season_length=season_length,
        trend=trend,
        noise=noise,
        drift_start=drift_start,
        drift_shift=drift_shift,
        drift_scale=drift_scale,
        seed=seed,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    if as_json:
        _emit({"status": "ok", "exit_code": 0, "path": str(out), "rows": len(df), "series": series})
    else:
        typer.echo(f"wrote {len(df)} rows ({series} series x {length}) to {out}")


@app.command("retrain")
def retrain(
    config: Annotated[Path, typer.Option("--config", "-c", help="Job config (YAML).")],
    as_json: JsonFlag = False,
    trigger: Annotated[
        str, typer.Option(help="Recorded trigger: manual, schedule, ci, drift.")
    ] = "manual",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Validate, train, evaluate, report drift and register a new version (Prefect flow `retrain`).

    Exit 0: registered and `challenger` set; 1: registered but the gate rejected it; 2: bad config or
    data, nothing registered; 3: the run failed (e.g. training diverged), nothing registered.
    """
    from components.config import load_config
    from components.errors import ConfigError, SeqopsError

    try:
        job = load_config(config)
    except ConfigError as exc:
        _fail(exc, as_json)
        return
    # Importing Prefect reconfigures logging (dictConfig drops existing handlers): set ours up after.
    from flows.retrain import error_outcome, retrain_flow

    _setup_logging(verbose)

    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON object
            outcome = retrain_flow(str(config), trigger=trigger)
    except SeqopsError as exc:
        _fail(
            exc,
            as_json,
            {
                k: v
                for k, v in error_outcome(exc, job.name).items()
                if k not in ("status", "exit_code", "error")
            },
        )
        return
    except Exception as exc:  # infrastructure or a bug: the run failed, nothing promoted
        logging.getLogger("seqops").exception("retrain failed")
        _fail(exc, as_json, {"model": job.name, "version": None})
        return
    if as_json:
        _emit(outcome)
    else:
        m = outcome["metrics"]
        typer.echo(
            f"{outcome['model']} v{outcome['version']}: {outcome['status']} "
            f"(MASE model {m['model']['mase']:.3f}, seasonal naive {m['seasonal_naive']['mase']:.3f}, "
            f"naive {m['naive']['mase']:.3f}); aliases: {', '.join(outcome['aliases']) or 'none'}"
        )
        for r in outcome["gate"]["reasons"]:
            typer.echo(f"  - {r}")
        typer.echo(f"  reports: {outcome['reports']['dir']}")
    raise typer.Exit(outcome["exit_code"])


@app.command("ui")
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    state_dir: Annotated[
        Path, typer.Option(help="seqops state directory (embedded store).")
    ] = Path(".seqops"),
) -> None:
    """Start MLflow's UI on the same store `retrain` writes to."""
    from registry.tracking import default_tracking_uri

    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(state_dir)
    if uri.startswith(("http://", "https://")):
        typer.echo(f"MLFLOW_TRACKING_URI points at a server already: open {uri}", err=True)
        raise typer.Exit(0)
    artifacts = (state_dir / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        artifacts.as_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri})", err=True)
    os.execv(sys.executable, cmd)


def main() -> None:  # pragma: no cover
    app()
