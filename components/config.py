"""Job configuration: YAML validated into frozen, strict pydantic models.

Every key except ``name``, ``data`` and ``window`` has a default, so a six-key config works.
Unknown keys are errors that name the key (and suggest the closest valid one).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.errors import ConfigError

DEFAULT_STATE_DIR = ".seqops"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class DataConfig(_Strict):
    """Where the series live and which columns mean what."""

    path: str = Field(
        description="CSV or Parquet file; relative paths resolve against the working directory."
    )
    timestamp: str = Field(description="Timestamp column.")
    target: str = Field(description="Numeric column to forecast.")
    series_id: str | None = Field(
        None, description="Series id column for panel data (many series)."
    )
    covariates: list[str] = Field(default_factory=list, description="Extra numeric input columns.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    frequency: str | None = Field(
        None,
        description="Pandas offset alias (e.g. 'W', 'D', 'h'); used to infer the season length.",
    )
    series: list[str] | None = Field(
        None,
        description="Only these series ids (a group of series for one model of a many-model config).",
    )


class MissingConfig(_Strict):
    """What to do with missing target/covariate values."""

    policy: Literal["fail", "ffill", "interpolate", "zero"] = Field(
        "fail",
        description="'fail' refuses any missing value; the others fill them after validation.",
    )
    max_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of missing values a fill policy accepts."
    )


class WindowConfig(_Strict):
    lookback: int = Field(gt=0, description="Input steps per window.")
    horizon: int = Field(gt=0, description="Steps forecast per window.")


class SplitConfig(_Strict):
    """Time-ordered split per series: train | gap | val | gap | test (fractions of each series)."""

    val: float = Field(0.15, gt=0.0, lt=0.5)
    test: float = Field(0.15, gt=0.0, lt=0.5)
    gap: int = Field(
        0, ge=0, description="Rows dropped between segments (windows never cross a boundary)."
    )

    @model_validator(mode="after")
    def _train_left(self) -> SplitConfig:
        if self.val + self.test >= 0.8:
            raise ValueError("val + test must leave at least 20% of each series for training")
        return self


class ValidationConfig(_Strict):
    max_gap_steps: float = Field(
        1.0,
        gt=0.0,
        description="Largest step between timestamps, in multiples of the series' median step.",
    )
    ranges: dict[str, list[float]] = Field(
        default_factory=dict, description="Declared value ranges: column -> [min, max]."
    )

    @field_validator("ranges")
    @classmethod
    def _pairs(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for col, pair in v.items():
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ValueError(f"range for {col!r} must be [min, max] with min <= max")
        return v


class ModelConfig(_Strict):
    """Stacked Keras LSTM. The defaults keep the cuDNN kernel on a GPU."""

    units: int = Field(64, gt=0, le=4096)
    layers: int = Field(1, ge=1, le=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Input dropout (cuDNN-compatible).")
    recurrent_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Non-zero disables the cuDNN kernel on GPU."
    )
    activation: Literal["tanh", "relu", "sigmoid"] = Field(
        "tanh", description="Anything but tanh disables the cuDNN kernel on GPU."
    )
    unroll: bool = Field(False, description="True disables the cuDNN kernel on GPU.")


class EarlyStoppingConfig(_Strict):
    enabled: bool = True
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainingConfig(_Strict):
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    seed: int = 42
    deterministic: bool = Field(False, description="Enable TensorFlow op determinism (slower).")
    device: Literal["auto", "cpu", "gpu"] = "auto"
    mixed_precision: bool = Field(False, description="mixed_float16 on GPU; ignored on CPU.")
    allow_slow_gpu_kernel: bool = Field(
        False, description="Run on GPU even when the model config falls off the cuDNN kernel."
    )
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="Cap batches per epoch (smoke runs)."
    )


class EvaluationConfig(_Strict):
    season_length: int | None = Field(
        None, ge=1, description="Seasonal-naive period; inferred from data.frequency when absent."
    )
    backtest_folds: int = Field(3, ge=0, le=20, description="Rolling-origin folds (0 disables).")


class DriftConfig(_Strict):
    enabled: bool = True
    sample_size: int = Field(
        50_000, ge=100, description="Rows per side above which a seeded sample is drawn."
    )
    drift_share: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of drifted columns that means drift."
    )


class GateConfig(_Strict):
    """Offline gate applied at retrain time (candidate vs baselines and current champion)."""

    metric: Literal["mase", "mae", "rmse", "smape"] = "mase"
    seasonal_naive_margin: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Candidate must be at least this fraction better than seasonal naive.",
    )
    champion_tolerance: float = Field(
        0.05, ge=0.0, description="Candidate may be at most this fraction worse than the champion."
    )
    promote_first_to_champion: bool = Field(
        False,
        description="On a model's very first version, set 'champion' too when the gate passes.",
    )


class PromotionConfig(_Strict):
    """Promotion gates (seqops promote) and where the promotion ledger lives."""

    required_steps: list[Literal["shadow", "canary"]] = Field(
        default_factory=list,
        description="Aliases a version must have held before champion (none: skip allowed).",
    )
    require_approval: bool = Field(
        False, description="Champion promotions need --approved-by NAME."
    )
    max_mase: float | None = Field(
        None, gt=0.0, description="Absolute floor: candidate MASE at most this."
    )
    min_improvement: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Candidate must beat the champion by at least this fraction.",
    )
    significance: float = Field(0.05, gt=0.0, lt=0.5, description="Diebold-Mariano test level.")
    inconclusive: Literal["fail", "wait"] = Field(
        "wait",
        description="An inconclusive paired test never promotes: record it as a failure, or as waiting.",
    )
    ledger_url: str | None = Field(
        None,
        description="Ledger database URL (SEQOPS_LEDGER_URL wins); default SQLite in state_dir.",
    )


class ServingConfig(_Strict):
    """The online gateway (seqops serve)."""

    reload_interval_s: float = Field(
        2.0, gt=0.0, le=300.0, description="How often the gateway polls the ledger for alias moves."
    )
    default_canary_share: float = Field(
        0.1, ge=0.0, le=1.0, description="Canary share until the rollout sets one."
    )
    micro_batch: bool = Field(
        False,
        description="Batch concurrent requests into one model call (throughput); off, each "
        "window is answered at once on the event loop (latency).",
    )
    xla: bool = Field(
        True,
        description="Answer single windows through an XLA-compiled function (checked against "
        "the model at load; the graph function serves when XLA cannot).",
    )
    max_batch_size: int = Field(64, ge=1, le=4096)
    batch_wait_ms: float = Field(
        2.0, ge=0.0, le=100.0, description="Longest a request waits for a batch to fill."
    )
    shadow_queue: int = Field(
        256,
        ge=1,
        description="Mirrored requests waiting for the shadow; more are dropped (counted).",
    )
    shadow_timeout_s: float = Field(5.0, gt=0.0, description="A slower shadow call is abandoned.")
    predlog_url: str | None = Field(
        None,
        description="Prediction log database URL (SEQOPS_PREDLOG_URL wins); default SQLite in state_dir.",
    )


class RolloutStep(_Strict):
    step: Literal["shadow", "canary", "champion", "bake"]
    share: float | None = Field(
        None, gt=0.0, le=1.0, description="Canary: share of series the candidate answers."
    )
    min_labelled: int = Field(
        30, ge=3, description="Labelled predictions (actuals arrived) needed before judging."
    )
    max_minutes: float = Field(
        30.0,
        gt=0.0,
        description="A step that has not passed by then fails (a timeout never promotes).",
    )

    @model_validator(mode="after")
    def _share_only_for_canary(self) -> RolloutStep:
        if self.step == "canary" and self.share is None:
            raise ValueError("a canary step needs a share (e.g. 0.1)")
        if self.step != "canary" and self.share is not None:
            raise ValueError(f"only canary steps take a share, not {self.step!r}")
        return self


def _default_steps() -> list[RolloutStep]:
    return [
        RolloutStep(step="shadow"),
        RolloutStep(step="canary", share=0.1),
        RolloutStep(step="canary", share=0.5),
        RolloutStep(step="champion"),
        RolloutStep(step="bake"),
    ]


class RolloutConfig(_Strict):
    """Online rollout (seqops rollout): steps and the live gates judged at each analysis."""

    steps: list[RolloutStep] = Field(default_factory=_default_steps)
    analysis_interval_s: float = Field(30.0, gt=0.0, description="Seconds between analyses.")
    max_inconclusive: int = Field(
        10, ge=1, description="Analyses a step may stay inconclusive before it fails."
    )
    significance: float = Field(0.05, gt=0.0, lt=0.5, description="Level of the live paired test.")
    max_error_rate: float = Field(
        0.01, ge=0.0, le=1.0, description="Candidate error rate above this fails the step."
    )
    max_p95_ratio: float = Field(
        1.5, ge=1.0, description="Candidate p95 latency at most this multiple of the champion's."
    )
    p95_slack_ms: float = Field(
        5.0, ge=0.0, description="Latency differences under this many ms never fail a step."
    )

    @model_validator(mode="after")
    def _order(self) -> RolloutConfig:
        kinds = [s.step for s in self.steps]
        if "bake" in kinds and (
            "champion" not in kinds or kinds.index("bake") < kinds.index("champion")
        ):
            raise ValueError("a bake step must follow the champion step")
        return self


class ScheduleConfig(_Strict):
    """When the deployed retrain flow runs by itself (seqops deploy)."""

    cron: str | None = Field(
        None,
        description="Cron expression for scheduled retrains, e.g. '0 3 * * 1' (none: no schedule).",
    )
    timezone: str = Field("UTC", description="Time zone of the cron expression.")


class MonitorConfig(_Strict):
    """The drift monitor: compares recent data with the champion's training reference."""

    interval_s: float = Field(3600.0, gt=0.0, description="Seconds between checks (deployment).")
    consecutive: int = Field(
        3, ge=1, le=100, description="Drift must persist over this many consecutive checks."
    )
    cooldown_minutes: float = Field(
        1440.0,
        ge=0.0,
        description="Minimum time since the last retrain before another is triggered.",
    )
    data_path: str | None = Field(
        None, description="Where new data is dropped (default: data.path)."
    )
    recent_rows: int = Field(
        200, ge=10, description="Rows per series at the end of the data that count as recent."
    )


