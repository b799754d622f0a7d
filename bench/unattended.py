"""Unattended operation, timed: deployment runs through a process worker, many models on Dask, and
the drift monitor on a 1,000,000-row window.

Three sections (``--sections deploy,many,monitor``; all by default), each in its own temporary
directory with its own PREFECT_HOME, and an environment without MLFLOW_TRACKING_URI,
SEQOPS_LEDGER_URL, SEQOPS_PREDLOG_URL and PREFECT_API_URL (embedded stores under .seqops/):

deploy   A real ``prefect server start`` on loopback (SQLite), ``seqops deploy`` of a tiny config,
         ONE long-running ``prefect worker start --pool seqops-process``; N flow runs of the retrain
         deployment are created through the API one after another (each waited for). From the
         API's flow-run records and state history: scheduler-to-running latency
         (start_time - expected_start_time), split into SCHEDULED -> PENDING (the worker's poll)
         and PENDING -> RUNNING (process spawn, pull step, flow import), the run time, and
         created -> COMPLETED. Once with the worker's default PREFECT_WORKER_QUERY_SECONDS and once
         with 2 s. Plain alternative: the same retrain as ``seqops retrain`` (process wall), against
         the same server and once with Prefect's temporary server (no PREFECT_API_URL).
many     4 and 16 tiny models (groups of 2 synthetic series) trained by ``seqops retrain`` on a
         many-model config with dask n_workers=1 (sequential, same code path) and n_workers=2,
         plus a plain in-process loop of ``retrain_flow`` calls. Per-model times come from the
         Prefect database of the run (the ``retrain`` subflow records); the fixed part and the
         per-model part give an Amdahl-style projection for more workers.
monitor  One real retrain (tiny config, gate that makes v1 champion), a 1,000,000-row drop file
         (10 series x 100,000 hourly rows, parquet; one CSV run too), ``seqops monitor --config``
         with monitor.recent_rows = 100,000 (so the window is the whole 1M rows). Phases from the
         Prefect database (flow, drift-check task) and the drift summary (its own seconds).
         Plain alternative: a fresh process that loads the champion, builds the same recent
         frame and calls components.drift.run_drift on it, each step timed.

    .venv/bin/python bench/unattended.py [--sections deploy,many,monitor] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, ROOT, loadavg, machine_info, median, write_results  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
_DROP_ENV = (
    "MLFLOW_TRACKING_URI",
    "SEQOPS_LEDGER_URL",
    "SEQOPS_PREDLOG_URL",
    "PREFECT_API_URL",
    "PREFECT_WORKER_QUERY_SECONDS",
    "PREFECT_WORKER_PREFETCH_SECONDS",
)
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


# --------------------------------------------------------------------------- helpers


def base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def parse_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_cmd(cmd: list[str], cwd: Path, env: dict, timeout: int = 600) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = (
            exc.stderr.decode(errors="replace")
            if isinstance(exc.stderr, bytes)
            else str(exc.stderr)
        )
        return {"rc": None, "wall_s": float(timeout), "out": None, "stderr": err[-4000:],
                "error": f"timed out after {timeout}s"}  # fmt: skip
    wall = time.perf_counter() - t0
    return {"rc": p.returncode, "wall_s": wall, "out": parse_json_line(p.stdout),
            "stderr": p.stderr, "stdout_tail": p.stdout[-2000:]}  # fmt: skip


def seqops(args: list[str], cwd: Path, env: dict, timeout: int = 600) -> dict[str, Any]:
    return run_cmd([PY, "-m", "flows", *args], cwd, env, timeout)


def ts(s: str | None) -> float | None:
    """API / database timestamp (UTC) -> epoch seconds."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    d = datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def tiny_panel():
    from components.synth import synth_panel

    return synth_panel(n_series=3, length=160, freq="D", season_length=7, noise=0.2, seed=3)


def tiny_config(tmp: Path, data: Path, **over) -> dict:
    """The tests' tiny job (tests/conftest.py tiny_config), with overrides merged one level deep."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "data": {"path": str(data), "timestamp": "timestamp", "target": "value",
                 "series_id": "series_id", "covariates": ["temperature"], "frequency": "D"},
        "window": {"lookback": 14, "horizon": 4},
        "model": {"units": 8},
        "training": {"epochs": 3, "batch_size": 32, "seed": 1, "device": "cpu",
                     "early_stopping": {"patience": 2}},
        "evaluation": {"season_length": 7, "backtest_folds": 2},
        "drift": {"sample_size": 1000},
        "state_dir": str(tmp / ".seqops"),
    }  # fmt: skip
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def prefect_db_runs(prefect_home: Path) -> dict[str, list[dict]]:
    """Flow and task runs from a Prefect SQLite database (the temporary server's, after exit)."""
    db = prefect_home / "prefect.db"
    if not db.exists():
        return {"flow_runs": [], "task_runs": []}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        flows = [dict(r) for r in con.execute(
            "SELECT fr.id, fr.name, f.name AS flow, fr.state_type, fr.start_time, fr.end_time, "
            "fr.expected_start_time, fr.created, fr.parameters FROM flow_run fr JOIN flow f ON f.id = fr.flow_id "
            "ORDER BY fr.start_time")]  # fmt: skip
        tasks = [dict(r) for r in con.execute(
            "SELECT id, name, flow_run_id, state_type, start_time, end_time FROM task_run "
            "ORDER BY start_time")]  # fmt: skip
    finally:
        con.close()
    for r in flows:
        try:
            cp = json.loads(r.pop("parameters") or "{}").get("config_path")
        except (TypeError, ValueError):
            cp = None
        r["model"] = Path(cp).stem if cp else None
    for r in flows + tasks:
        r["start"], r["end"] = ts(r["start_time"]), ts(r["end_time"])
        r["seconds"] = diff(r["start"], r["end"])
    return {"flow_runs": flows, "task_runs": tasks}


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 30) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def r3(x, nd=3):
    return None if x is None else round(float(x), nd)


# --------------------------------------------------------------------------- 1. deploy


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


API_RETRIES = {"503": 0, "connect": 0}


def api(method: str, url: str, **kw):
    """One API request, retried like Prefect's own client does on 503 (retryable server errors,
    e.g. SQLite 'database is locked') and on connection errors; the retries are counted."""
    import httpx

    for attempt in range(20):
        try:
            r = httpx.request(method, url, timeout=30, **kw)
        except httpx.TransportError:
            API_RETRIES["connect"] += 1
            time.sleep(min(0.25 * 2**attempt, 5))
            continue
        if r.status_code != 503:
            r.raise_for_status()
            return r
        API_RETRIES["503"] += 1
        time.sleep(min(0.25 * 2**attempt, 5))
    raise RuntimeError(f"{method} {url}: still failing after 20 attempts")


def start_server(tmp: Path, env: dict) -> tuple[subprocess.Popen, str, float]:
    import httpx

    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{tmp / 'prefect.db'}"
    env["PREFECT_API_LOG_RETRYABLE_ERRORS"] = "true"  # so the server log says why it sent a 503
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = (tmp / "prefect-server.log").open("wb")
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return server, api_url, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError((tmp / "prefect-server.log").read_text()[-3000:])
        time.sleep(0.25)
    stop(server)
    raise RuntimeError("prefect server did not start in 120 s")


