"""Loading series from CSV/Parquet and turning a validated frame into per-series arrays.

``load_frame`` only reads (and refuses unreadable files); the data contract in ``validation/``
decides whether the content is usable; ``to_panel`` runs after the contract passed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import DataConfig, MissingConfig
from components.errors import DataError

log = logging.getLogger(__name__)

SINGLE_SERIES_ID = "series-0"


def resolve_path(path: str, base_dir: Path | None = None) -> Path:
    """Resolve against the working directory, falling back to ``base_dir`` (the config's folder)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or base_dir is None:
        return p
    alt = base_dir / p
    return alt if alt.exists() else p


def detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def load_frame(cfg: DataConfig, base_dir: Path | None = None) -> pd.DataFrame:
    """Read the raw frame. Raises DataError for a missing, empty or unreadable file."""
    path = resolve_path(cfg.path, base_dir)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"data path is not a file (a directory?): {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty (0 bytes): {path}")
    fmt = detect_format(path, cfg.format)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file has no columns or rows: {path}") from None
    except Exception as exc:  # parser errors, corrupt parquet
        raise DataError(f"cannot read {fmt} file {path}: {exc}") from None
    if len(frame) == 0:
        raise DataError(
            f"data file has a header but no rows: {path} (columns: {list(frame.columns)})"
        )
    if cfg.series is not None:
        if not cfg.series_id or cfg.series_id not in frame.columns:
            raise DataError(f"data.series needs the series id column {cfg.series_id!r} in {path}")
        ids = frame[cfg.series_id].astype(str)
        missing = sorted(set(cfg.series) - set(ids))
        if missing:
            raise DataError(f"data.series names series not in {path}: {missing[:10]}")
        frame = frame[ids.isin(cfg.series)].reset_index(drop=True)
    log.debug("loaded %s rows x %s cols from %s", len(frame), frame.shape[1], path)
    return frame


def frame_digest(frame: pd.DataFrame) -> str:
    """Content digest of a frame (values and column names), stable across file formats."""
    h = hashlib.sha256()
    h.update("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Panel:
    """Validated, filled series. ``values[i]`` is (n_i, F) float32; column 0 is the target."""

    ids: list[str]
    timestamps: list[np.ndarray]
    values: list[np.ndarray]
    feature_names: list[str]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_frame(self) -> pd.DataFrame:
        parts = []
        for sid, ts, vals in zip(self.ids, self.timestamps, self.values, strict=True):
            part = pd.DataFrame(vals, columns=self.feature_names)
            part.insert(0, "timestamp", ts)
            part.insert(0, "series_id", sid)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)


def _fill(values: pd.DataFrame, policy: str) -> pd.DataFrame:
    if policy == "ffill":
        return values.ffill().bfill()
    if policy == "interpolate":
        return values.interpolate(method="linear", limit_direction="both")
    if policy == "zero":
        return values.fillna(0.0)
    return values


def to_panel(frame: pd.DataFrame, data: DataConfig, missing: MissingConfig) -> Panel:
    """Split a contract-checked frame into per-series arrays, applying the missing-value policy."""
    features = [data.target, *data.covariates]
    ts = pd.to_datetime(frame[data.timestamp], utc=False)
    work = frame[features].apply(pd.to_numeric, errors="coerce").astype("float64")
    work.insert(0, "__ts", ts)
    if data.series_id:
        work.insert(0, "__sid", frame[data.series_id].astype(str))
        groups = list(work.groupby("__sid", sort=True))
    else:
        groups = [(SINGLE_SERIES_ID, work)]
    ids, stamps, values = [], [], []
    for sid, g in groups:
        vals = _fill(g[features], missing.policy)
        if vals.isna().any().any():
            raise DataError(
                f"series {sid!r}: missing values remain after policy {missing.policy!r}"
            )
        ids.append(str(sid))
        stamps.append(g["__ts"].to_numpy())
        values.append(vals.to_numpy(dtype=np.float32))
    return Panel(ids=ids, timestamps=stamps, values=values, feature_names=features)
