"""The promotion engine on a real MLflow store and real ledgers (SQLite, PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO, require_service, tiny_config, write_yaml
from tests.flows.helpers import invoke

pytestmark = pytest.mark.slow

PASSING = {"seasonal_naive_margin": 0.0, "promote_first_to_champion": True}
TRAIN = {"epochs": 30, "learning_rate": 0.02, "early_stopping": {"patience": 8}}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_panel_frame, prefect_server):
    """One real retrain (v1, champion + challenger through the ledger) plus extra versions of the
    same logged model: v2..v9 passed their gate, v10 was rejected."""
    import mlflow
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("promo")
    data = tmp / "panel.csv"
    tiny_panel_frame.to_csv(data, index=False)
    cfg = write_yaml(
        tmp / "job.yaml", tiny_config(tmp, data, gate=PASSING, training=TRAIN, model={"units": 16})
    )
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        code, out, err = invoke("retrain", "--config", str(cfg), "--json")
    finally:
        os.chdir(cwd)
    assert code == 0, err[-3000:]
    uri = f"sqlite:///{(tmp / '.seqops' / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v1 = client.get_model_version("tiny", "1")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for i in range(2, 11):
        tags = {**v1.tags, "seqops.gate": "passed" if i < 10 else "rejected"}
        mlflow.register_model(v1.source, "tiny", tags=tags)
    return {"tmp": tmp, "uri": uri, "cfg": cfg, "client": client, "data": data}


def _cli(store, *args, ledger_url=None, model="tiny"):
    cwd = os.getcwd()
    os.chdir(store["tmp"])
    extra = ["--ledger-url", ledger_url] if ledger_url else []
    try:
        return invoke(*args, *extra, "--json")
    finally:
        os.chdir(cwd)


def _ledger(store, url=None):
    from registry.ledger import Ledger, resolve_ledger_url

    return Ledger(resolve_ledger_url(url, store["tmp"] / ".seqops"))


def _mlflow_aliases(store, model="tiny"):
    return {a: str(v) for a, v in store["client"].get_registered_model(model).aliases.items()}


def assert_chain(ledger, model="tiny"):
    """Every champion move names the champion it replaced as its gate's baseline, and the chain of
    moves is unbroken (each starts where the previous one ended)."""
    moves = [
        e for e in ledger.history(model) if e["kind"] == "alias_set" and e["alias"] == "champion"
    ]
    for prev, cur in zip(moves, moves[1:], strict=False):
        assert cur["from_version"] == prev["to_version"], (prev, cur)
        assert cur["baseline_version"] == cur["from_version"]
    return moves


def test_retrain_wrote_its_aliases_through_the_ledger(store):
    ledger = _ledger(store)
    assert ledger.aliases("tiny") == {"champion": "1", "challenger": "1"}
    assert [e["trigger"] for e in ledger.history("tiny")] == ["retrain", "retrain"]


def test_gate_is_recomputed_and_an_inconclusive_test_never_promotes(store):
    code, out, err = _cli(store, "promote", "tiny", "--version", "2", "--to", "champion")
    assert code == 1, err[-3000:]
    assert out["status"] == "inconclusive" and out["champion_after"] == "1"
    dm = next(c for c in out["gate"]["checks"] if c["check"] == "diebold_mariano")
    assert dm["verdict"] == "inconclusive" and dm["p_value"] == 1.0  # the same model: no evidence
    assert (
        out["gate"]["evidence"]["windows"] > 0 and out["gate"]["evidence"]["champion"] is not None
    )
    last = _ledger(store).history("tiny")[-1]
    assert (
        last["kind"] == "gate"
        and last["outcome"] == "inconclusive"
        and last["baseline_version"] == "1"
    )
    assert _mlflow_aliases(store)["champion"] == "1"
    code, st, _ = _cli(store, "status", "tiny")
    assert st["pending"][0]["version"] == "2"


def test_dry_run_changes_nothing(store):
    before = len(_ledger(store).history("tiny"))
    summary = store["tmp"] / "summary.md"
    code, out, _ = _cli(
        store,
        "promote",
        "tiny",
        "--version",
        "3",
        "--to",
        "shadow",
        "--dry-run",
        "--summary-md",
        str(summary),
    )
    assert code == 0 and out["status"] == "dry-run"
    assert "tiny v3 → shadow: **dry-run**" in summary.read_text()
    assert len(_ledger(store).history("tiny")) == before and "shadow" not in _mlflow_aliases(store)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["promote", "nope", "--version", "1", "--to", "champion"], "unknown model 'nope'"),
        (["history", "nope"], "unknown model 'nope'"),
        (["status", "nope"], "unknown model 'nope'"),
        (["reconcile", "nope"], "unknown model 'nope'"),
        (["promote", "tiny", "--version", "99", "--to", "champion"], "unknown version 99"),
        (
            ["promote", "tiny", "--version", "other-model/2", "--to", "champion"],
            "belongs to model 'other-model'",
        ),
        (["promote", "tiny", "--version", "2", "--to", "champoin"], "not a lifecycle step"),
        (["promote", "tiny", "--version", "2.5", "--to", "champion"], "malformed --version"),
        (["promote", "tiny", "--version", "chalenger", "--to", "champion"], "malformed --version"),
        (
            ["promote", "tiny", "--version", "10", "--to", "champion"],
            "never passed the offline gate",
        ),
        (["promote", "tiny", "--version", "3", "--to", "champion", "--force"], "needs --reason"),
    ],
)
def test_bad_input_is_refused_with_nothing_changed(store, args, needle):
    ledger = _ledger(store)
    before = (len(ledger.history("tiny")), _mlflow_aliases(store))
    code, out, err = _cli(store, *args)
    assert code == 2 and needle in out["error"], err[-2000:]
    assert (len(ledger.history("tiny")), _mlflow_aliases(store)) == before


def test_unreachable_ledger_is_a_failure_with_nothing_changed(store):
    before = _mlflow_aliases(store)
    code, out, _ = _cli(
        store,
        "promote",
        "tiny",
        "--version",
        "3",
        "--to",
        "shadow",
        ledger_url="postgresql://postgres@127.0.0.1:1/nowhere",
    )
    assert code == 3 and "ledger database unreachable" in out["error"]
    assert _mlflow_aliases(store) == before


def test_lifecycle_forced_moves_rollback_walk_and_history(store):
    code, out, _ = _cli(store, "promote", "tiny", "--version", "3", "--to", "shadow")
    assert code == 0 and _mlflow_aliases(store)["shadow"] == "3"
    for v in ("3", "4"):
        code, out, err = _cli(
            store,
            "promote",
            "tiny",
            "--version",
            v,
            "--to",
            "champion",
            "--force",
            "--reason",
            "test",
        )
        assert code == 0 and out["forced"], err[-2000:]
    aliases = _mlflow_aliases(store)
    assert (
        aliases["champion"] == "4"
        and aliases["previous-champion"] == "3"
        and "shadow" not in aliases
    )
    code, out, _ = _cli(store, "promote", "tiny", "--version", "4", "--to", "champion")
    assert code == 0 and out["status"] == "no-op"
    # rollbacks walk back through history: 4 -> 3 -> 1, then there is nothing left
    for expected in ("3", "1"):
        code, out, err = _cli(store, "rollback", "tiny", "--reason", "regression")
        assert code == 0 and out["champion_after"] == expected, err[-2000:]
        assert _mlflow_aliases(store)["champion"] == expected
    code, out, _ = _cli(store, "rollback", "tiny", "--reason", "again")
    assert code == 2 and "no previous champion" in out["error"]
    code, out, _ = _cli(store, "rollback", "tiny", "--to", "10", "--reason", "bad idea")
    assert code == 2 and "passed its gates" in out["error"]
    code, st, _ = _cli(store, "status", "tiny")
    assert st["in_sync"] and "2" in [p["version"] for p in st["pending"]]  # inconclusive earlier
    code, _, _ = _cli(
        store, "promote", "tiny", "--version", "2", "--to", "canary", "--force", "--reason", "t"
    )
    code, st, _ = _cli(store, "status", "tiny")
    assert code == 0 and st["pending"] == [] and st["aliases"]["canary"] == "2"  # superseded
    code, hist, _ = _cli(store, "history", "tiny")
    forced = [e for e in hist["entries"] if e["forced"]]
    assert forced and all(e["reasons"] for e in forced)
    assert_chain(_ledger(store))
    assert store["client"].get_model_version("tiny", "1").tags["seqops.role"] == "champion"


def _parallel(store, ledger_url, versions):
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(versions)) as pool:
        return pool.starmap(
            __import__("tests.registry.workers", fromlist=["promote_once"]).promote_once,
            [(store["uri"], ledger_url, "tiny", v, i) for i, v in enumerate(versions)],
        )


def _check_invariants(store, ledger_url):
    from registry.ledger import Ledger

    ledger = Ledger(ledger_url)
    moves = assert_chain(ledger)
    state = ledger.aliases("tiny")
    assert state["champion"] == moves[-1]["to_version"]
    assert _mlflow_aliases(store)["champion"] == state["champion"]
    return ledger, moves


@pytest.fixture
def pg_ledger_url():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"seqops_ledger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        dbname="postgres", host="127.0.0.1", user="postgres", autocommit=True
    ) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(
        dbname="postgres", host="127.0.0.1", user="postgres", autocommit=True
    ) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_eight_parallel_promotions_never_move_on_stale_evidence(store, backend, request, tmp_path):
    url = (
        request.getfixturevalue("pg_ledger_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'ledger.db'}"
    )
    from registry.ledger import resolve_ledger_url

    url = resolve_ledger_url(url)
    results = _parallel(store, url, [str(v) for v in range(2, 10)])
    assert results.count("promoted") >= 1 and set(results) <= {"promoted", "conflict"}
    _, moves = _check_invariants(store, url)
    assert len(moves) == results.count(
        "promoted"
    )  # every success is one move, every loser moved nothing


CRASH_POINTS = [
    "after_ledger_commit_pending",
    "after_ledger_commit",
    "after_projection_champion",
    "after_tags",
]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill_9_at_every_step_leaves_a_champion_and_reconcile_repairs(
    store, backend, request, tmp_path
):
    url = (
        request.getfixturevalue("pg_ledger_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'ledger.db'}"
    )
    from registry.ledger import Ledger, resolve_ledger_url
    from registry.promotion import reconcile

    url = resolve_ledger_url(url)
    assert _parallel(store, url, ["5"]) == ["promoted"]  # a known champion to start from
    for i, point in enumerate(CRASH_POINTS):
        ledger = Ledger(url)
        old = ledger.aliases("tiny")["champion"]
        new = str(6 + i)
        env = {**os.environ, "SEQOPS_CRASH_AT": point}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.registry.workers", store["uri"], url, "tiny", new],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -9, (point, proc.stderr[-2000:])
        committed = ledger.aliases("tiny")["champion"]
        assert committed == (old if point == "after_ledger_commit_pending" else new), point
        assert _mlflow_aliases(store)["champion"] in (
            old,
            new,
        )  # never missing, never a third version
        reconcile(store["client"], ledger, "tiny")
        assert _mlflow_aliases(store)["champion"] == committed
        _check_invariants(store, url)
        ledger.dispose()


def test_required_steps_and_approval_are_enforced(store):
    import yaml

    cfg = yaml.safe_load(store["cfg"].read_text())
    cfg["promotion"] = {"required_steps": ["shadow"], "require_approval": True}
    strict = write_yaml(store["tmp"] / "strict.yaml", cfg)
    ledger = _ledger(store)
    before = len(ledger.history("tiny"))
    code, out, _ = _cli(
        store, "promote", "tiny", "--version", "8", "--to", "champion", "--config", str(strict)
    )
    assert code == 2 and "--approved-by" in out["error"]
    assert len(ledger.history("tiny")) == before
    code, out, err = _cli(
        store,
        "promote",
        "tiny",
        "--version",
        "8",
        "--to",
        "champion",
        "--config",
        str(strict),
        "--approved-by",
        "alice",
    )
    assert code == 1 and out["status"] == "rejected", err[-2000:]
    assert any("required lifecycle steps not yet held: shadow" in r for r in out["reasons"])
    last = ledger.history("tiny")[-1]
    assert last["kind"] == "gate" and last["outcome"] == "failed" and last["approved_by"] == "alice"
    assert _mlflow_aliases(store)["champion"] != "8"


def _approval_model(store, name):
    """A model whose v1 (the retrained tiny model, gate passed) has no champion to beat yet."""
    import mlflow

    v1 = store["client"].get_model_version("tiny", "1")
    mlflow.set_tracking_uri(store["uri"])
    mlflow.set_registry_uri(store["uri"])
    mlflow.register_model(v1.source, name, tags={**v1.tags, "seqops.gate": "passed"})


def _promote_waiting(store, model, cfg, *extra):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.update({"MLFLOW_TRACKING_URI": store["uri"], "PYTHONPATH": str(REPO)})
    return subprocess.Popen(
        [sys.executable, "-m", "flows", "promote", model, "--version", "1", "--to", "champion"]
        + ["--config", str(cfg), "--wait-for-approval", "--json", *extra],
        cwd=store["tmp"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_paused(model, timeout=120.0):
    import time

    from flows.approvals import paused_promotions

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in paused_promotions() if r["model"] == model]
        if runs:
            return runs[0]
        time.sleep(1.0)
    raise AssertionError(f"no paused promotion of {model} within {timeout} s")


def test_promotion_flow_pauses_for_typed_approval(store):
    """Prefect flow `promote`: pauses with a typed input; approve -> champion, recorded with the
    approver; decline and timeout -> nothing moved, the refusal recorded; no server -> exit 2."""
    import json

    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg = yaml_load(store["cfg"])
    cfg["promotion"] = {"require_approval": True}
    strict = write_yaml(store["tmp"] / "approval.yaml", cfg)
    for m in ("appr-yes", "appr-no", "appr-late"):
        _approval_model(store, m)
    yes = _promote_waiting(store, "appr-yes", strict)
    late = _promote_waiting(store, "appr-late", strict, "--approval-timeout", "3")
    run = _wait_paused("appr-yes")
    assert run["version"] == "1" and run["to"] == "champion"
    # a bad answer changes nothing
    code, out, _ = invoke("approve", run["flow_run_id"], "--json")
    assert code == 2 and "--approved-by" in out["error"]
    code, out, _ = invoke("approve", "not-a-uuid", "--approved-by", "alice", "--json")
    assert code == 2 and "UUID" in out["error"]
    code, out, err = invoke(
        "approve", run["flow_run_id"], "--approved-by", "alice", "--comment", "looks good", "--json"
    )
    assert code == 0 and out["approved"] is True, err[-2000:]
    stdout, stderr = yes.communicate(timeout=180)
    assert yes.returncode == 0, stderr[-3000:]
    o = json.loads(stdout)
    assert o["status"] == "promoted" and o["champion_after"] == "1" and o["flow_run_id"]
    assert _mlflow_aliases(store, "appr-yes")["champion"] == "1"
    move = [e for e in _ledger(store).history("appr-yes") if e["kind"] == "alias_set"][-1]
    assert move["alias"] == "champion" and move["approved_by"] == "alice"
    assert any("looks good" in r for r in move["reasons"])

    stdout, stderr = late.communicate(timeout=180)
    assert late.returncode == 1, stderr[-3000:]
    o = json.loads(stdout)
    assert o["status"] == "declined" and "no answer within 3 s" in o["reasons"][0]
    assert "champion" not in _mlflow_aliases(store, "appr-late")
    assert _ledger(store).history("appr-late")[-1]["outcome"] == "declined"

    no = _promote_waiting(store, "appr-no", strict)
    run = _wait_paused("appr-no")
    code, _, _ = invoke(
        "approve", run["flow_run_id"], "--approved-by", "bob", "--decline", "--comment", "not now"
    )
    assert code == 0
    stdout, stderr = no.communicate(timeout=180)
    assert no.returncode == 1, stderr[-3000:]
    assert json.loads(stdout)["reasons"] == ["approval declined by bob: not now"]
    last = _ledger(store).history("appr-no")[-1]
    assert last["kind"] == "gate" and last["outcome"] == "declined" and last["approved_by"] == "bob"
    assert "champion" not in _mlflow_aliases(store, "appr-no")
    code, out, _ = invoke("approve", run["flow_run_id"], "--approved-by", "bob", "--json")
    assert code == 2 and "not paused" in out["error"]

    with temporary_settings(updates={PREFECT_API_URL: None}):
        code, out, _ = _cli(
            store, "promote", "appr-no", "--version", "1", "--to", "champion",
            "--config", str(strict), "--wait-for-approval", model="appr-no",
        )  # fmt: skip
    assert code == 2 and "PREFECT_API_URL" in out["error"]


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())