class TrackingConfig(_Strict):
    uri: str | None = Field(
        None, description="MLflow tracking URI; MLFLOW_TRACKING_URI wins over it."
    )
    experiment: str | None = Field(None, description="Experiment name (default 'seqops/<name>').")


class JobConfig(_Strict):
    """A retrain job."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$", description="Registered model name."
    )
    data: DataConfig
    window: WindowConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    missing: MissingConfig = Field(default_factory=MissingConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    state_dir: str = Field(
        DEFAULT_STATE_DIR, description="Embedded MLflow store, reports and ledger."
    )

    @model_validator(mode="after")
    def _columns_distinct(self) -> JobConfig:
        cols = [self.data.timestamp, self.data.target, *self.data.covariates]
        if self.data.series_id:
            cols.append(self.data.series_id)
        dup = {c for c in cols if cols.count(c) > 1}
        if dup:
            raise ValueError(f"data columns must be distinct, repeated: {sorted(dup)}")
        return self

    def season_length(self) -> int:
        """Seasonal-naive period: configured, else inferred from the frequency, else 1."""
        if self.evaluation.season_length:
            return self.evaluation.season_length
        return infer_season_length(self.data.frequency)

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_SEASONS = {"W": 52, "D": 7, "B": 5, "H": 24, "h": 24, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4}


def infer_season_length(frequency: str | None) -> int:
    if not frequency:
        return 1
    base = frequency.split("-")[0].lstrip("0123456789")
    return _SEASONS.get(base, _SEASONS.get(base.upper(), 1))


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = JobConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _format_error(err: Any) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_for(loc[:-1])
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return f"unknown key {where!r}{hint}"
    if err["type"] == "missing":
        return f"missing required key {where!r}"
    return f"{where}: {err['msg']} (got {err.get('input')!r})"


def parse_config(raw: Any, source: str = "<config>") -> JobConfig:
    """Validate an already-loaded mapping; raise ConfigError with every problem named."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping, got {type(raw).__name__}")
    try:
        return JobConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{source}: invalid config:\n  - " + "\n  - ".join(lines)) from None


