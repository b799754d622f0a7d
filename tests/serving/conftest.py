"""A served model store built once per module: real retrains, a real gateway process on loopback.

v1: a weak model (1 epoch, 4 units; fails its offline gate), forced to champion.
v2: a good model (passes its gate; challenger).
v3: a model with another lookback: as a shadow it raises on every mirrored call.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, tiny_config, write_yaml
from tests.flows.helpers import invoke

FAST_ROLLOUT = {
    "analysis_interval_s": 1.0,
    "steps": [
        {"step": "shadow", "min_labelled": 20, "max_minutes": 1.5},
        {"step": "canary", "share": 0.3, "min_labelled": 12, "max_minutes": 1.5},
        {"step": "champion"},
        {"step": "bake", "min_labelled": 20, "max_minutes": 0.4},
    ],
}


def _cfg(tmp: Path, data: Path, **over) -> dict:
    base = tiny_config(
        tmp,
        data,
        data={"covariates": []},
        gate={"seasonal_naive_margin": 0.0, "champion_tolerance": 10.0},
        serving={"reload_interval_s": 0.5},
        rollout=FAST_ROLLOUT,
    )
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return base


def in_dir(path: Path, *args: str):
    cwd = os.getcwd()
    os.chdir(path)
    try:
        return invoke(*args)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="package")
def served_store(tmp_path_factory, prefect_server):
    from components.synth import synth_panel

    tmp = tmp_path_factory.mktemp("served")
    data = tmp / "panel.csv"
    synth_panel(n_series=12, length=200, freq="D", season_length=7, noise=0.2, seed=3).to_csv(
        data, index=False
    )
    weak = write_yaml(
        tmp / "weak.yaml", _cfg(tmp, data, training={"epochs": 1}, model={"units": 4})
    )
    good = write_yaml(
        tmp / "good.yaml",
        _cfg(tmp, data, training={"epochs": 30, "learning_rate": 0.02,
                                  "early_stopping": {"patience": 8}}, model={"units": 16}),
    )  # fmt: skip
    other = write_yaml(
        tmp / "other.yaml",
        _cfg(tmp, data, window={"lookback": 10, "horizon": 4}, training={"epochs": 1}),
    )
    for cfg in (weak, good, other):
        code, out, err = in_dir(tmp, "retrain", "--config", str(cfg), "--json")
        assert code in (0, 1), err[-3000:]
    code, out, err = in_dir(
        tmp, "promote", "tiny", "--version", "1", "--to", "champion", "--force",
        "--reason", "weak baseline champion for the serving tests", "--json",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    uri = f"sqlite:///{(tmp / '.seqops' / 'mlflow.db').resolve()}"
    return {"tmp": tmp, "good": good, "weak": weak, "uri": uri}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess:
    """``seqops serve`` as a real process on loopback."""

    def __init__(self, store: dict, *extra: str, port: int | None = None):
        self.store, self.extra = store, extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = store["tmp"] / f"gateway-{self.port}.log"

    def start(self, timeout: float = 90.0) -> GatewayProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": self.store["uri"]}
        cmd = [sys.executable, "-m", "flows", "serve", "tiny", "--port", str(self.port),
               "--config", str(self.store["good"]), *self.extra]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.store["tmp"],
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gateway exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"gateway not ready in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def roles(self) -> dict:
        return httpx.get(f"{self.url}/readyz", timeout=5).json()["roles"]

    def wait_roles(self, want: dict, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.roles() == want:
                return
            time.sleep(0.2)
        raise AssertionError(f"gateway roles {self.roles()} != {want}")


@pytest.fixture
def gateway(served_store):
    gws: list[GatewayProcess] = []

    def make(*extra: str, port: int | None = None) -> GatewayProcess:
        gw = GatewayProcess(served_store, *extra, port=port).start()
        gws.append(gw)
        return gw

    yield make
    for gw in gws:
        gw.stop()


class Traffic:
    """``serving.replay`` in a background thread (steady rate, actuals after a delay)."""

    def __init__(self, store: dict, url: str, *, rps: float, duration: float, label_delay=0.3):
        from components.config import load_config
        from serving.replay import held_out_items

        self.items = held_out_items(load_config(store["good"]))
        self.url, self.rps, self.duration, self.delay = url, rps, duration, label_delay
        self.record: list[tuple[str, str, str]] = []
        self.result: dict | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from serving.replay import replay

        self.result = asyncio.run(
            replay(self.url, self.items, rps=self.rps, duration_s=self.duration,
                   label_delay_s=self.delay, progress=False, record=self.record, stop=self.stop)
        )  # fmt: skip

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(self.duration + 60)

    def join(self) -> dict:
        self.stop.set()
        self.thread.join(self.duration + 60)
        assert self.result is not None
        return self.result
