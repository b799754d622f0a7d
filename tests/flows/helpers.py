"""Helpers for CLI-level tests: invoke ``seqops`` in-process and read the MLflow store back."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import click

from flows.cli import app


def invoke(*args: str, env: dict[str, str] | None = None):
    """Run the CLI in-process; returns (exit_code, parsed JSON from stdout or None, stderr).

    Streams are redirected into StringIO buffers that are never closed (click's CliRunner
    closes its streams, which breaks logging handlers created during the call).
    """
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rv = app(list(args), prog_name="seqops", standalone_mode=False)
                code = rv if isinstance(rv, int) else 0
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except click.ClickException as exc:
                exc.show()
                code = exc.exit_code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = out.getvalue().strip()
    payload = json.loads(text) if text.startswith("{") else None
    return code, payload, err.getvalue()


def registered_models(state_dir: Path) -> list[str]:
    """Names of registered models in the embedded store (empty when the store does not exist)."""
    db = Path(state_dir) / "mlflow.db"
    if not db.exists():
        return []
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=f"sqlite:///{db.resolve()}", registry_uri=f"sqlite:///{db.resolve()}"
    )
    return [m.name for m in client.search_registered_models()]