def load_config(path: str | Path) -> JobConfig:
    """Read and validate a YAML config file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"config path is not a file: {p}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(raw, source=str(p))


class DaskConfig(_Strict):
    """Where the models of a many-model config train (Prefect's DaskTaskRunner)."""

    address: str | None = Field(
        None, description="Scheduler address of a running Dask cluster (default: a local cluster)."
    )
    n_workers: int = Field(2, ge=1, le=256, description="Local cluster: worker processes.")
    threads_per_worker: int = Field(1, ge=1, le=64, description="Local cluster: threads each.")


class ManyConfig(_Strict):
    """Several models in one file: ``defaults`` merged under each entry of ``models``."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    models: list[dict[str, Any]] = Field(min_length=1)
    dask: DaskConfig = Field(default_factory=DaskConfig)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def is_many(path: str | Path) -> bool:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and "models" in raw


def load_many(path: str | Path) -> tuple[list[JobConfig], DaskConfig]:
    """Read a many-model config; every model is validated (and named) like a single config."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    try:
        many = ManyConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{p}: invalid many-model config:\n  - " + "\n  - ".join(lines)) from None
    jobs = [
        parse_config(_merge(many.defaults, m), source=f"{p} models[{i}] ({m.get('name', '?')})")
        for i, m in enumerate(many.models)
    ]
    names = [j.name for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{p}: model names must be unique, repeated: {dup}")
    return jobs, many.dask


def json_schema() -> dict[str, Any]:
    return JobConfig.model_json_schema()
