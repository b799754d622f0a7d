"""End-to-end ``seqops retrain --config configs/co2.yaml --json``, twice, in a fresh directory.

data/ and configs/ are copied into a new temporary directory; the CLI runs there as a subprocess
(cwd = that directory, environment without MLFLOW_TRACKING_URI, so the embedded store under
.seqops/ is used). The second run finds the champion set by the first and compares against it.

Reported per run: total wall time (process start to exit), the step timings from the JSON
outcome, the remainder (wall - sum of steps: interpreter/CLI start-up, Prefect flow and task
machinery, artifact creation), exit code, status, version, aliases and test MASE.

    .venv/bin/python bench/retrain_e2e.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, ROOT, loadavg, machine_info, median, write_results  # noqa: E402

TARGET_S = 180.0
STEPS = (
    "imports",
    "validation",
    "prepare",
    "training",
    "evaluation",
    "champion",
    "drift",
    "registry",
)
SEQOPS = ROOT / ".venv" / "bin" / "seqops"


def _parse_outcome(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


_TS = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) ")  # "HH:MM:SS.mmm LEVEL ..."


def _log_phases(stderr: str, start_epoch: float, end_epoch: float) -> dict | None:
    """Split the wall time with the Prefect log timestamps (HH:MM:SS.mmm, local time).

    start -> 'Starting temporary server' -> 'Beginning flow run' -> flow 'Finished in state' -> exit.
    """
    marks: dict[str, float] = {}
    day = datetime.fromtimestamp(start_epoch).date()
    for line in stderr.splitlines():
        m = _TS.match(line)
        if not m:
            continue
        h, mi, se, ms = (int(x) for x in m.groups())
        t = (
            datetime.combine(day, datetime.min.time())
            .replace(hour=h, minute=mi, second=se, microsecond=ms * 1000)
            .timestamp()
        )
        if t < start_epoch - 43200:  # crossed midnight
            t += 86400
        if "Starting temporary server" in line and "server_start" not in marks:
            marks["server_start"] = t
        elif "Beginning flow run" in line and "flow_start" not in marks:
            marks["flow_start"] = t
        elif "Flow run" in line and "Finished in state" in line:
            marks["flow_end"] = t
    if not {"flow_start", "flow_end"} <= marks.keys():
        return None
    server = marks.get("server_start", marks["flow_start"])
    return {
        "process start -> Prefect temporary server start": server - start_epoch,
        "temporary server start -> flow run begins": marks["flow_start"] - server,
        "flow run (steps + task orchestration)": marks["flow_end"] - marks["flow_start"],
        "flow finished -> process exit": end_epoch - marks["flow_end"],
    }


def run_once(workdir: Path, n: int, timeout: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [str(SEQOPS), "retrain", "--config", "configs/co2.yaml", "--json"]
    print(f"run {n}: {' '.join(cmd)}  (cwd {workdir})", flush=True)
    load0 = loadavg()
    start_epoch = time.time()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        return {
            "run": n,
            "exit_code": None,
            "wall_s": float(timeout),
            "error": f"timed out after {timeout}s",
            "stderr_tail": (exc.stderr or b"")[-3000:].decode(errors="replace")
            if isinstance(exc.stderr, bytes)
            else str(exc.stderr)[-3000:],
        }
    wall = time.perf_counter() - t0
    end_epoch = time.time()
    (workdir / f"run{n}.stderr.log").write_text(proc.stderr)
    log_copy = RESULTS_DIR / f"retrain_e2e_run{n}.stderr.log"
    log_copy.parent.mkdir(parents=True, exist_ok=True)
    log_copy.write_text(proc.stderr)
    out = _parse_outcome(proc.stdout)
    res: dict = {
        "run": n,
        "exit_code": proc.returncode,
        "wall_s": wall,
        "loadavg_before": load0,
        "target_met": wall < TARGET_S,
        "stderr_log": str(log_copy.relative_to(ROOT)),
        "prefect_server_lines": [ln for ln in proc.stderr.splitlines() if "server" in ln.lower()][
            :5
        ],
    }
    if out is None:
        res["error"] = "no JSON object on stdout"
        res["stdout_tail"] = proc.stdout[-2000:]
        res["stderr_tail"] = proc.stderr[-3000:]
        return res
    timings = {k: float(v) for k, v in (out.get("timings") or {}).items()}
    steps_sum = sum(timings.values())
    metrics = out.get("metrics") or {}
    res.update(
        {
            "status": out.get("status"),
            "json_exit_code": out.get("exit_code"),
            "version": out.get("version"),
            "aliases": out.get("aliases"),
            "timings": timings,
            "steps_sum_s": steps_sum,
            "remainder_s": wall - steps_sum,
            "mase": {k: v.get("mase") for k, v in metrics.items()},
            "gate": {
                "passed": (out.get("gate") or {}).get("passed"),
                "reasons": (out.get("gate") or {}).get("reasons"),
            },
            "training": out.get("training"),
            "drift": {
                k: (out.get("drift") or {}).get(k)
                for k in ("drift_detected", "drift_share", "drifted_columns", "reference_label")
            }
            if out.get("drift")
            else None,
            "error": out.get("error"),
            "phases_from_log": _log_phases(proc.stderr, start_epoch, end_epoch),
        }
    )
    if proc.returncode not in (0, 1):
        res["stderr_tail"] = proc.stderr[-3000:]
    m = res["mase"]
    print(
        f"  exit {proc.returncode}, {res['status']}, v{res['version']}, wall {wall:.1f}s, "
        f"steps {steps_sum:.1f}s, remainder {wall - steps_sum:.1f}s, MASE model "
        f"{m.get('model')} / naive {m.get('naive')} / seasonal {m.get('seasonal_naive')}",
        flush=True,
    )
    return res


def startup_probes(workdir: Path, repeats: int = 2) -> dict:
    """Floors for the remainder: CLI start-up, and importing Prefect + the flow module."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    py = str(ROOT / ".venv" / "bin" / "python")
    probes = {
        "seqops --help (CLI start-up)": [str(SEQOPS), "--help"],
        "python -c 'import flows.retrain' (Prefect + flow module import)": [
            py,
            "-c",
            "import flows.retrain",
        ],
    }
    out = {}
    for name, cmd in probes.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, timeout=120)
            times.append(time.perf_counter() - t0)
        out[name] = median(times)
        print(f"  probe {name}: {out[name]:.2f}s (median of {repeats})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=420, help="per run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    t_start = time.perf_counter()
    machine = machine_info(extra_packages=("prefect", "mlflow", "seqops"))
    machine["MLFLOW_TRACKING_URI_removed"] = "MLFLOW_TRACKING_URI" in os.environ
    machine["PREFECT_API_URL_set"] = "PREFECT_API_URL" in os.environ

    tmp = Path(tempfile.mkdtemp(prefix="seqops-bench-retrain-"))
    probes: dict = {}
    try:
        shutil.copytree(ROOT / "data", tmp / "data")
        shutil.copytree(ROOT / "configs", tmp / "configs")
        runs = [run_once(tmp, i, args.timeout) for i in range(1, args.runs + 1)]
        probes = startup_probes(tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    machine["loadavg_at_end"] = loadavg()

    def fmt(x, nd=3):
        return None if x is None else round(float(x), nd)

    summary_rows = []
    for r in runs:
        m = r.get("mase") or {}
        summary_rows.append(
            [
                f"run {r['run']}",
                r["wall_s"],
                r.get("exit_code"),
                r.get("status") or r.get("error"),
                r.get("version"),
                ", ".join(r.get("aliases") or []) or "-",
                fmt(m.get("model")),
                fmt(m.get("naive")),
                fmt(m.get("seasonal_naive")),
                fmt(m.get("champion")),
                "yes" if r.get("target_met") else "NO",
            ]
        )
    tables = [
        (
            "seqops retrain (co2) end to end",
            [
                "run",
                "wall s",
                "exit",
                "status",
                "version",
                "aliases",
                "MASE model",
                "MASE naive",
                "MASE seasonal naive",
                "MASE champion",
                f"< {TARGET_S:g} s?",
            ],
            summary_rows,
        )
    ]
    step_rows = []
    for key in (*STEPS, "sum of steps", "remainder (start-up, Prefect, artifacts)", "total wall"):
        row = [key]
        for r in runs:
            t = r.get("timings") or {}
            if key == "sum of steps":
                row.append(r.get("steps_sum_s"))
            elif key.startswith("remainder"):
                row.append(r.get("remainder_s"))
            elif key == "total wall":
                row.append(r["wall_s"])
            else:
                row.append(t.get(key))
        for r in runs:
            v = row[1 + runs.index(r)]
            row.append(f"{100 * v / r['wall_s']:.0f}%" if isinstance(v, (int, float)) else "-")
        step_rows.append(row)
    tables.append(
        (
            "Step timings (seconds, from the JSON 'timings'; % of wall)",
            ["step", *[f"run {r['run']} s" for r in runs], *[f"run {r['run']} %" for r in runs]],
            step_rows,
        )
    )

    phase_rows = []
    phases = [r.get("phases_from_log") or {} for r in runs]
    keys = list(next((p for p in phases if p), {}).keys())
    for key in keys:
        phase_rows.append([key, *[p.get(key) for p in phases]])
    for key in keys[2:3]:
        phase_rows.append(
            [
                "  of which outside the timed steps (orchestration)",
                *[
                    (p.get(key) - r["steps_sum_s"]) if p and r.get("steps_sum_s") else None
                    for p, r in zip(phases, runs, strict=True)
                ],
            ]
        )
    if phase_rows:
        tables.append(
            (
                "Wall time split with the Prefect log timestamps (seconds; +-1 ms log resolution)",
                ["phase", *[f"run {r['run']} s" for r in runs]],
                phase_rows,
            )
        )
    tables.append(
        (
            "Start-up floors inside the remainder (separate processes, same directory)",
            ["probe", "wall s"],
            [[k, v] for k, v in probes.items()],
        )
    )

    verdict = []
    for r in runs:
        ok = r.get("target_met")
        tr = r.get("training") or {}
        verdict.append(
            f"- run {r['run']}: {r['wall_s']:.1f} s wall -> target < {TARGET_S:g} s "
            f"{'met' if ok else 'NOT met'}; exit {r.get('exit_code')} ({r.get('status')}); "
            f"training {tr.get('epochs_run')} epochs (best {tr.get('best_epoch')}), "
            f"{tr.get('samples_per_second')} windows/s on {tr.get('device')}; gate: "
            f"{'passed' if (r.get('gate') or {}).get('passed') else 'rejected'}"
            + (
                f" ({'; '.join(r['gate']['reasons'])})"
                if (r.get("gate") or {}).get("reasons")
                else ""
            )
            + (
                f"; drift vs {r['drift']['reference_label']}: detected={r['drift']['drift_detected']} "
                f"(share {r['drift']['drift_share']}, {r['drift']['drifted_columns'] or 'no columns'})"
                if r.get("drift")
                else ""
            )
            + (f"; error: {r['error']}" if r.get("error") else "")
        )
    notes = "\n".join(
        [
            "## Method",
            "",
            "- Fresh temporary directory with copies of data/ and configs/; `.venv/bin/seqops retrain "
            "--config configs/co2.yaml --json` as a subprocess there, environment minus "
            "MLFLOW_TRACKING_URI (embedded MLflow store under .seqops/). Prefect settings untouched (the "
            "flow uses whatever Prefect profile/ephemeral server the user's environment gives it).",
            "- Wall = subprocess start to exit. Remainder = wall - sum of the step timings: Python + CLI "
            "start-up, config load, Prefect flow/task machinery (ephemeral API server start), the Prefect "
            "markdown artifact, and anything else outside the timed steps.",
            "- Run 2 reuses the directory, so it compares against the champion registered by run 1.",
            f"- Load average at start {machine.get('loadavg_at_start')}, at end {machine.get('loadavg_at_end')} "
            "(shared 2-core box).",
            "",
            "## Verdict",
            "",
            *verdict,
        ]
    )
    write_results(
        "retrain_e2e",
        title="seqops retrain end to end (co2)",
        machine=machine,
        tables=tables,
        data={
            "target_s": TARGET_S,
            "runs": runs,
            "startup_probes": probes,
            "total_runtime_s": time.perf_counter() - t_start,
        },
        notes=notes,
    )
    print(f"total runtime {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
