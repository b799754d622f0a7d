"""What a person sees in MLflow's registry UI tells the story of a model's lifecycle.

A real store (two retrains, then a forced champion move through the ledger) is served by a real
``mlflow server`` on loopback and opened in headless Chromium, driven over the DevTools protocol on
a pipe (no browser-driver package). The tests assert on the rendered page text: the aliases sit on
the versions the ledger says, the version tags show the gate outcome and the metrics vs the
champion, and the version description summarises the evidence. Screenshots are kept under
``reports/test-artifacts/registry-ui/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, tiny_config, write_yaml
from tests.flows.helpers import invoke

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "reports" / "test-artifacts" / "registry-ui"
MODEL = "tiny"
REASON = "registry UI test: v2 replaces v1"
# the same retrain as tests/registry/test_promotion.py (reliably beats seasonal naive); a generous
# champion tolerance so that v2, compared with champion v1, passes its gate on any machine
GATE = {"seasonal_naive_margin": 0.0, "promote_first_to_champion": True, "champion_tolerance": 1.0}
TRAIN = {"epochs": 30, "learning_rate": 0.02, "early_stopping": {"patience": 8}}
WINDOW = (1500, 1100)


def require_binary(name: str) -> str:
    """Path of an executable; skip without it, fail instead when SEQOPS_REQUIRE_SERVICES=1."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} not found on PATH (Debian: apt-get install {name})"
    if os.environ.get("SEQOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " and SEQOPS_REQUIRE_SERVICES=1")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_binary("chromium")


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_panel_frame, prefect_server):
    """Two real retrains (v1: champion + challenger; v2: gated vs champion v1, challenger), then
    v2 forced to champion through the ledger: champion v2, previous-champion v1."""
    from mlflow import MlflowClient

    from registry.ledger import Ledger, resolve_ledger_url

    tmp = tmp_path_factory.mktemp("registry-ui")
    data = tmp / "panel.csv"
    tiny_panel_frame.to_csv(data, index=False)
    cfg = write_yaml(
        tmp / "job.yaml", tiny_config(tmp, data, gate=GATE, training=TRAIN, model={"units": 16})
    )
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        for expected in ("1", "2"):
            code, out, err = invoke("retrain", "--config", str(cfg), "--json")
            assert code == 0 and out["version"] == expected, err[-3000:]
        code, out, err = invoke(
            "promote", MODEL, "--version", "2", "--to", "champion", "--force", "--reason", REASON,
            "--json",
        )  # fmt: skip
        assert code == 0 and out["champion_after"] == "2", err[-3000:]
    finally:
        os.chdir(cwd)
    state = tmp / ".seqops"
    db = state / "mlflow.db"
    uri = f"sqlite:///{db.resolve()}"
    ledger = Ledger(resolve_ledger_url(None, state))
    return {
        "tmp": tmp,
        "db": db,
        "artifacts": state / "artifacts",
        "client": MlflowClient(tracking_uri=uri, registry_uri=uri),
        "aliases": ledger.aliases(MODEL),  # the source of truth the UI must agree with
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_ui(store):
    """``mlflow server`` on loopback over the test store; its base URL. Killed at teardown."""
    port = _free_port()
    log_path = store["tmp"] / "mlflow-server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{store['db'].resolve()}",
        "--artifacts-destination", str(store["artifacts"].resolve()),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(log_path, "wb") as log:
        # its own process group: uvicorn's worker goes down with it
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}):\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after 60 s:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield url
    finally:
        _stop_group(proc)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


# puts two inherited pipe ends on fds 3 and 4, then becomes the browser (dup first, so that
# neither end is overwritten before it is copied; dup2 onto itself keeps close-on-exec, hence
# set_inheritable; a POSIX shell cannot name fds above 9, so this is Python)
_ON_FDS_3_4 = """import os, sys
r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
for src, dst in ((r, 3), (w, 4)):
    os.dup2(src, dst)
    os.set_inheritable(dst, True)
os.execv(sys.argv[3], sys.argv[3:])"""


class Browser:
    """Headless Chromium driven over the DevTools protocol on ``--remote-debugging-pipe``: the
    browser reads commands on fd 3 and writes replies on fd 4, NUL-terminated JSON. Waiting for a
    condition in the page (not a fixed time budget) makes screenshots show what was asserted."""

    def __init__(self, binary: str, workdir: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self._log = workdir / "chromium.log"
        args = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
            f"--user-data-dir={workdir / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "about:blank",
        ]  # fmt: skip
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _ON_FDS_3_4, str(cmd_r), str(out_w), binary, *args],
                pass_fds=(cmd_r, out_w),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self._session: str | None = None

    def call(self, method: str, timeout: float = 30, **params):
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self._session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                    raise TimeoutError(f"chromium did not answer {method} within {timeout} s")
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe:\n{_tail(self._log)}")
                self._buf += chunk
            raw, _, self._buf = self._buf.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._id:  # anything else is an event
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url: str, *, height: int = WINDOW[1]) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WINDOW[0],
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, ready, timeout: float = 45):
        """Evaluate ``expression`` until ``ready(value)``; returns the last value either way (the
        assertions that follow say what is missing; None if the page never got that far)."""
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while True:
            value = self.evaluate(guarded)  # null while the page is still loading
            if ready(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        # cosmetic, best effort: MLflow's assistant side panel would take a quarter of the picture
        self.evaluate(
            """document.querySelector('[data-component-id="mlflow.assistant.chat_panel.close"]')
              ?.click()"""
        )
        time.sleep(0.5)  # let the last render (fonts, layout) settle
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):  # gone already: fine
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self._cmd_w)
        os.close(self._out_r)


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path)
    try:
        yield b
    finally:
        b.close()