def start_worker(
    tmp: Path, env: dict, api_url: str, name: str
) -> tuple[subprocess.Popen, float, Path]:
    logp = tmp / f"worker-{name}.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "prefect", "worker", "start", "--pool", "seqops-process", "--name", name],
        env=env, cwd=tmp, stdout=logp.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {logp.read_text()[-3000:]}")
        r = api("POST", f"{api_url}/work_pools/seqops-process/workers/filter", json={})
        if any(w["name"] == name for w in r.json()):
            return proc, time.perf_counter() - t0, logp
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"worker {name} did not register in 180 s: {logp.read_text()[-3000:]}")


def one_deployment_run(
    api_url: str, dep_id: str, delay: float = 0.0, timeout: float = 420
) -> dict[str, Any]:
    time.sleep(delay)  # a random moment in the worker's poll cycle
    t_create = time.time()
    fr = api("POST", f"{api_url}/deployments/{dep_id}/create_flow_run", json={}).json()
    fid = fr["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fr = api("GET", f"{api_url}/flow_runs/{fid}").json()
        if fr["state_type"] in TERMINAL:
            break
        time.sleep(0.2)
    t_seen = time.time()
    states = api("GET", f"{api_url}/flow_run_states/", params={"flow_run_id": fid}).json()
    first: dict[str, float] = {}
    for s in sorted(states, key=lambda s: s["timestamp"]):
        first.setdefault(s["type"], ts(s["timestamp"]))  # type: ignore[arg-type]
    exp, start, end = ts(fr["expected_start_time"]), ts(fr["start_time"]), ts(fr["end_time"])
    created = ts(fr["created"])
    return {
        "flow_run": fr["name"],
        "id": fid,
        "delay_before_create_s": delay,
        "state": fr["state_type"],
        "client_create_to_seen_terminal_s": t_seen - t_create,
        "created_minus_expected_s": diff(exp, created),
        "latency_s": diff(exp, start),  # scheduler-to-running
        "scheduled_to_pending_s": diff(first.get("SCHEDULED"), first.get("PENDING")),
        "pending_to_running_s": diff(first.get("PENDING"), first.get("RUNNING")),
        "run_s": diff(start, end),
        "total_run_time_api_s": fr.get("total_run_time"),
        "expected_to_end_s": diff(exp, end),
        "states": [s["type"] for s in sorted(states, key=lambda s: s["timestamp"])],
    }


def section_deploy(args) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="seqops-bench-deploy-"))
    env = base_env(tmp)
    out: dict[str, Any] = {"tmp": str(tmp)}
    server = None
    try:
        data = tmp / "panel.csv"
        tiny_panel().to_csv(data, index=False)
        cfg = write_yaml(tmp / "job.yaml", tiny_config(tmp, data))
        server, api_url, t_server = start_server(tmp, env)
        env["PREFECT_API_URL"] = api_url
        out["server_start_s"] = t_server
        print(f"[deploy] prefect server up in {t_server:.1f}s at {api_url}", flush=True)
        d = seqops(["deploy", "--config", str(cfg), "--json"], tmp, env, 300)
        if d["rc"] != 0 or not d["out"]:
            raise RuntimeError(f"seqops deploy failed: {d['stderr'][-3000:]}")
        out["deploy_s"] = d["wall_s"]
        dep = {x["deployment"]: x["id"] for x in d["out"]["deployments"]}["retrain/tiny"]
        print(f"[deploy] seqops deploy {d['wall_s']:.1f}s; retrain/tiny = {dep}", flush=True)
        from prefect.settings import get_current_settings

        default_q = get_current_settings().worker.query_seconds
        default_prefetch = get_current_settings().worker.prefetch_seconds
        out["worker_query_seconds_default"] = default_q
        out["worker_prefetch_seconds_default"] = default_prefetch
        out["workers"] = []
        rng = random.Random(7)
        for q in (None, 2.0):
            wenv = dict(env)
            label = f"default ({default_q:g} s)" if q is None else f"{q:g} s"
            if q is not None:
                wenv["PREFECT_WORKER_QUERY_SECONDS"] = str(q)
            name = "bench-q-default" if q is None else f"bench-q-{q:g}"
            worker, t_worker, wlog = start_worker(tmp, wenv, api_url, name)
            print(f"[deploy] worker {name} registered in {t_worker:.1f}s", flush=True)
            time.sleep(1.0)
            runs = []
            retries0 = dict(API_RETRIES)
            try:
                for i in range(args.runs):
                    r = one_deployment_run(api_url, dep, rng.uniform(0.0, q or default_q))
                    runs.append(r)
                    print(
                        f"[deploy]   query {label}: run {i + 1} {r['state']}: latency "
                        f"{r['latency_s']:.2f}s (sched->pending {r['scheduled_to_pending_s']:.2f}, "
                        f"pending->running {r['pending_to_running_s']:.2f}), run {r['run_s']:.1f}s, "
                        f"expected->end {r['expected_to_end_s']:.1f}s",
                        flush=True,
                    )
            finally:
                stop(worker)
            out["workers"].append(
                {
                    "query_seconds": q if q is not None else default_q,
                    "label": label,
                    "worker_start_s": t_worker,
                    "runs": runs,
                    "worker_log_tail": wlog.read_text()[-1500:],
                    "api_503_retries": API_RETRIES["503"] - retries0["503"],
                    "worker_log_locked_lines": sum(
                        "database is locked" in ln for ln in wlog.read_text().splitlines()
                    ),
                }  # fmt: skip
            )
        # plain alternative: the same job as `seqops retrain` (same server, then temporary server)
        plain = []
        for i in range(args.plain_runs):
            p = seqops(["retrain", "--config", str(cfg), "--json"], tmp, env, 420)
            o = p["out"] or {}
            plain.append({"mode": "PREFECT_API_URL = the same server", "rc": p["rc"],
                          "wall_s": p["wall_s"], "status": o.get("status"),
                          "steps_sum_s": sum((o.get("timings") or {}).values()),
                          "timings": o.get("timings")})  # fmt: skip
            print(
                f"[deploy] plain seqops retrain (server) {i + 1}: {p['wall_s']:.1f}s rc {p['rc']}"
            )
        if args.ephemeral:
            eenv = {k: v for k, v in env.items() if k not in ("PREFECT_API_URL",
                    "PREFECT_API_DATABASE_CONNECTION_URL")}  # fmt: skip
            eenv["PREFECT_HOME"] = str(tmp / "prefect-home-ephemeral")
            p = seqops(["retrain", "--config", str(cfg), "--json"], tmp, eenv, 420)
            o = p["out"] or {}
            plain.append({"mode": "no PREFECT_API_URL (temporary server)", "rc": p["rc"],
                          "wall_s": p["wall_s"], "status": o.get("status"),
                          "steps_sum_s": sum((o.get("timings") or {}).values()),
                          "timings": o.get("timings")})  # fmt: skip
            print(
                f"[deploy] plain seqops retrain (temporary server): {p['wall_s']:.1f}s rc {p['rc']}"
            )
        out["plain"] = plain
    finally:
        if server is not None:
            stop(server, signal.SIGTERM)
        out["api_retries"] = dict(API_RETRIES)
        slog = tmp / "prefect-server.log"
        if slog.exists():
            lines = slog.read_text(errors="replace").splitlines()
            out["server_log_retryable_errors"] = sum("retryable exception" in ln for ln in lines)
            out["server_log_database_locked"] = sum("database is locked" in ln for ln in lines)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- 2. many

