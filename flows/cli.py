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


# Read by the libraries when they are imported, so set before any command imports them; a value the
# user set wins. Prefect's own 20 s wait for the temporary (ephemeral) API server is too short on a
# busy 2-core machine: `seqops retrain` then failed with "Timed out while attempting to connect to
# ephemeral Prefect API server" (reproduced with two CPU hogs running beside it).
_ENV_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
for _name, _default in _ENV_DEFAULTS.items():
    os.environ.setdefault(_name, _default)


class _Formatter(logging.Formatter):
    """One line per record: Prefect's run loggers named by their run ("Task run 'train-lstm-1a2'"),
    as Prefect's console shows them. A seqops error (bad input, a rejected or conflicting move, a
    diverged fit) is an expected outcome that the command reports in one line: its traceback, which
    Prefect logs from every task and flow it passes through, is left out unless ``--verbose``."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"
        )
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        from components.errors import SeqopsError

        run = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None)
        exc = record.exc_info[1] if record.exc_info else None
        quiet = isinstance(exc, SeqopsError) and not self.verbose
        if run or quiet:
            record = logging.makeLogRecord(record.__dict__)  # other handlers see the original
            if run:
                kind = "Task run" if getattr(record, "task_run_name", None) else "Flow run"
                record.name = f"{kind} {run!r}"
            if quiet:
                record.exc_info = record.exc_text = None
        return super().format(record)


def _setup_logging(verbose: bool = False) -> None:
    root = logging.getLogger()
    # Prefect's console handler on the root logger printed every record a second time (matched by
    # name: short commands never import Prefect)
    for ph in [h for h in root.handlers if type(h).__name__ == "PrefectConsoleHandler"]:
        root.removeHandler(ph)
    ours = [h for h in root.handlers if getattr(h, "_seqops", False)]
    if not ours:
        h = _StderrHandler()
        h._seqops = True  # type: ignore[attr-defined]
        root.addHandler(h)
        ours = [h]
    ours[0].setFormatter(_Formatter(verbose))
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

    A config with `models:` (several models, `defaults:` merged under each) trains them
    concurrently on Prefect's DaskTaskRunner; each is registered and gated on its own.

    Exit 0: registered and `challenger` set; 1: registered but the gate rejected it; 2: bad config or
    data, nothing registered; 3: the run failed (e.g. training diverged), nothing registered.
    """
    from components.config import is_many, load_config
    from components.errors import ConfigError, SeqopsError

    if is_many(config):
        _retrain_many(config, trigger, as_json, verbose)
        return
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


def _retrain_many(config: Path, trigger: str, as_json: bool, verbose: bool) -> None:
    """A config with ``models:``: every model's retrain on the Dask task runner."""
    from components.errors import SeqopsError

    try:
        from flows.many import model_configs

        model_configs(str(config))  # validate every model before starting a cluster
    except SeqopsError as exc:
        _fail(exc, as_json)
        return
    from flows.many import retrain_many

    _setup_logging(verbose)
    with contextlib.redirect_stdout(sys.stderr):
        out = retrain_many(str(config), trigger=trigger)
    if as_json:
        _emit(out)
    else:
        for o in out["models"]:
            v = f" v{o['version']}" if o.get("version") else ""
            typer.echo(f"{o['model']}{v}: {o['status']} (exit {o['exit_code']})")
        for f in out["failed"]:
            typer.echo(f"  - {f['model']}: {f['reason']}")
    raise typer.Exit(out["exit_code"])


StateDir = Annotated[
    Path, typer.Option(help="seqops state directory (embedded MLflow store and ledger).")
]
LedgerUrl = Annotated[
    str | None,
    typer.Option(
        help="Ledger database URL (default: SEQOPS_LEDGER_URL, else SQLite in the state dir)."
    ),
]


def _registry(state_dir: Path, ledger_url: str | None):
    from registry.tracking import open_registry

    return open_registry(state_dir, ledger_url)


