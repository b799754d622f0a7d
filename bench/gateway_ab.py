"""Same-run A/B of the gateway's sequential latency: this checkout against an earlier commit.

The box's speed drifts by up to 2x between minutes (bench/results/gateway.md, table 1b), so two
runs of bench/gateway.py cannot tell a 0.3 ms change from the drift. This starts one gateway from
this checkout and one from REF (a temporary ``git worktree``, put first on PYTHONPATH; same venv,
same store, same serving config), then alternates blocks of sequential requests between them on
keep-alive raw sockets (bench/gateway.py's ``RawHTTP``), with direct calls of this checkout's
served function interleaved as the common baseline. Two rounds, gateways started in swapped
order.

    .venv/bin/python bench/gateway.py --keep            # once: a store (prints its path)
    .venv/bin/python bench/gateway_ab.py --store DIR [--ref HEAD~1] [--per 250 --blocks 8]

About 70 s on 2 cores with a store (without one it builds it first: ~2 min more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as G  # noqa: E402
import numpy as np  # noqa: E402
from _common import ROOT, machine_info, write_results  # noqa: E402


def _store(path: Path | None) -> dict[str, Any]:
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="seqops-bench-ab-"))
        print(f"set-up in {path}: 3 retrains", flush=True)
        (path / "retrains.json").write_text(json.dumps(G.build_store(path)["retrains"]))
    return {
        "tmp": path,
        "uri": f"sqlite:///{(path / '.seqops' / 'mlflow.db').resolve()}",
        "cfg": path / "good.yaml",
    }


def _start(store: dict, pythonpath: str | None, mode: str = "--no-micro-batch") -> G.Gateway:
    base = G.env_for
    try:
        if pythonpath:
            G.env_for = lambda uri: {**base(uri), "PYTHONPATH": pythonpath}  # type: ignore[assignment]
        gw = G.Gateway(store, G.free_port(), mode).start()
    finally:
        G.env_for = base  # type: ignore[assignment]
    gw.wait_ready()
    return gw


def one_round(store: dict, tree: Path, items, per: int, blocks: int, order: list[str]) -> dict:
    from serving.models import load_served

    gws: dict[str, G.Gateway] = {}
    try:
        for name in order:
            gws[name] = _start(store, str(tree) if name == "ref" else None)
        model = load_served(G.MODEL, "2")
        xs = [np.asarray(it.window, np.float32)[None, :, None] for it in items]
        clients = {n: G.RawHTTP(g.port) for n, g in gws.items()}
        G.quiet_gc()
        http: dict[str, list[float]] = {n: [] for n in gws}
        server: dict[str, list[float]] = {n: [] for n in gws}
        direct: list[float] = []
        k = 0
        for n, c in clients.items():  # warm-up
            for i in range(300):
                c.post("/predict", G.body_bytes(items[i % len(items)], f"ab-w-{n}-{i}"))
        for i in range(300):
            model.predict(xs[i % len(xs)])
        for b in range(blocks):
            for _ in range(per):
                x = xs[k % len(xs)]
                k += 1
                t0 = time.perf_counter()
                model.predict(x)
                direct.append((time.perf_counter() - t0) * 1000)
            for n, c in clients.items():
                for _ in range(per):
                    body = G.body_bytes(items[k % len(items)], f"ab-{n}-{b}-{k}")
                    k += 1
                    t0 = time.perf_counter()
                    d = json.loads(c.post("/predict", body))
                    http[n].append((time.perf_counter() - t0) * 1000)
                    server[n].append(float(d["latency_ms"]))
        for c in clients.values():
            c.close()
        out: dict[str, Any] = {"order": order, "direct": G.pct(direct)}
        for n in gws:
            h = G.pct(http[n])
            out[n] = {
                "http": h,
                "server_latency_ms": G.pct(server[n]),
                "added_ms": {q: h[q] - out["direct"][q] for q in ("p50", "p95", "p99")},
            }
        return out
    finally:
        for g in gws.values():
            g.stop()


def saturation(store: dict, tree: Path, items, duration_s: float, rounds: int) -> list[dict]:
    """Both gateways micro-batching, alternated: 64 connections, one request in flight each."""
    import asyncio

    bodies = [G.body_bytes(it, "X") for it in items]
    out = []
    for r in range(rounds):
        for name in ("ref", "this") if r % 2 == 0 else ("this", "ref"):
            gw = _start(store, str(tree) if name == "ref" else None, "--micro-batch")
            try:
                G.quiet_gc()
                res = asyncio.run(G.saturate(gw.port, bodies, 64, 2.0, duration_s, f"ab{r}{name}"))
                print(f"  {name}: {res['rps']:.0f} req/s", flush=True)
                out.append({"round": r + 1, "gateway": name, **res})
            finally:
                gw.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, help="a store kept by bench/gateway.py --keep")
    ap.add_argument("--ref", default="HEAD~1", help="the commit to compare with (default HEAD~1)")
    ap.add_argument("--per", type=int, default=250, help="requests per block and gateway")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument(
        "--saturate",
        type=float,
        default=0.0,
        metavar="S",
        help="also compare micro-batching throughput at saturation, S seconds a run, 2 rounds",
    )
    args = ap.parse_args()
    sha = subprocess.run(
        ["git", "rev-parse", "--short", args.ref], cwd=ROOT, capture_output=True, text=True
    )
    if sha.returncode != 0:
        raise SystemExit(f"unknown ref {args.ref!r}: {sha.stderr.strip()}")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    machine = machine_info(extra_packages=("uvicorn", "starlette"))
    store = _store(args.store)
    os.environ["MLFLOW_TRACKING_URI"] = store["uri"]
    tree = Path(tempfile.mkdtemp(prefix="seqops-ab-ref-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-f", str(tree), sha.stdout.strip()],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        from components.config import load_config
        from serving.replay import held_out_items

        items = held_out_items(load_config(store["cfg"]))
        rounds: list[dict[str, Any]] = []
        for order in (["ref", "this"], ["this", "ref"]):
            print(f"round {len(rounds) + 1}: gateways started {order}", flush=True)
            rounds.append(one_round(store, tree, items, args.per, args.blocks, order))
        sat = saturation(store, tree, items, args.saturate, 2) if args.saturate else []
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        shutil.rmtree(tree.parent, ignore_errors=True)
    labels = {"ref": f"{args.ref} ({sha.stdout.strip()})", "this": f"this checkout ({head}"
              + (", uncommitted changes)" if dirty else ")")}  # fmt: skip
    rows = []
    for i, r in enumerate(rounds, 1):
        for n in ("ref", "this"):
            g = r[n]
            rows.append([i, labels[n], g["http"]["p50"], g["http"]["p95"], g["http"]["p99"],
                         g["server_latency_ms"]["p50"], g["server_latency_ms"]["p95"],
                         r["direct"]["p95"], g["added_ms"]["p95"]])  # fmt: skip
    ratio = float(np.mean([r["this"]["http"]["p95"] / r["ref"]["http"]["p95"] for r in rounds]))
    added = {n: float(np.mean([r[n]["added_ms"]["p95"] for r in rounds])) for n in ("ref", "this")}
    tables: list[tuple[str, list[str], list[list[Any]]]] = [
        (
            "Sequential latency, ms (raw-socket client)",
            [
                "round",
                "gateway",
                "HTTP p50",
                "HTTP p95",
                "HTTP p99",
                "server p50",
                "server p95",
                "direct p95",
                "added p95",
            ],  # fmt: skip
            rows,
        )
    ]
    if sat:
        tables.append(
            (
                f"Micro-batching at saturation (64 in flight, {args.saturate:g} s a run)",
                [
                    "round",
                    "gateway",
                    "req/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "non-200",
                    "transport err",
                ],  # fmt: skip
                [
                    [
                        x["round"],
                        labels[x["gateway"]],
                        x["rps"],
                        x["latency_ms"]["p50"],
                        x["latency_ms"]["p95"],
                        x["latency_ms"]["p99"],
                        x["non_200"],
                        sum(x["transport_errors"].values()),
                    ]
                    for x in sat
                ],  # fmt: skip
            )
        )
    notes = (
        "## Notes\n\n"
        f"- HTTP p95, this / ref, mean over the rounds: {ratio:.2f}. Added p95 (HTTP p95 - "
        f"direct p95), mean over the rounds: ref {added['ref']:.2f} ms, this {added['this']:.2f} "
        "ms.\n"
        f"- Sequential requests, {args.blocks} blocks of {args.per} per gateway per round, "
        "alternated with direct calls of this checkout's served function (the common baseline); "
        "raw keep-alive sockets; 300 warm-up requests per gateway. Both gateways run in the same "
        "venv on the same store and config; only the repository code differs.\n"
        "- 2 shared cores: the client, both gateways and the direct calls share them (one "
        "gateway is idle while the other is measured)."
    )
    write_results(
        "gateway_ab",
        title=f"seqops serve: same-run A/B, {labels['this']} vs {labels['ref']}",
        machine=machine,
        tables=tables,
        data={
            "ref": args.ref,
            "ref_sha": sha.stdout.strip(),
            "head": head,
            "dirty": dirty,
            "rounds": rounds,
            "http_p95_ratio_this_over_ref": ratio,
            "added_p95_mean": added,
            "saturation": sat,
        },  # fmt: skip
        notes=notes,
    )


if __name__ == "__main__":
    main()