LOOP_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from flows.many import model_configs
from flows.retrain import retrain_flow
t_imp = time.perf_counter() - t0
models, _ = model_configs(sys.argv[1])
per = []
for job, path in models:
    a = time.perf_counter()
    start = a - t0
    try:
        o = retrain_flow(str(path), trigger="manual")
        st, code, tim = o["status"], o["exit_code"], o.get("timings")
    except Exception as exc:
        st, code, tim = f"{type(exc).__name__}: {exc}", 3, None
    per.append({"model": job.name, "start": start, "seconds": time.perf_counter() - a, "status": st,
                "exit_code": code, "timings": tim})
print(json.dumps({"import_s": t_imp, "models": per, "in_process_s": time.perf_counter() - t0}))
"""


def many_config(ids: list[str], n_models: int, n_workers: int) -> dict:
    return {
        "dask": {"n_workers": n_workers, "threads_per_worker": 1},
        "defaults": {
            "data": {"path": "panel.csv", "timestamp": "timestamp", "target": "value",
                     "series_id": "series_id", "frequency": "D"},
            "window": {"lookback": 14, "horizon": 4},
            "model": {"units": 8},
            "training": {"epochs": 3, "batch_size": 32, "learning_rate": 0.02, "seed": 1,
                         "device": "cpu", "early_stopping": {"enabled": False}},
            "evaluation": {"season_length": 7, "backtest_folds": 2},
            "drift": {"enabled": False},
            "gate": {"seasonal_naive_margin": 0.0, "champion_tolerance": 10.0},
        },
        "models": [{"name": f"grp-{i:02d}", "data": {"series": ids[2 * i: 2 * i + 2]}}
                   for i in range(n_models)],
    }  # fmt: skip


def section_many(args) -> dict[str, Any]:
    from components.synth import synth_panel

    sizes = [int(x) for x in args.models.split(",")]
    frame = synth_panel(n_series=2 * max(sizes), length=160, freq="D", season_length=7,
                        noise=0.2, seed=3)  # fmt: skip
    ids = sorted(frame["series_id"].unique())
    cases = []
    for m in sizes:
        for variant in ("loop", "dask-1", "dask-2"):
            tmp = Path(tempfile.mkdtemp(prefix=f"seqops-bench-many-{m}-{variant}-"))
            env = base_env(tmp)
            try:
                frame.to_csv(tmp / "panel.csv", index=False)
                nw = 2 if variant == "dask-2" else 1
                cfg = write_yaml(tmp / "many.yaml", many_config(ids, m, nw))
                load0 = loadavg()
                if variant == "loop":
                    (tmp / "loop.py").write_text(LOOP_CHILD)
                    p = run_cmd([PY, str(tmp / "loop.py"), str(cfg)], tmp, env, 900)
                    o = p["out"] or {}
                    per = o.get("models") or []
                    model_s = [x["seconds"] for x in per]
                    outcomes = [{"model": x["model"], "status": x["status"],
                                 "exit_code": x["exit_code"], "timings": x["timings"]} for x in per]  # fmt: skip
                    slots = [(x["start"], x["start"] + x["seconds"]) for x in per]
                    extra = {"child_import_s": o.get("import_s"),
                             "child_in_process_s": o.get("in_process_s")}  # fmt: skip
                else:
                    p = seqops(["retrain", "--config", str(cfg), "--json"], tmp, env, 900)
                    o = p["out"] or {}
                    outcomes = [{"model": x.get("model"), "status": x.get("status"),
                                 "exit_code": x.get("exit_code"), "timings": x.get("timings"),
                                 "error": x.get("error")} for x in o.get("models") or []]  # fmt: skip
                    db = prefect_db_runs(tmp / "prefect-home")
                    subs = [r for r in db["flow_runs"] if r["flow"] == "retrain"]
                    subs = [r for r in subs if r["seconds"] is not None]
                    model_s = [r["seconds"] for r in subs]  # in start order
                    imp_by = {x["model"]: (x.get("timings") or {}).get("imports") or 0.0
                              for x in outcomes}  # fmt: skip
                    parents = [r for r in db["flow_runs"] if r["flow"] == "retrain-many"]
                    # one 'retrain-model' task per model: its start/end include the Dask
                    # hand-off and the subflow's setup, so the cadence captures per-model overhead
                    tasks = [t for t in db["task_runs"] if t["name"].startswith("retrain-model")
                             and t["start"] and t["end"]]  # fmt: skip
                    slots = [(t["start"], t["end"]) for t in tasks]
                    first_task = min((t["start"] for t in tasks), default=None)
                    extra = {
                        "subflows": len(subs),
                        "subflow_models": [r["model"] for r in subs],
                        "import_step_s": [imp_by.get(r["model"], 0.0) for r in subs],
                        "subflow_span_s": diff(min(r["start"] for r in subs),
                                               max(r["end"] for r in subs)) if subs else None,
                        "parent_flow_s": parents[0]["seconds"] if parents else None,
                        "parent_start_to_first_task_s": diff(parents[0]["start"], first_task)
                        if parents else None,
                        "task_seconds": [t["seconds"] for t in tasks],
                    }  # fmt: skip
                ok = sum(1 for x in outcomes if x["exit_code"] in (0, 1))
                imports = [(x.get("timings") or {}).get("imports") or 0.0 for x in outcomes]
                extra.setdefault("import_step_s", imports)
                slots.sort()
                if slots:
                    t0s = slots[0][0]
                    extra["slots_rel_s"] = [(a - t0s, b - t0s) for a, b in slots]
                    extra["span_s"] = max(b for _, b in slots) - t0s
                case = {
                    "models": m, "variant": variant, "n_workers": nw, "rc": p["rc"],
                    "wall_s": p["wall_s"], "ok_models": ok, "model_seconds": model_s,
                    "sum_model_s": sum(model_s),
                    "statuses": sorted({x["status"] for x in outcomes}), "loadavg_before": load0,
                    **extra,
                }  # fmt: skip
                if ok != m or p["rc"] not in (0, 1):
                    case["stderr_tail"] = (p.get("stderr") or "")[-3000:]
                    case["failed"] = [x for x in outcomes if x["exit_code"] not in (0, 1)][:5]
                cases.append(case)
                print(f"[many] {m:>2} models {variant:<6}: wall {p['wall_s']:.1f}s rc {p['rc']}, "
                      f"{ok}/{m} ok, per-model median {median(model_s):.2f}s, "
                      f"sum {sum(model_s):.1f}s", flush=True)  # fmt: skip
            finally:
                if not args.keep:
                    shutil.rmtree(tmp, ignore_errors=True)
    return {"sizes": sizes, "cases": cases, "series_per_model": 2, "length": 160}


def many_fit(c: dict) -> dict[str, float] | None:
    """Serial part and per-model part of a run where the models ran one after another.

    Slots are the per-model intervals (the 'retrain-model' task records for Dask, the
    retrain_flow calls for the loop), in start order. Per model p = median interval between
    consecutive starts after the first model (the warm cadence, per-model orchestration
    included); span = first start -> last end; warm-up w = span - M x p (the first model's
    imports on a fresh worker or process); fixed S = wall - span (process start, CLI and parent
    imports, Prefect's temporary server, Dask cluster start and stop). T(1) = S + w + M x p = wall.
    """
    slots = c.get("slots_rel_s") or []
    m = len(slots)
    if m < 3:
        return None
    starts = [a for a, _ in slots]
    gaps = [starts[i + 1] - starts[i] for i in range(1, m - 1)]
    p = median(gaps)
    span = c["span_s"]
    w = span - m * p
    fixed = c["wall_s"] - span
    return {"per_model_s": p, "warmup_s": w, "fixed_s": fixed, "serial_s": fixed + w,
            "parallel_s": m * p}  # fmt: skip


def many_model(cases: list[dict]) -> dict[str, Any]:
    """Fits of the sequential runs (dask-1 and the plain loop), keyed 'M variant'."""
    fits = {}
    for c in cases:
        if c["variant"] in ("dask-1", "loop"):
            f = many_fit(c)
            if f:
                fits[f"{c['models']} {c['variant']}"] = {"models": c["models"],
                                                        "variant": c["variant"], **f}  # fmt: skip
    return fits


def project(fit: dict, m: int, n: int) -> float:
    return fit["fixed_s"] + fit["warmup_s"] + math.ceil(m / n) * fit["per_model_s"]


# --------------------------------------------------------------------------- 3. monitor

MONITOR_CHILD = r"""
import json, sys, time
from pathlib import Path
T = {}
a = time.perf_counter()
from components.config import load_config
from flows.monitor import recent_frame
from registry.tracking import _set_mlflow_uris, resolve_tracking_uri
T["import seqops modules (Prefect, pandas)"] = time.perf_counter() - a
a = time.perf_counter()
from mlflow import MlflowClient
from registry.champion import load_champion
T["import MLflow + registry"] = time.perf_counter() - a
cfg = sys.argv[1]
a = time.perf_counter()
job = load_config(cfg)
uri = resolve_tracking_uri(job); _set_mlflow_uris(uri)
ch = load_champion(MlflowClient(tracking_uri=uri, registry_uri=uri), job.name)
T["load champion, cold (Keras/TF on first use, model + reference)"] = time.perf_counter() - a
a = time.perf_counter()
cur = recent_frame(job, Path(cfg).resolve().parent)
T["recent frame (read drop file, to_panel, drift features)"] = time.perf_counter() - a
a = time.perf_counter()
import evidently
from evidently import Report
from evidently.presets import DataDriftPreset
T["import Evidently"] = time.perf_counter() - a
from components.drift import run_drift
runs = []
for i in range(2):
    a = time.perf_counter()
    s = run_drift(ch.reference, cur, out_dir=Path(sys.argv[2]) / f"d{i}",
                  reference_label="champion", sample_size=job.drift.sample_size,
                  drift_share=job.drift.drift_share, seed=job.training.seed)
    runs.append({"wall_s": time.perf_counter() - a, "summary_seconds": s.seconds,
                 "drift_detected": s.drift_detected, "drift_share": s.drift_share,
                 "drifted": s.drifted_columns, "sampled": s.sampled})
T["run_drift, first call"] = runs[0]["wall_s"]
print(json.dumps({"steps": T, "recent_rows": len(cur), "reference_rows": len(ch.reference),
                  "drift": runs}))
"""


def monitor_phases(tmp: Path, outcome: dict | None) -> dict[str, Any]:
    db = prefect_db_runs(tmp / "prefect-home")
    flows = [r for r in db["flow_runs"] if r["flow"] == "monitor"]
    if not flows:
        return {}
    fr = flows[-1]
    tasks = [t for t in db["task_runs"] if t["flow_run_id"] == fr["id"]]
    dc = next((t for t in tasks if t["name"].startswith("drift-check")), None)
    drift_s = None
    if outcome and outcome.get("report"):
        js = Path(outcome["report"]).with_name("drift_summary.json")
        if js.exists():
            drift_s = json.loads(js.read_text()).get("seconds")
    task_s = dc["seconds"] if dc else None
    return {
        "flow_run_s": fr["seconds"],
        "before_task_s": diff(fr["start"], dc["start"]) if dc else None,
        "task_s": task_s,
        "task_minus_drift_s": (task_s - drift_s) if task_s and drift_s else None,
        "run_drift_s": drift_s,
        "after_task_s": diff(dc["end"], fr["end"]) if dc else None,
    }


def section_monitor(args) -> dict[str, Any]:
    from components.synth import synth_panel

    tmp = Path(tempfile.mkdtemp(prefix="seqops-bench-monitor-"))
    env = base_env(tmp)
    out: dict[str, Any] = {"tmp": str(tmp)}
    try:
        data = tmp / "panel.csv"
        tiny_panel().to_csv(data, index=False)
        t0 = time.perf_counter()
        drop = synth_panel(n_series=10, length=100_000, freq="h", season_length=7, noise=0.2,
                           trend=0.0, seed=3)  # fmt: skip
        drop.to_parquet(tmp / "drop.parquet", index=False)
        drop.to_csv(tmp / "drop.csv", index=False)
        out["drop_rows"] = len(drop)
        out["drop_parquet_mib"] = (tmp / "drop.parquet").stat().st_size / 2**20
        out["drop_csv_mib"] = (tmp / "drop.csv").stat().st_size / 2**20
        out["drop_write_s"] = time.perf_counter() - t0
        del drop
        monitor = {"consecutive": 10, "cooldown_minutes": 0, "recent_rows": 100_000}
        common = dict(
            gate={"seasonal_naive_margin": 0.0, "champion_tolerance": 10.0,
                  "promote_first_to_champion": True},
            training={"epochs": 30, "learning_rate": 0.02, "early_stopping": {"patience": 8}},
            model={"units": 16},
            drift={"sample_size": args.sample_size},
        )  # fmt: skip
        cfg = write_yaml(tmp / "job.yaml", tiny_config(
            tmp, data, monitor={**monitor, "data_path": str(tmp / "drop.parquet")}, **common))  # fmt: skip
        cfg_csv = write_yaml(tmp / "job-csv.yaml", tiny_config(
            tmp, data, monitor={**monitor, "data_path": str(tmp / "drop.csv")}, **common))  # fmt: skip
        out["drift_sample_size"] = args.sample_size
        r = seqops(["retrain", "--config", str(cfg), "--json"], tmp, env, 600)
        ro = r["out"] or {}
        out["retrain"] = {"rc": r["rc"], "wall_s": r["wall_s"], "status": ro.get("status"),
                          "aliases": ro.get("aliases"), "mase": {k: v.get("mase") for k, v in
                          (ro.get("metrics") or {}).items()}}  # fmt: skip
        print(f"[monitor] retrain {r['wall_s']:.1f}s rc {r['rc']} {ro.get('status')} "
              f"aliases {ro.get('aliases')}", flush=True)  # fmt: skip
        s = seqops(["status", "tiny", "--state-dir", str(tmp / ".seqops"), "--json"], tmp, env, 120)
        out["status"] = s["out"]
        champion = ((s["out"] or {}).get("aliases") or {}).get("champion")
        print(f"[monitor] seqops status: aliases {(s['out'] or {}).get('aliases')}", flush=True)
        if champion != "1":
            out["error"] = "v1 did not become champion; the monitor would skip"
            out["retrain"]["stderr_tail"] = r["stderr"][-3000:]
            return out
        runs = []
        plan = [("parquet", cfg)] * args.monitor_runs + ([("csv", cfg_csv)] if args.csv else [])
        for fmt, c in plan:
            m = seqops(["monitor", "--config", str(c), "--json"], tmp, env, 600)
            mo = m["out"] or {}
            phases = monitor_phases(tmp, mo)
            runs.append({"format": fmt, "rc": m["rc"], "wall_s": m["wall_s"],
                         "action": mo.get("action"), "drift_detected": mo.get("drift_detected"),
                         "drift_share": mo.get("drift_share"),
                         "drifted_columns": mo.get("drifted_columns"), "phases": phases,
                         **({"stderr_tail": m["stderr"][-3000:]} if m["rc"] != 0 else {})})  # fmt: skip
            print(f"[monitor] seqops monitor ({fmt}): {m['wall_s']:.1f}s rc {m['rc']} "
                  f"{mo.get('action')} drift {mo.get('drift_detected')} share {mo.get('drift_share')}; "
                  f"phases {json.dumps({k: r3(v, 2) for k, v in phases.items()})}", flush=True)  # fmt: skip
        out["monitor_runs"] = runs
        (tmp / "child.py").write_text(MONITOR_CHILD)
        a = time.perf_counter()
        c = run_cmd([PY, str(tmp / "child.py"), str(cfg), str(tmp / "plain-drift")], tmp, env, 600)
        out["plain"] = {
            "rc": c["rc"],
            "process_wall_s": time.perf_counter() - a,
            **(c["out"] or {}),
        }
        if c["rc"] != 0:
            out["plain"]["stderr_tail"] = c["stderr"][-3000:]
        print(
            f"[monitor] plain: {json.dumps({k: v for k, v in out['plain'].items() if k != 'drift'})}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report


def report(machine: dict, res: dict, total_s: float) -> None:
    tables: list[tuple[str, list[str], list[list[Any]]]] = []
    notes: list[str] = ["## Method", ""]
    verdict: list[str] = []

    dep = res.get("deploy")
    if dep:
        rows = []
        for w in dep.get("workers", []):
            for i, r in enumerate(w["runs"], 1):
                rows.append([w["label"], i, r["state"], r["latency_s"], r["scheduled_to_pending_s"],
                             r["pending_to_running_s"], r["run_s"], r["expected_to_end_s"],
                             r["client_create_to_seen_terminal_s"]])  # fmt: skip
        tables.append((
            "1. Deployment run through one long-running process worker (seconds, from the API's flow-run records)",
            ["worker query interval", "run", "state", "latency (start - expected start)",
             "SCHEDULED->PENDING (poll wait)", "PENDING->RUNNING (spawn, pull, import)",
             "run time (start->end)", "expected start -> end", "client: create -> seen done"],
            rows,
        ))  # fmt: skip
        summ = []
        plain = dep.get("plain") or []
        plain_srv = [p["wall_s"] for p in plain if p["rc"] in (0, 1) and "same server" in p["mode"]]
        for w in dep.get("workers", []):
            ok = [r for r in w["runs"] if r["state"] == "COMPLETED"]
            lat = [r["latency_s"] for r in ok]
            e2e = [r["expected_to_end_s"] for r in ok]
            summ.append([f"deployment run, query {w['label']}", len(ok), median(lat),
                         min(lat) if lat else None, max(lat) if lat else None,
                         median([r["run_s"] for r in ok]), median(e2e),
                         (median(e2e) / median(plain_srv)) if plain_srv and e2e else None])  # fmt: skip
        for p in plain:
            summ.append([f"plain `seqops retrain` ({p['mode']})", 1 if p["rc"] in (0, 1) else 0,
                         None, None, None, p["steps_sum_s"], p["wall_s"],
                         (p["wall_s"] / median(plain_srv)) if plain_srv else None])  # fmt: skip
        tables.append((
            "1b. Deployment vs plain run (seconds; ratio = end-to-end / median plain `seqops retrain` against the same server)",
            ["path", "runs ok", "median latency", "min latency", "max latency",
             "median run time (plain: sum of steps)", "median end-to-end (plain: process wall)",
             "ratio vs plain"],
            summ,
        ))  # fmt: skip
        notes += [
            f"- **1. Deployment latency.** `prefect server start` on 127.0.0.1 (SQLite database, "
            f"up in {dep.get('server_start_s', 0):.1f} s), `seqops deploy` of the tests' tiny config "
            f"(3 synthetic daily series x 160 rows, lookback 14, horizon 4, 8 units, 3 epochs, drift "
            f"sample 1,000; {dep.get('deploy_s', 0):.1f} s), then ONE `prefect worker start --pool "
            "seqops-process` (long-running, not --run-once) per setting. Flow runs of retrain/tiny "
            "are created with `POST /deployments/{id}/create_flow_run` one after another, each "
            "waited for (the deployment has a concurrency limit of 1), each after a seeded random "
            "pause of U(0, poll interval) so it lands at a random point of the worker's poll "
            "cycle. Latency = start_time - "
            "expected_start_time of the flow-run record; the split uses the first SCHEDULED, "
            "PENDING and RUNNING entries of `/flow_run_states`. PENDING->RUNNING is the worker "
            "spawning `python -m prefect.engine` in a new process, the deployment's pull step and "
            "importing flows/retrain.py (the flow's own heavy imports are inside the run time, "
            "its 'imports' step).",
            f"- Worker polling: PREFECT_WORKER_QUERY_SECONDS default = "
            f"{dep.get('worker_query_seconds_default')} s (PREFECT_WORKER_PREFETCH_SECONDS default "
            f"{dep.get('worker_prefetch_seconds_default')} s, left as is). A run created at a random "
            "moment waits on average about half a poll interval for the worker's next query; "
            "Prefect jitters the interval (clamped Poisson, jitter_range=0.3 in "
            "prefect/workers/base.py, prefect.utilities.math.clamped_poisson_interval), so a wait "
            "can reach 1.3x the setting (few samples here: read min/max, not only the median). "
            "The lever measured: the same worker with PREFECT_WORKER_QUERY_SECONDS=2.",
            "- Plain alternative: the same config as `seqops retrain --config job.yaml --json` in "
            "the same directory, with PREFECT_API_URL = the same server (apples to apples), and "
            "once without PREFECT_API_URL (Prefect starts its temporary server, as a user's "
            "one-off run does). Every run registers a new version of `tiny` in the same store.",
            f"- API requests of the benchmark are retried on 503 like Prefect's own client does: "
            f"{(dep.get('api_retries') or {}).get('503', 0)} retries on 503 "
            f"(server log: {dep.get('server_log_retryable_errors')} retryable errors, "
            f"{dep.get('server_log_database_locked')} 'database is locked' lines; "
            "PREFECT_API_LOG_RETRYABLE_ERRORS=true on the server). An earlier attempt of this "
            "script, without the retry, got one `503 Service Unavailable` on create_flow_run "
            "(a retryable server error; its cause was not logged then).",
        ]
        for w in dep.get("workers", []):
            ok = [r for r in w["runs"] if r["state"] == "COMPLETED"]
            if ok:
                verdict.append(
                    f"- Deployment, worker query {w['label']}: scheduler-to-running latency median "
                    f"{median([r['latency_s'] for r in ok]):.1f} s (min "
                    f"{min(r['latency_s'] for r in ok):.1f}, max {max(r['latency_s'] for r in ok):.1f}; "
                    f"of which PENDING->RUNNING median "
                    f"{median([r['pending_to_running_s'] for r in ok]):.1f} s); created -> done median "
                    f"{median([r['expected_to_end_s'] for r in ok]):.1f} s"
                    + (f" vs {median(plain_srv):.1f} s plain `seqops retrain` "
                       f"({median([r['expected_to_end_s'] for r in ok]) / median(plain_srv):.2f}x)."
                       if plain_srv else ".")
                )  # fmt: skip
            bad = [r for r in w["runs"] if r["state"] != "COMPLETED"]
            if bad:
                verdict.append(f"- Worker {w['label']}: {len(bad)} run(s) not COMPLETED: "
                               f"{[r['states'] for r in bad]}")  # fmt: skip

    many = res.get("many")
    if many and many.get("cases"):
        rows = []
        by = {(c["models"], c["variant"]): c for c in many["cases"]}
        for c in many["cases"]:
            base = by.get((c["models"], "dask-1"))
            rows.append([c["models"], c["variant"], c["wall_s"], f"{c['ok_models']}/{c['models']}",
                         ", ".join(c["statuses"]), median(c["model_seconds"]), c.get("span_s"),
                         c["wall_s"] - c["span_s"] if c.get("span_s") is not None else None,
                         c.get("parent_start_to_first_task_s"),
                         (base["wall_s"] / c["wall_s"]) if base else None])  # fmt: skip
        tables.append((
            "2. Many models: wall time sequential vs Dask on 2 cores (seconds; speed-up = dask-1 wall / this wall)",
            ["models", "variant", "wall s", "ok", "statuses", "median per-model s (subflow / call)",
             "span: first model start -> last model end", "outside the span (wall - span)",
             "flow start -> first model task (Dask cluster)", "speed-up vs dask-1"],
            rows,
        ))  # fmt: skip
        fits = many_model(many["cases"])
        res["many"]["fits"] = fits
        fit_rows = [[f["models"], f["variant"], f["per_model_s"], f["warmup_s"], f["fixed_s"],
                     f["serial_s"], f["parallel_s"], f["serial_s"] / (f["serial_s"] + f["parallel_s"])]
                    for f in fits.values()]  # fmt: skip
        tables.append((
            "2b. Serial and per-model parts of the sequential runs (seconds)",
            ["models", "run", "per model p (warm cadence)", "warm-up w (first model's imports)",
             "fixed S (wall - span)", "serial S + w", "parallel M x p", "serial fraction"],
            fit_rows,
        ))  # fmt: skip
        prow = []
        dask_fits = {f["models"]: f for f in fits.values() if f["variant"] == "dask-1"}
        for m, fit in sorted(dask_fits.items()):
            t1 = project(fit, m, 1)
            for n in (1, 2, 4, 8, 16):
                meas = by.get((m, f"dask-{n}"))
                prow.append([str(m), n, project(fit, m, n), t1 / project(fit, m, n),
                             meas["wall_s"] if meas else None,
                             (by[(m, "dask-1")]["wall_s"] / meas["wall_s"]) if meas else None])  # fmt: skip
        if dask_fits:
            big = max(dask_fits)
            fit = dask_fits[big]
            for m in (64, 256):
                for n in (1, 2, 4, 8, 16, 32):
                    prow.append([f"{m} (from the {big}-model fit)", n, project(fit, m, n),
                                 project(fit, m, 1) / project(fit, m, n), None, None])  # fmt: skip
            tables.append((
                "2c. Projection T(n) = S + w + ceil(M/n) x p from the dask-1 fit (one free core per worker, no store contention) vs measured",
                ["models", "workers", "projected wall s", "projected speed-up",
                 "measured wall s (2 cores)", "measured speed-up"],
                prow,
            ))  # fmt: skip
        loop_fits = {f["models"]: f for f in fits.values() if f["variant"] == "loop"}
        if dask_fits and loop_fits:
            big = max(set(dask_fits) & set(loop_fits), default=None)
            if big:
                fd, fl = dask_fits[big], loop_fits[big]
                brow = []
                for n in (2, 4, 8, 16):
                    even = next((m for m in range(1, 5001)
                                 if project(fd, m, n) < fl["serial_s"] + m * fl["per_model_s"]), None)  # fmt: skip
                    brow.append([n, even, project(fd, 64, n),
                                 fl["serial_s"] + 64 * fl["per_model_s"]])  # fmt: skip
                res["many"]["break_even_vs_loop"] = brow
                tables.append((
                    f"2d. Dask vs the plain loop, projected from the {big}-model fits (loop: "
                    f"{fl['serial_s']:.1f} s + M x {fl['per_model_s']:.2f} s)",
                    ["workers", "fewest models where Dask wins", "Dask, 64 models s",
                     "loop, 64 models s"],
                    brow,
                ))  # fmt: skip
        notes += [
            f"- **2. Many models.** `synth_panel(n_series={2 * max(many['sizes'])}, length=160, "
            "freq='D', seed=3)`; model i trains on series 2i and 2i+1 (`data.series`), lookback 14, "
            "horizon 4, 8 units, 3 epochs (early stopping off, learning_rate 0.02), batch 32, "
            "backtest_folds 2, drift disabled, CPU; gate {seasonal_naive_margin 0, "
            "champion_tolerance 10}. Each case runs in a fresh directory (fresh embedded MLflow "
            "store and ledger, fresh PREFECT_HOME, so the process starts Prefect's temporary server).",
            "- `dask-1` / `dask-2`: `seqops retrain --config many.yaml --json` with dask "
            "n_workers=1 / 2, threads_per_worker=1 (flows/many.py: a local Dask cluster of worker "
            "processes). Per-model times are read from the temporary server's SQLite database "
            "afterwards: the `retrain` subflow records (median per-model column) and the "
            "`retrain-model` task records (slots, span). `loop`: a fresh Python process that calls "
            "`retrain_flow(path)` for each model in turn (the plain alternative: no Dask, each call "
            "its own top-level flow run), timed around each call.",
            "- Fit (2b): on a sequential run, per model p = median interval between consecutive "
            "model starts after the first (the warm cadence, per-model orchestration included); "
            "span = first model start -> last model end; warm-up w = span - M x p (the first "
            "model's imports of TensorFlow, Keras, MLflow, Evidently, GX on a fresh worker); fixed "
            "S = wall - span (interpreter and CLI start, parent imports, Prefect's temporary server, "
            "Dask cluster start and stop). By construction S + w + M x p = the measured wall.",
            "- Projection (Amdahl-style, 2c): serial part S + w from the dask-1 run, parallel part "
            "M x p split over n workers: T(n) = S + w + ceil(M/n) x p. It assumes each worker has a "
            "core of its own (this box has 2, shared with the parent process and the temporary "
            "server), that workers start and warm up in parallel in about the time one does, "
            "enough memory for n worker processes, and that the shared embedded store (one SQLite "
            "file for MLflow, one for the ledger) does not serialise the workers; with many "
            "workers a server-backed store (PostgreSQL) is the assumption, not what was measured.",
            "- Every model here ends 'rejected' (registered, gate rejected: 3 epochs do not beat "
            "seasonal naive on these series; exit 1, which makes `seqops retrain` exit 1): the same "
            "work as a passing model except the alias write. 'ok' counts registered models.",
        ]
        for m in many["sizes"]:
            a, b, lp = by.get((m, "dask-1")), by.get((m, "dask-2")), by.get((m, "loop"))
            if a and b:
                verdict.append(
                    f"- {m} models: dask n_workers=2 {b['wall_s']:.1f} s vs n_workers=1 "
                    f"{a['wall_s']:.1f} s -> {a['wall_s'] / b['wall_s']:.2f}x on 2 cores"
                    + (f"; plain loop of retrain_flow calls {lp['wall_s']:.1f} s (loop / dask-2 = "
                       f"{lp['wall_s'] / b['wall_s']:.2f}: "
                       f"{'the loop is faster' if lp['wall_s'] < b['wall_s'] else 'Dask is faster'})"
                       if lp else "")
                    + f"; models ok {b['ok_models']}/{m} (2 workers), {a['ok_models']}/{m} (1 worker)."
                )  # fmt: skip
        if dask_fits:
            f = dask_fits[max(dask_fits)]
            frac = f["serial_s"] / (f["serial_s"] + f["parallel_s"])
            verdict.append(
                f"- Amdahl from the {max(dask_fits)}-model 1-worker run: serial {f['serial_s']:.0f} s "
                f"(fixed {f['fixed_s']:.0f} s + warm-up {f['warmup_s']:.0f} s), {f['per_model_s']:.2f} s "
                f"per model; serial fraction {frac:.2f} -> at most {1 / frac:.1f}x for {max(dask_fits)} "
                f"models however many workers; 64 models on 8 workers projected "
                f"{project(f, 64, 1) / project(f, 64, 8):.1f}x, on 16 "
                f"{project(f, 64, 1) / project(f, 64, 16):.1f}x."
            )  # fmt: skip

    mon = res.get("monitor")
    if mon:
        rows = []
        for i, r in enumerate(mon.get("monitor_runs", []), 1):
            ph = r.get("phases") or {}
            rows.append([f"seqops monitor #{i} ({r['format']})", r["wall_s"], r["rc"], r["action"],
                         r["drift_detected"], r3(r["drift_share"], 2), ph.get("flow_run_s"),
                         ph.get("before_task_s"), ph.get("task_minus_drift_s"),
                         ph.get("run_drift_s"), ph.get("after_task_s")])  # fmt: skip
        tables.append((
            "3. `seqops monitor` on a 1,000,000-row window (seconds; phases from the Prefect records)",
            ["run", "wall s", "rc", "action", "drift", "share", "flow run",
             "flow start -> drift-check task (imports, MLflow, ledger, load champion)",
             "drift-check task - run_drift (read drop file, to_panel, features, Evidently import)",
             "run_drift (own seconds: sample, Evidently, HTML/JSON)",
             "after the task (decide, record, artifact)"],
            rows,
        ))  # fmt: skip
        pl = mon.get("plain") or {}
        steps = pl.get("steps") or {}
        prow = [[k, v] for k, v in steps.items() if not k.startswith("run_drift")]
        for j, d in enumerate(pl.get("drift") or [], 1):
            prow.append([f"run_drift call {j} (wall; its own seconds {d['summary_seconds']:.3f})",
                         d["wall_s"]])  # fmt: skip
        prow.append(["whole plain process (interpreter start to exit)", pl.get("process_wall_s")])
        tables.append(("3b. Plain alternative: the same steps without Prefect or the CLI, one fresh "
                       "process, in the flow's order (seconds)", ["step", "s"], prow))  # fmt: skip
        pq = [r for r in mon.get("monitor_runs", []) if r["format"] == "parquet" and r["rc"] == 0]
        dr = [d["wall_s"] for d in pl.get("drift") or []]
        if pq and dr:
            wall = median([r["wall_s"] for r in pq])
            flow_s = median([(r.get("phases") or {}).get("flow_run_s") or float("nan") for r in pq])
            body = sum(v for k, v in steps.items() if not k.startswith("import seqops"))
            cmp_rows = [
                ["`seqops monitor` wall vs run_drift alone, warm (2nd call)", wall, dr[-1], wall / dr[-1]],
                ["`seqops monitor` wall vs run_drift alone, first call in the process", wall, dr[0],
                 wall / dr[0]],
                ["monitor flow run vs plain steps (MLflow import + champion + frame + Evidently "
                 "import + run_drift)", flow_s, body, flow_s / body],
                ["`seqops monitor` wall vs the whole plain process", wall, pl.get("process_wall_s"),
                 wall / pl["process_wall_s"] if pl.get("process_wall_s") else None],
            ]  # fmt: skip
            tables.append(("3c. Monitor vs the plain alternative (parquet runs, medians)",
                           ["comparison", "monitor s", "plain s", "ratio"], cmp_rows))  # fmt: skip
        sam = ((pl.get("drift") or [{}])[0]).get("sampled") or {}
        rt = mon.get("retrain") or {}
        notes += [
            "- **3. Monitor.** One `seqops retrain` of the tiny config with gate "
            "{seasonal_naive_margin: 0.0, champion_tolerance: 10.0, promote_first_to_champion: "
            f"true}}, 30 epochs, learning_rate 0.02, 16 units (retrain {rt.get('wall_s', 0):.1f} s, "
            f"status {rt.get('status')}, MASE { ({k: r3(v) for k, v in (rt.get('mase') or {}).items()}) }; "
            "`seqops status` aliases: "
            f"{(mon.get('status') or {}).get('aliases')}). Drop file: `synth_panel(n_series=10, "
            "length=100,000, freq='h', trend=0.0, seed=3)` = "
            f"{mon.get('drop_rows', 0):,} rows ({mon.get('drop_parquet_mib', 0):.1f} MiB parquet, "
            f"{mon.get('drop_csv_mib', 0):.1f} MiB CSV). monitor.recent_rows = 100,000 per series, so "
            "the recent window is all 1,000,000 rows; monitor.consecutive = 10 and cooldown 0, so no "
            "check triggers a retrain (drift gives action 'waiting'). No PREFECT_API_URL: each "
            "`seqops monitor` starts Prefect's temporary server, as a one-off command does.",
            f"- Drift sampling: drift.sample_size = {mon.get('drift_sample_size', 0):,} (the "
            "default). Reference = the champion's training drift frame "
            f"({pl.get('reference_rows')} rows: the tiny training set), current = "
            f"{pl.get('recent_rows') or 0:,} rows; rows used: reference {sam.get('reference_rows_used')}, "
            f"current {sam.get('current_rows_used')} (sampled: {sam.get('was_sampled')}). The "
            "drop series run 100,000 hourly steps from a daily-trained reference, so drift is "
            "expected; the decision does not change the timing.",
            "- Phases: the monitor flow run and its drift-check task (start/end) from the temporary "
            "server's SQLite database after the command, and run_drift's own `seconds` from its "
            "drift_summary.json (it starts after `from evidently import ...`, so Evidently's import "
            "lands in 'task - run_drift'). The flow imports MLflow/Keras lazily, so 'flow start -> "
            "task' includes those imports.",
            "- Plain alternative: a fresh process that does the flow's work without Prefect's "
            "orchestration or the CLI, each step timed in the flow's order: `load_champion`, "
            "`flows.monitor.recent_frame`, Evidently's import, then `components.drift.run_drift` on "
            "the same frames twice (cold, then warm).",
        ]
        if pq and dr:
            verdict.append(
                f"- Monitor on 1M rows: `seqops monitor` {wall:.1f} s wall (parquet drop file; flow "
                f"run {flow_s:.1f} s); run_drift on the same frames {dr[-1]:.2f} s warm / {dr[0]:.2f} s "
                f"first call (sample_size {mon.get('drift_sample_size', 0):,}): the command is "
                f"{wall / dr[-1]:.0f}x the drift component; reading and shaping the 1M rows takes "
                f"{steps.get('recent frame (read drop file, to_panel, drift features)', float('nan')):.2f} s."
            )  # fmt: skip
        csv = [r for r in mon.get("monitor_runs", []) if r["format"] == "csv" and r["rc"] == 0]
        if csv and pq:
            verdict.append(
                f"- Same check with a CSV drop file: {csv[0]['wall_s']:.1f} s wall "
                f"(task - run_drift {(csv[0].get('phases') or {}).get('task_minus_drift_s') or float('nan'):.2f} s "
                f"vs {median([(r.get('phases') or {}).get('task_minus_drift_s') or float('nan') for r in pq]):.2f} s "
                "with parquet)."
            )  # fmt: skip
        if mon.get("error"):
            verdict.append(f"- Monitor: {mon['error']}")

    notes += [f"- {n}" for n in res.get("extra_notes") or []]
    for name in ("deploy", "many", "monitor"):
        sec = res.get(name)
        if sec:
            notes.append(
                f"- Section {name}: measured {sec.get('measured_at', '?')}, "
                f"{sec.get('section_s', 0):.0f} s, load average before {sec.get('loadavg_before')}, "
                f"after {sec.get('loadavg_after')}."
            )
    notes += [
        f"- Last invocation: load average at start {machine.get('loadavg_at_start')}, at end "
        f"{machine.get('loadavg_at_end')}; shared 2-core box. Total benchmark time {total_s:.0f} s.",
        "",
        "## Verdict",
        "",
        *verdict,
    ]
    write_results(
        "unattended",
        title="Unattended operation: deployment latency, many models on Dask, monitor on 1M rows",
        machine=machine,
        tables=tables,
        data={**res, "total_runtime_s": total_s},
        notes="\n".join(notes),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sections", default="deploy,many,monitor")
    ap.add_argument("--runs", type=int, default=3, help="deployment runs per worker setting")
    ap.add_argument("--plain-runs", type=int, default=2, help="plain `seqops retrain` runs")
    ap.add_argument("--no-ephemeral", dest="ephemeral", action="store_false",
                    help="skip the plain run with Prefect's temporary server")  # fmt: skip
    ap.add_argument("--models", default="4,16", help="model counts for the many-model section")
    ap.add_argument("--monitor-runs", type=int, default=2, help="seqops monitor runs (parquet)")
    ap.add_argument("--no-csv", dest="csv", action="store_false", help="skip the CSV monitor run")
    ap.add_argument("--sample-size", type=int, default=50_000, help="drift.sample_size (monitor)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--merge", action="store_true",
                    help="keep the sections not run now from bench/results/unattended.json")  # fmt: skip
    ap.add_argument("--note", action="append", default=[],
                    help="a line for the notes (kept in the JSON)")  # fmt: skip
    ap.add_argument("--report-only", action="store_true",
                    help="re-render the tables and notes from bench/results/unattended.json")  # fmt: skip
    args = ap.parse_args()
    if args.report_only:
        old = json.loads((RESULTS_DIR / "unattended.json").read_text())
        machine = old.pop("machine")
        total = old.pop("total_runtime_s")
        old.pop("benchmark", None)
        old["extra_notes"] = [*(old.get("extra_notes") or []), *args.note]
        report(machine, old, total)
        return
    t0 = time.perf_counter()
    machine = machine_info(
        extra_packages=(
            "prefect",
            "prefect-dask",
            "dask",
            "distributed",
            "mlflow",
            "evidently",
            "pandas",
            "seqops",
        )  # fmt: skip
    )
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    res: dict[str, Any] = {"sections": sections, "args": vars(args)}
    for name, fn in (
        ("deploy", section_deploy),
        ("many", section_many),
        ("monitor", section_monitor),
    ):
        if name in sections:
            a = time.perf_counter()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            load0 = loadavg()
            try:
                res[name] = fn(args)
            except Exception as exc:  # noqa: BLE001  a failed section is reported, the others run
                import traceback

                res[name] = {"error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()[-3000:]}  # fmt: skip
                print(f"[{name}] FAILED: {exc}", flush=True)
            res[name]["section_s"] = time.perf_counter() - a
            res[name].update(
                {"measured_at": started, "loadavg_before": load0, "loadavg_after": loadavg()}
            )
            print(f"[{name}] section took {res[name]['section_s']:.0f}s", flush=True)
    machine["loadavg_at_end"] = loadavg()
    total = time.perf_counter() - t0
    prev = RESULTS_DIR / "unattended.json"
    if args.merge and prev.exists():
        old = json.loads(prev.read_text())
        kept = {}
        for name in ("deploy", "many", "monitor"):
            if name not in sections and name in old:
                sec = old[name]
                sec.setdefault("measured_at", f"run of {old['machine'].get('date')}")
                sec.setdefault("loadavg_before", old["machine"].get("loadavg_at_start"))
                sec.setdefault("loadavg_after", old["machine"].get("loadavg_at_end"))
                res[name] = sec
                kept[name] = sec["measured_at"]
                total += sec.get("section_s") or 0.0
        res["sections"] = [n for n in ("deploy", "many", "monitor") if n in res]
        res["extra_notes"] = old.get("extra_notes") or []
        machine["sections_kept_from_previous_run"] = kept
    res["extra_notes"] = [*(res.get("extra_notes") or []), *args.note]
    report(machine, res, total)
    print(f"total runtime {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