def _decide(fn, as_json: bool, summary_md: Path | None = None) -> None:
    """Run a registry decision; print it; map errors to exit codes (0/1/2/3/4)."""
    from components.errors import SeqopsError

    _setup_logging()
    try:
        outcome, uri = fn()
    except SeqopsError as exc:
        _fail(exc, as_json)
        return
    except Exception as exc:  # infrastructure: the run failed, nothing promoted
        logging.getLogger("seqops").exception("registry command failed")
        _fail(exc, as_json)
        return
    o = outcome if isinstance(outcome, dict) else outcome.to_dict()
    o["tracking_uri"] = uri
    if summary_md is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        from flows.summary import promotion_markdown, write_summaries

        o["summaries"] = write_summaries(
            promotion_markdown(o, uri), str(summary_md) if summary_md else None
        )
    if as_json:
        _emit(o)
    else:
        typer.echo(
            f"{o['model']} v{o['version']} -> {o['alias']}: {o['status']} "
            f"(champion v{o['champion_before']} -> v{o['champion_after']})"
        )
        for r in o["reasons"]:
            typer.echo(f"  - {r}")
    raise typer.Exit(o["exit_code"])


@app.command("promote")
def promote_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[
        str, typer.Option("--version", help="Version number, alias (e.g. challenger) or NAME/N.")
    ],
    to: Annotated[str, typer.Option("--to", help="Target: shadow, canary or champion.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate the gate; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the gates (needs --reason; marked in the ledger).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
    approved_by: Annotated[
        str | None, typer.Option(help="Approver, when promotion.require_approval is set.")
    ] = None,
    trigger: Annotated[
        str, typer.Option(help="Recorded trigger: manual, ci, schedule.")
    ] = "manual",
    config: Annotated[
        str | None,
        typer.Option(
            help="Job config for the gate (default: the one the version was trained with)."
        ),
    ] = None,
    summary_md: Annotated[
        Path | None,
        typer.Option(help="Append a markdown summary here (also $GITHUB_STEP_SUMMARY)."),
    ] = None,
    wait_for_approval: Annotated[
        bool,
        typer.Option(
            "--wait-for-approval",
            help="Run as the Prefect flow `promote`, which pauses for a person's approval when "
            "promotion.require_approval is set (needs a Prefect server in PREFECT_API_URL; "
            "answer with `seqops approve` or Resume in the Prefect UI).",
        ),
    ] = False,
    approval_timeout: Annotated[
        int, typer.Option(min=1, help="Seconds to wait for approval before giving up (exit 1).")
    ] = 3600,
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Gate a version against the current champion and move an alias (compare-and-swap, recorded).

    Exit 0 promoted or no-op; 1 gate failed or inconclusive, or approval declined; 2 bad input;
    3 failure; 4 conflict.
    """

    if wait_for_approval:
        import flows.promote  # noqa: F401  Prefect reconfigures logging on import: before ours

    def run():
        from registry.promote import promote

        if wait_for_approval:
            from flows.promote import promote_flow

            _require_prefect_server("--wait-for-approval")
            with contextlib.redirect_stdout(sys.stderr):
                result = promote_flow(
                    model,
                    version,
                    to,
                    trigger=trigger,
                    force=force,
                    reason=reason,
                    approved_by=approved_by,
                    config_path=config,
                    state_dir=str(state_dir),
                    ledger_url=ledger_url,
                    approval_timeout_s=approval_timeout,
                )
            return result, result["tracking_uri"]

        client, ledger, uri = _registry(state_dir, ledger_url)
        return promote(
            client,
            ledger,
            model,
            ref=version,
            to=to,
            trigger=trigger,
            force=force,
            reason=reason,
            approved_by=approved_by,
            dry_run=dry_run,
            config_path=config,
        ), uri

    _decide(run, as_json, summary_md)


def _require_prefect_server(what: str) -> None:
    from prefect.settings import PREFECT_API_URL

    from components.errors import BadInputError

    if not PREFECT_API_URL.value():
        raise BadInputError(
            f"{what} needs a Prefect server that outlives this process: start one "
            "(`prefect server start`) and set PREFECT_API_URL (see README)"
        )


@app.command("approve")
def approve_cmd(
    flow_run: Annotated[
        str | None,
        typer.Argument(help="Id of the paused `promote` flow run (omit to list paused runs)."),
    ] = None,
    approved_by: Annotated[
        str | None, typer.Option(help="Your name (recorded in the ledger).")
    ] = None,
    decline: Annotated[bool, typer.Option("--decline", help="Refuse the promotion.")] = False,
    comment: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Answer a `promote` flow run paused for approval (same as Resume in the Prefect UI).

    Without FLOW_RUN, lists the paused promotions. Exit 0 answered; 2 bad input (no such paused
    run, missing --approved-by); 3 the Prefect server failed.
    """
    from components.errors import BadInputError

    _setup_logging()
    try:
        _require_prefect_server("seqops approve")
        from flows.approvals import answer, paused_promotions

        if flow_run is None:
            runs = paused_promotions()
            if as_json:
                _emit({"status": "ok", "exit_code": 0, "paused": runs})
            elif not runs:
                typer.echo("no promotion waits for approval")
            for r in [] if as_json else runs:
                typer.echo(
                    f"{r['flow_run_id']}  {r['model']} v{r['version']} -> {r['to']}  paused since {r['since']}"
                )
            raise typer.Exit(0)
        if not (approved_by or "").strip():
            raise BadInputError("pass --approved-by NAME (recorded in the ledger)")
        out = answer(flow_run, approved_by=str(approved_by), approve=not decline, comment=comment)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # SeqopsError: 2; the Prefect server failing: 3
        _fail(exc, as_json)
        return
    if as_json:
        _emit({"status": "ok", "exit_code": 0, **out})
    else:
        typer.echo(
            f"{'declined' if decline else 'approved'} flow run {flow_run} as {approved_by}; "
            "the flow now commits (or records the refusal)"
        )
    raise typer.Exit(0)


@app.command("rollback")
def rollback_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version to return to (default: the previous champion)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a version that failed its gates.")
    ] = False,
    summary_md: Annotated[Path | None, typer.Option(help="Append a markdown summary here.")] = None,
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Return `champion` to the previous champion from the ledger (repeat to walk further back)."""

    def run():
        from registry.promotion import rollback

        client, ledger, uri = _registry(state_dir, ledger_url)
        return rollback(client, ledger, model, to=to, reason=reason, force=force), uri

    _decide(run, as_json, summary_md)


def _read(fn, as_json: bool, state_dir: Path, ledger_url: str | None) -> dict[str, Any] | None:
    """Run a read-only registry command ``fn(client, ledger) -> dict`` for a model that must
    exist; map errors to exit codes. With --json the dict is printed and None returned."""
    from components.errors import SeqopsError

    _setup_logging()
    try:
        client, ledger, _ = _registry(state_dir, ledger_url)
        payload = fn(client, ledger)
    except SeqopsError as exc:
        _fail(exc, as_json)
        return None
    except Exception as exc:  # MLflow or the ledger failing: exit 3, never a traceback
        logging.getLogger("seqops").debug("read command failed", exc_info=True)
        _fail(exc, as_json)
        return None
    if as_json:
        _emit({"status": "ok", "exit_code": 0, **payload})
        return None
    return payload


@app.command("reconcile")
def reconcile_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Repair MLflow aliases from the ledger (after a crash between commit and projection)."""
    from registry.promotion import ensure_model, reconcile

    def run(client, ledger):
        ensure_model(client, model)
        return {"model": model, "repaired": reconcile(client, ledger, model)}

    out = _read(run, as_json, state_dir, ledger_url)
    if out is not None:
        changes = out["repaired"]
        typer.echo(
            f"{model}: " + ("; ".join(changes) if changes else "MLflow aliases match the ledger")
        )


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


@app.command("history")
def history_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the promotion ledger of a model: every gate evaluation and alias move."""
    from registry.promotion import ensure_model

    def run(client, ledger):
        ensure_model(client, model)
        return {"model": model, "entries": ledger.history(model)}

    out = _read(run, as_json, state_dir, ledger_url)
    if out is None:
        return
    if not out["entries"]:
        typer.echo(f"{model}: no ledger entries")
    for r in out["entries"]:
        move = (
            f"{r['alias']}: {_v(r['from_version'])} -> {_v(r['to_version'])}"
            if r["kind"] != "gate"
            else f"gate v{r['to_version']} vs {_v(r['baseline_version'])}"
        )
        flags = (" FORCED" if r["forced"] else "") + (
            f" approved by {r['approved_by']}" if r["approved_by"] else ""
        )
        typer.echo(
            f"{r['id']:>5} {r['ts'][:19]} {r['kind']:<13} {move:<34} {r['outcome']:<12} {r['trigger']:<9} {r['actor']}{flags}"
        )
        for reason in r["reasons"]:
            typer.echo(f"{'':>6}- {reason}")


@app.command("status")
def status_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Who holds which alias (ledger and MLflow), and what is pending."""
    from registry.promotion import status

    st = _read(lambda client, ledger: status(client, ledger, model), as_json, state_dir, ledger_url)
    if st is None:
        return
    typer.echo(
        f"{model}: "
        + ", ".join(f"{a}=v{v}" for a, v in sorted(st["aliases"].items()))
        + ("" if st["in_sync"] else "  (MLflow out of sync: run seqops reconcile)")
    )
    for p in st["pending"]:
        typer.echo(f"  pending: v{p['version']} since {p['since'][:19]}: {'; '.join(p['reasons'])}")


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8080,
    config: Annotated[
        Path | None, typer.Option(help="Job config whose `serving:` section to use.")
    ] = None,
    micro_batch: Annotated[
        bool | None,
        typer.Option("--micro-batch/--no-micro-batch", help="Override serving.micro_batch."),
    ] = None,
    predlog_url: Annotated[
        str | None,
        typer.Option(
            help="Prediction log URL (default: SEQOPS_PREDLOG_URL, else SQLite in the state dir)."
        ),
    ] = None,
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the champion over HTTP, the canary on its share of series, and mirror to the shadow.

    POST /predict, POST /actuals, GET /metrics (Prometheus), /healthz, /readyz. Follows alias
    moves in the ledger (polling). Exit 2: unknown model, no champion, bad config.
    """

    _setup_logging(verbose)
    try:
        from components.config import ServingConfig, load_config

        cfg = load_config(config).serving if config else ServingConfig()
        if micro_batch is not None:
            cfg = cfg.model_copy(update={"micro_batch": micro_batch})
        from serving.server import build_gateway, run

        gw = build_gateway(
            model, cfg=cfg, state_dir=state_dir, ledger_url=ledger_url, predlog_url=predlog_url
        )
    except Exception as exc:  # SeqopsError: its code; MLflow or a database down: 3
        _fail(exc, False)
        return
    typer.echo(
        f"serving {model} on http://{host}:{port} (prediction log {gw.predlog.url})", err=True
    )
    run(gw, host, port)


@app.command("deploy")
def deploy_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Job config to deploy.")] = Path(
        "configs/co2.yaml"
    ),
    pool: Annotated[
        str, typer.Option(help="Process work pool (created if missing).")
    ] = "seqops-process",
    as_json: JsonFlag = False,
) -> None:
    """Register the retrain (cron from `schedule.cron`), monitor (every `monitor.interval_s`) and
    rollout deployments with the Prefect server in PREFECT_API_URL.

    Then start a worker: `prefect worker start --pool seqops-process`. Flow runs work in this
    directory with this MLFLOW_TRACKING_URI / SEQOPS_LEDGER_URL / SEQOPS_PREDLOG_URL.
    Exit 2: bad config or no PREFECT_API_URL; 3: the Prefect server failed.
    """
    from components.errors import SeqopsError

    _setup_logging()
    try:
        from components.config import load_config

        load_config(config)
        _require_prefect_server("seqops deploy")
        from flows.deploy import deploy

        with contextlib.redirect_stdout(sys.stderr):
            out = deploy(str(config), pool=pool)
    except SeqopsError as exc:
        _fail(exc, as_json)
        return
    except Exception as exc:  # the Prefect server refused or is unreachable
        _fail(exc, as_json)
        return
    if as_json:
        _emit({"status": "deployed", "exit_code": 0, **out})
    else:
        for d in out["deployments"]:
            typer.echo(f"deployed {d['deployment']}: {d['schedule']}")
        typer.echo(
            f"work pool {out['work_pool']}{' (created)' if out['work_pool_created'] else ''}; "
            f"start a worker: prefect worker start --pool {out['work_pool']}"
        )
    raise typer.Exit(0)


@app.command("monitor")
def monitor_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Job config.")],
    history: Annotated[
        bool, typer.Option("--history", help="Print the recorded checks instead of checking.")
    ] = False,
    retrain_deployment: Annotated[
        str | None, typer.Option(help="Deployment to trigger (default retrain/<model>).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """One drift check of recent data against the champion's training reference (Prefect flow
    `monitor`); triggers the retrain deployment when drift persists and the cooldown has passed.

    Exit 0 checked (whatever it decided); 2 bad config or data; 3 failure.
    """
    if not history:
        import flows.monitor  # noqa: F401  Prefect reconfigures logging on import: before ours
    _setup_logging()
    try:
        from components.config import load_config

        job = load_config(config)
        if history:
            from registry.ledger import Ledger, resolve_ledger_url
            from registry.monitor_log import MonitorLog

            rows = MonitorLog(
                Ledger(resolve_ledger_url(None, job.state_dir, job.promotion.ledger_url)).engine
            ).history(job.name)
            if as_json:
                _emit({"status": "ok", "exit_code": 0, "model": job.name, "checks": rows})
            if not as_json and not rows:
                typer.echo(f"{job.name}: no drift checks recorded yet")
            for r in [] if as_json else rows:
                share = "-" if r["drift_share"] is None else f"{r['drift_share']:.2f}"
                typer.echo(
                    f"{r['ts']:%Y-%m-%d %H:%M:%S}  {r['action']:<14} drift {share:<5} {r['reason']}"
                )
            raise typer.Exit(0)
        from flows.monitor import monitor_flow

        with contextlib.redirect_stdout(sys.stderr):
            out = monitor_flow(str(config), retrain_deployment=retrain_deployment)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # SeqopsError: its code; anything else (MLflow down...): 3
        _fail(exc, as_json)
        return
    if as_json:
        _emit({"status": "ok", "exit_code": 0, **out})
    else:
        typer.echo(f"{out['model']}: {out['action']} ({out['reason']})")
    raise typer.Exit(0)


@app.command("rollout")
def rollout_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[
        str, typer.Option("--version", help="Version number, alias (e.g. challenger) or NAME/N.")
    ],
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="Job config (its `rollout:` and `serving:` sections)."),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Allow a version that failed its offline gate (needs --reason)."
        ),
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
    approved_by: Annotated[
        str | None,
        typer.Option(
            help="Who approves the champion step, when promotion.require_approval is set "
            "(recorded on the champion move)."
        ),
    ] = None,
    predlog_url: Annotated[
        str | None, typer.Option(help="Prediction log URL (as for seqops serve).")
    ] = None,
    summary_md: Annotated[Path | None, typer.Option(help="Append a markdown summary here.")] = None,
    state_dir: StateDir = Path(".seqops"),
    ledger_url: LedgerUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Roll a version out on live traffic (Prefect flow `rollout`): shadow, canary shares,
    champion, bake, judged on the gateway's prediction log at every analysis interval.

    Exit 0 promoted (and baked); 1 a step failed, timed out, or the bake rolled back; 2 bad input;
    3 failure; 4 the champion moved during the rollout.
    """

    import flows.rollout  # noqa: F401  Prefect reconfigures logging on import: before ours

    def run():
        from flows.rollout import check_inputs, rollout_flow

        # bad input exits 2 here, before a flow run exists (the flow checks again, for deployments)
        check_inputs(model, version, str(config), state_dir=str(state_dir), ledger_url=ledger_url,
                     approved_by=approved_by)  # fmt: skip
        with contextlib.redirect_stdout(sys.stderr):
            state = rollout_flow(
                model,
                version,
                str(config),
                state_dir=str(state_dir),
                ledger_url=ledger_url,
                predlog_url=predlog_url,
                force=force,
                reason=reason,
                approved_by=approved_by,
                return_state=True,
            )
        out = state.result(raise_on_failure=False)  # the outcome, also when the run Failed
        if isinstance(out, BaseException):  # bad input or a crash: mapped to its exit code
            raise out
        return out, out["tracking_uri"]

    _decide(run, as_json, summary_md)