# innerText, whitespace runs (incl. the no-break space in alias chips) collapsed to one space
_ROWS_JS = """Array.from(document.querySelectorAll('[role="row"]'))
  .map(r => r.innerText.replace(/\\s+/g, ' ').trim())"""
_PAGE_JS = """({
  text: document.body.innerText.replace(/[ \\t\\u00a0]+/g, ' '),
  tags: Object.fromEntries(Array.from(document.querySelectorAll('tr'))
    .map(tr => Array.from(tr.cells).map(c => c.innerText.trim()))
    .filter(c => c.length >= 2 && c[0].startsWith('seqops.'))
    .map(c => [c[0], c[1]])),
})"""


def _aliases_by_version(rows: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in rows:
        m = re.match(r"Version (\d+)\b", row)
        if m:
            out[m.group(1)] = set(re.findall(r"@ ([\w-]+)", row))
    return out


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, (path, len(data))


def test_model_page_shows_each_alias_on_the_version_the_ledger_says(store, mlflow_ui, browser):
    expected: dict[str, set[str]] = {}
    for alias, version in store["aliases"].items():
        expected.setdefault(version, set()).add(alias)
    assert expected == {"2": {"champion"}, "1": {"previous-champion"}}, store["aliases"]

    # tall: each version row lists all its tags, and both rows belong in the screenshot
    browser.open(f"{mlflow_ui}/#/models/{MODEL}", height=2600)
    rows = browser.wait_for(
        _ROWS_JS, lambda rows: _aliases_by_version(rows or []) == expected, timeout=45
    )
    assert _aliases_by_version(rows or []) == expected, rows
    v2 = next(r for r in rows if r.startswith("Version 2"))
    assert re.search(r"seqops\.gate ?: ?passed\b", v2), v2
    assert re.search(r"seqops\.role ?: ?champion\b", v2), v2
    _assert_png(browser.screenshot(ARTIFACTS / "model-page.png"))


def test_version_page_shows_gate_outcome_metrics_vs_champion_and_evidence(
    store, mlflow_ui, browser
):
    mv = store["client"].get_model_version(MODEL, "2")
    seqops_tags = {k: v for k, v in mv.tags.items() if k.startswith("seqops.")}
    assert seqops_tags["seqops.champion.compared"] == "1"  # v2's gate ran against champion v1
    run_name = store["client"].get_run(mv.run_id).info.run_name

    browser.open(f"{mlflow_ui}/#/models/{MODEL}/versions/2")
    page = browser.wait_for(
        _PAGE_JS,
        lambda p: (
            bool(p)
            and len(p["tags"]) >= len(seqops_tags)
            and "Gate: PASSED" in p["text"]
            and run_name in p["text"]  # the source run link is filled in by a later request
        ),
    )
    assert page, "the version page never rendered"
    text, tags = page["text"], page["tags"]
    _assert_png(browser.screenshot(ARTIFACTS / "version-2.png"))

    # every seqops.* outcome tag is rendered with its value
    assert tags == seqops_tags
    # the story, spelled out: gate outcome, metrics vs the champion, role and the forced move
    assert tags["seqops.gate"] == "passed" and tags["seqops.gate.reasons"] == "none"
    for metric in ("mase", "mae", "rmse", "smape"):
        assert tags[f"seqops.eval.model.{metric}"] and tags[f"seqops.eval.champion.{metric}"]
    assert tags["seqops.role"] == "champion"
    assert f"forced: {REASON}" in tags["seqops.promotion"]
    assert set(re.findall(r"@ ([\w-]+)", text)) == {"champion"}  # the aliases header
    assert run_name in text  # the version links back to the run that trained it

    # the description (markdown) is rendered: heading, gate line, evidence table, drift line
    desc = mv.description.splitlines()
    assert f"seqops retrain: {MODEL}" in text
    assert "Gate: PASSED on MASE" in text
    for who in ("model", "seasonal_naive", "champion"):
        cells = next(line for line in desc if line.startswith(f"| {who} |")).strip("|").split("|")
        assert " ".join(c.strip() for c in cells) in text, who  # a rendered table row
    drift = next(line for line in desc if line.startswith("Drift vs champion v1"))
    backtest = next(line for line in desc if line.startswith("Rolling-origin backtest"))
    assert drift in text and backtest in text

    # and the tags table, scrolled to the gate outcome, for a second screenshot
    browser.evaluate(
        """Array.from(document.querySelectorAll('tr'))
          .find(tr => tr.cells.length && tr.cells[0].innerText.trim() === 'seqops.gate')
          .scrollIntoView({block: 'center'})"""
    )
    _assert_png(browser.screenshot(ARTIFACTS / "version-2-tags.png"))
