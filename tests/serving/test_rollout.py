"""The rollout flow on live traffic through a real gateway process (loopback), in order:
a good candidate goes all the way; a bad canary is aborted; a champion that regresses in the bake
is rolled back; a gateway killed mid-rollout picks the rollout up from the ledger."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.conftest import write_yaml
from tests.serving.conftest import Traffic, in_dir
from tests.serving.test_gateway import _client, _ledger, _predlog

pytestmark = pytest.mark.slow


def _rollout(store, *args: str, config=None):
    return in_dir(
        store["tmp"], "rollout", "tiny", *args, "--config", str(config or store["good"]), "--json"
    )


def _last_rollout_run_state():
    """The newest ``rollout`` flow run's state, from the session's Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["rollout"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
            offset=0,
        )
    assert runs, "no rollout flow run recorded"
    return runs[0].state


def _rollout_run_count() -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as c:
        return len(
            c.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["rollout"])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=200,
                offset=0,
            )
        )


def test_bad_input_exits_2_before_a_flow_run(served_store):
    store = served_store
    start = _ledger(store).history("tiny")[-1]["id"]
    runs = _rollout_run_count()
    for model, version, names in (
        ("tiny", "99", "99"),
        ("tiny", "nosuchalias", "nosuchalias"),
        ("nosuchmodel", "1", "nosuchmodel"),
    ):
        code, out, err = in_dir(
            store["tmp"], "rollout", model, "--version", version, "--config", str(store["good"]),
            "--json",
        )  # fmt: skip
        assert code == 2 and out["exit_code"] == 2 and names in out["error"], (out, err[-2000:])
        assert "Traceback" not in err, err[-3000:]  # one line, not Prefect's report of a crash
    assert _rollout_run_count() == runs
    assert _ledger(store).history("tiny")[-1]["id"] == start


def _since(entries, first_id):
    return [e for e in entries if e["id"] > first_id]


def test_good_candidate_goes_shadow_canary_champion(served_store, gateway):
    store = served_store
    cfg = yaml.safe_load(store["good"].read_text())
    cfg["promotion"] = {"require_approval": True}
    approval = write_yaml(store["tmp"] / "approval.yaml", cfg)
    gw = gateway()
    assert gw.roles() == {"champion": "1"}
    start = _ledger(store).history("tiny")[-1]["id"]
    # promotion.require_approval: refused before any alias moves without an approver
    code, out, err = _rollout(store, "--version", "challenger", config=approval)
    assert code == 2 and "--approved-by" in err, (out, err[-2000:])
    assert _ledger(store).history("tiny")[-1]["id"] == start
    with Traffic(store, gw.url, rps=40, duration=300) as t:
        code, out, err = _rollout(
            store, "--version", "challenger", "--approved-by", "carol", config=approval
        )
        gw.wait_roles({"champion": "2"})
    assert code == 0 and out["status"] == "promoted", (out, err[-3000:])
    assert _last_rollout_run_state().type.value == "COMPLETED"
    assert [s["step"] for s in out["steps"]] == ["shadow", "canary 30%", "champion", "bake"]
    assert t.result is not None and t.result["errors"] == 0
    new = _since(_ledger(store).history("tiny"), start)
    gates = [
        (e["outcome"], e["evidence"].get("step"))
        for e in new
        if e["kind"] == "gate" and e["evidence"]
    ]
    assert (
        ("passed", "shadow") in gates
        and ("passed", "canary") in gates
        and ("passed", "bake") in gates
    )
    shadow_pass = next(
        e for e in new if e["kind"] == "gate" and e["evidence"].get("step") == "shadow"
    )
    q = shadow_pass["evidence"]["quality"]
    assert q["test"] == "diebold_mariano_paired" and q["verdict"] == "better" and q["n"] >= 20
    traffic = [e for e in new if e["kind"] == "traffic"]
    assert traffic and traffic[0]["evidence"]["share"] == 0.3
    move = next(e for e in new if e["kind"] == "alias_set" and e["alias"] == "champion")
    assert (
        move["trigger"] == "rollout" and move["from_version"] == "1" and move["to_version"] == "2"
    )
    assert move["approved_by"] == "carol"
    # canary routing is sticky: during the canary step no series was answered by both versions
    df = _predlog(store).frame("tiny")
    canary = df[df["role"] == "canary"]
    assert len(canary) > 0
    lo, hi = canary["ts"].min(), canary["ts"].max()
    champ = df[(df["role"] == "champion") & (df["version"] == "1") & df["ts"].between(lo, hi)]
    assert not set(canary["series_id"]) & set(champ["series_id"])
    aliases = {a: str(v) for a, v in _client(store).get_registered_model("tiny").aliases.items()}
    assert aliases["champion"] == "2" and aliases["previous-champion"] == "1"
    assert "canary" not in aliases and "shadow" not in aliases


def test_bad_candidate_forced_to_canary_is_aborted(served_store, gateway):
    store = served_store
    gw = gateway()
    assert gw.roles() == {"champion": "2"}
    code, _, err = in_dir(store["tmp"], "promote", "tiny", "--version", "1", "--to", "canary",
                          "--force", "--reason", "test: bad canary", "--json")  # fmt: skip
    assert code == 0, err[-2000:]
    gw.wait_roles({"champion": "2", "canary": "1"})
    start = _ledger(store).history("tiny")[-1]["id"]
    with Traffic(store, gw.url, rps=40, duration=300) as t:
        code, out, err = _rollout(store, "--version", "1", "--force", "--reason", "test")
        gw.wait_roles({"champion": "2"})
        time.sleep(1.0)
    assert code == 1 and out["status"] == "aborted", (out, err[-3000:])
    state = _last_rollout_run_state()  # a deployment's run history shows the abort
    assert state.type.value == "FAILED" and "aborted" in state.message, state
    assert out["steps"][0]["step"] == "canary 30%"  # resumed at the canary step from the ledger
    assert "significantly worse" in out["reasons"][0]
    assert t.result is not None and t.result["errors"] == 0
    new = _since(_ledger(store).history("tiny"), start)
    failed = [e for e in new if e["kind"] == "gate" and e["outcome"] == "failed"]
    assert failed and failed[-1]["evidence"]["quality"]["verdict"] == "worse"
    assert any(e["kind"] == "alias_removed" and e["alias"] == "canary" for e in new)
    aliases, traffic, _ = _ledger(store).serving_state("tiny")
    assert aliases.get("canary") is None and traffic is None and aliases["champion"] == "2"