@app.command("replay")
def replay_cmd(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Job config whose data to replay.")
    ],
    url: Annotated[str, typer.Option(help="Gateway base URL, e.g. http://127.0.0.1:8080.")],
    rps: Annotated[float, typer.Option(min=0.1, help="Requests per second (steady).")] = 20.0,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds to send for.")] = 30.0,
    label_delay: Annotated[
        float | None,
        typer.Option(help="Post the actuals this many seconds after each answer (omit: never)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send held-out windows (the test split) to a gateway at a steady rate; post actuals later.

    Prints live counts on stderr. Exit 0 when every request was answered, 1 when any failed,
    2 on bad input.
    """
    import asyncio

    from components.errors import SeqopsError

    _setup_logging()
    try:
        from components.config import load_config
        from serving.replay import held_out_items, replay

        items = held_out_items(load_config(config))
    except (SeqopsError, ValueError) as exc:
        _fail(exc if isinstance(exc, SeqopsError) else _bad(str(exc)), as_json)
        return
    typer.echo(
        f"replaying {len(items)} held-out windows to {url} at {rps:g} rps for {duration:g} s",
        err=True,
    )
    out = asyncio.run(replay(url, items, rps=rps, duration_s=duration, label_delay_s=label_delay))
    code = 0 if out["errors"] == 0 else 1
    if as_json:
        _emit({"status": "ok" if code == 0 else "errors", "exit_code": code, **out})
    else:
        lat = {k: "-" if v is None else f"{v:.1f}" for k, v in out["latency_ms"].items()}
        typer.echo(
            f"sent {out['sent']} ok {out['ok']} errors {out['errors']} actuals {out['actuals_posted']} "
            f"({out['achieved_rps']} rps; p50 {lat['p50']} ms, p95 {lat['p95']} ms)"
        )
    raise typer.Exit(code)


def _bad(msg: str):
    from components.errors import BadInputError

    return BadInputError(msg)


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


# Short registry commands: most of their wall time is importing MLflow and tearing the heap down
# again (bench/results/promote_rollback.md). With the cyclic GC off for the whole (short) run and
# the heap frozen at exit, a rollback loses ~1.3 s; long-running commands keep the GC on.
_SHORT = {"promote", "rollback", "reconcile", "history", "status", "approve"}


def main() -> None:  # pragma: no cover
    import gc

    if len(sys.argv) > 1 and sys.argv[1] in _SHORT and "--wait-for-approval" not in sys.argv:
        gc.disable()
    try:
        app(prog_name="seqops")
    finally:
        gc.freeze()  # nothing left to collect: skip the full collection at interpreter exit