def test_champion_regressing_in_bake_is_rolled_back(served_store, gateway):
    store = served_store
    cfg = yaml.safe_load(store["good"].read_text())
    cfg["rollout"]["steps"] = [
        {"step": "champion"},
        {"step": "bake", "min_labelled": 20, "max_minutes": 1.5},
    ]
    direct = write_yaml(store["tmp"] / "direct.yaml", cfg)
    gw = gateway()
    assert gw.roles() == {"champion": "2"}
    start = _ledger(store).history("tiny")[-1]["id"]
    with Traffic(store, gw.url, rps=40, duration=300) as t:
        code, out, err = _rollout(
            store, "--version", "1", "--force", "--reason", "test: regress", config=direct
        )
        gw.wait_roles({"champion": "2"})
        time.sleep(1.0)
    assert code == 1 and out["status"] == "rolled-back", (out, err[-3000:])
    assert out["champion_after"] == "2"
    assert t.result is not None and t.result["errors"] == 0
    new = _since(_ledger(store).history("tiny"), start)
    back = [e for e in new if e["kind"] == "alias_set" and e["alias"] == "champion"]
    assert [(e["from_version"], e["to_version"], e["trigger"]) for e in back] == [
        ("2", "1", "rollout"),
        ("1", "2", "automatic-rollback"),
    ]
    breach = next(e for e in new if e["kind"] == "gate" and e["outcome"] == "failed")
    assert (
        breach["evidence"]["step"] == "bake" and breach["evidence"]["quality"]["verdict"] == "worse"
    )
    # v1 answered live traffic as champion before the rollback
    df = _predlog(store).frame("tiny")
    assert len(df[(df["role"] == "champion") & (df["version"] == "1") & (df["id"] > 0)]) > 0


def test_rollout_interrupted_in_its_bake_resumes_the_bake(served_store, gateway):
    """The ledger as a rollout killed during its bake leaves it (v1 champion, the previous
    champion v2 shadowing it): the same rollout re-run judges the bake and rolls back."""
    store = served_store
    direct = store["tmp"] / "direct.yaml"  # [champion, bake], written by the test above
    gw = gateway()
    assert gw.roles() == {"champion": "2"}
    for version, to in (("1", "champion"), ("2", "shadow")):
        code, _, err = in_dir(store["tmp"], "promote", "tiny", "--version", version, "--to", to,
                              "--force", "--reason", "test: interrupted bake", "--json")  # fmt: skip
        assert code == 0, err[-2000:]
    gw.wait_roles({"champion": "1", "shadow": "2"})
    with Traffic(store, gw.url, rps=40, duration=300) as t:
        code, out, err = _rollout(store, "--version", "1", "--reason", "resume", config=direct)
        gw.wait_roles({"champion": "2"})
    assert code == 1 and out["status"] == "rolled-back", (out, err[-3000:])
    assert [s["step"] for s in out["steps"]] == ["bake"]  # resumed at the bake
    assert out["champion_before"] == "2" and out["champion_after"] == "2"
    assert t.result is not None and t.result["errors"] == 0
    aliases, _, _ = _ledger(store).serving_state("tiny")
    assert aliases["champion"] == "2" and "shadow" not in aliases


def test_gateway_killed_mid_rollout_resumes_from_the_ledger(served_store, gateway):
    """The gateway dies while a candidate is in shadow; restarted, it serves the same roles from
    the ledger and the rollout (still running) finishes its judgement."""
    import threading

    store = served_store
    cfg = yaml.safe_load(store["good"].read_text())
    cfg["rollout"]["steps"][0]["min_labelled"] = 150  # judging takes a few seconds: kill before
    slow = write_yaml(store["tmp"] / "slow-shadow.yaml", cfg)
    gw = gateway()
    port = gw.port
    result: dict = {}

    def run():
        result["out"] = _rollout(
            store, "--version", "1", "--force", "--reason", "test: kill", config=slow
        )

    with Traffic(store, gw.url, rps=40, duration=300) as t:
        th = threading.Thread(target=run)
        th.start()
        gw.wait_roles({"champion": "2", "shadow": "1"}, timeout=60)
        gw.kill()
        time.sleep(2.0)
        gw2 = gateway(port=port)
        assert gw2.roles() == {"champion": "2", "shadow": "1"}  # from the ledger
        th.join(240)
    code, out, err = result["out"]
    assert code == 1 and out["status"] == "aborted", (out, err[-3000:])
    assert "significantly worse" in out["reasons"][0]
    gw2.wait_roles({"champion": "2"})
    acked = {rid for rid, _, _ in t.record}
    df = _predlog(store).frame("tiny")
    ok = df[(df["status"] == "ok") & (df["role"] == "champion") & df["request_id"].isin(acked)]
    counts = ok.groupby("request_id").size()
    assert set(counts.index) == acked and (counts == 1).all()
