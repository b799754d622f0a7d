"""GPU training throughput of the seqops LSTM: cuDNN kernel vs the same layer forced off it vs CPU,
and mixed precision. Prints a table and writes bench/results/gpu_lstm.{json,md} (or $OUT).

The model is the platform's own (components.model.build_forecaster: scaling, anchor, LSTM, dense
head). It runs wherever Keras 3 has a CUDA backend. The lent H100 image has PyTorch + CUDA but no
TensorFlow and no network, so there it runs on KERAS_BACKEND=torch, whose LSTM takes cuDNN under
the same conditions as TensorFlow's (tanh/sigmoid, no recurrent dropout, no unroll, bias).

    KERAS_BACKEND=torch python bench/gpu_lstm.py [--quick]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from components.config import ModelConfig  # noqa: E402
from components.model import build_forecaster  # noqa: E402

L, H, F = 104, 13, 1


def make_windows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal random-walk windows like the co2 job (lookback 104, horizon 13)."""
    rng = np.random.default_rng(seed)
    t = np.arange(L + H)[None, :] + rng.integers(0, 52, size=(n, 1))
    level = rng.normal(350, 20, size=(n, 1)) + np.cumsum(
        rng.normal(0, 0.3, size=(n, L + H)), axis=1
    )
    series = level + 3 * np.sin(2 * np.pi * t / 52)
    x = series[:, :L, None].astype(np.float32)
    y = ((series[:, L:] - 350) / 20).astype(np.float32)
    return x, y


def gpu_name() -> str:
    try:
        return (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or "none"
        )
    except (OSError, subprocess.SubprocessError):
        return "none"


def cudnn_kernel_seen(model, x, y) -> bool | None:
    """Profile one training step and look for cuDNN RNN kernels (torch backend only)."""
    if keras.backend.backend() != "torch":
        return None
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.train_on_batch(x, y)
        torch.cuda.synchronize()
    names = " ".join(e.key for e in prof.key_averages()).lower()
    return (
        "cudnn_rnn" in names
        or "_cudnn_rnn" in names
        or "cudnnrnn" in names
        or "rnn_" in names
        and "cudnn" in names
    )


def run_case(name, *, device, use_cudnn, mixed, units, layers, batch, n, epochs):
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    x, y = make_windows(n)
    mean = np.array([x[..., 0].mean()], np.float32)
    std = np.array([x[..., 0].std()], np.float32)
    with keras.device(device):
        fc = build_forecaster(
            ModelConfig(units=units, layers=layers),
            lookback=L,
            horizon=H,
            mean=mean,
            std=std,
            use_cudnn=use_cudnn,
        )
        m = fc.train_model
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # warm-up: kernels, allocator
        seen = cudnn_kernel_seen(m, x[:batch], y[:batch]) if device.startswith("cuda") else None
        t0 = time.perf_counter()
        hist = m.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
        if keras.backend.backend() == "torch" and device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
    keras.mixed_precision.set_global_policy("float32")
    return {
        "case": name,
        "device": device,
        "use_cudnn": use_cudnn,
        "mixed_precision": mixed,
        "units": units,
        "layers": layers,
        "batch": batch,
        "windows": n,
        "epochs": epochs,
        "seconds": round(secs, 3),
        "samples_per_s": round(n * epochs / secs, 1),
        "final_loss": float(hist.history["loss"][-1]),
        "cudnn_kernel_seen": seen,
    }


def main() -> None:
    quick = "--quick" in sys.argv
    big, small = (16384, 2048) if quick else (65536, 8192)
    cases = []
    # (label, device, use_cudnn, mixed precision, windows, timed epochs)
    specs = [
        ("gpu cuDNN fp32", "cuda:0", "auto", False, big, 3),
        ("gpu cuDNN mixed_float16", "cuda:0", "auto", True, big, 3),
        ("gpu forced off cuDNN fp32", "cuda:0", False, False, small, 1),
        ("cpu fp32", "cpu", False, False, small, 1),
    ]
    for units, layers, batch in ((64, 1, 256), (128, 2, 1024)):
        for label, device, use_cudnn, mixed, n, epochs in specs:
            cases.append(
                run_case(
                    f"{label} {units}u{layers}l-b{batch}",
                    device=device,
                    use_cudnn=use_cudnn,
                    mixed=mixed,
                    units=units,
                    layers=layers,
                    batch=batch,
                    n=n,
                    epochs=epochs,
                )
            )
    for c in cases:
        base = next(
            b for b in cases if b["case"].startswith("gpu cuDNN fp32") and b["units"] == c["units"]
        )
        c["ratio_vs_cudnn_fp32"] = round(c["samples_per_s"] / base["samples_per_s"], 3)
    import torch

    meta = {
        "benchmark": "gpu_lstm",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "gpu": gpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "note": "Keras 3 on the PyTorch backend: the lent GPU image has no TensorFlow and no network.",
        "model": "components.model.build_forecaster (lookback 104, horizon 13, 1 feature)",
    }
    header = (
        f"{'case':<40} {'windows':>8} {'samples/s':>11} {'x cuDNN fp32':>13} {'cuDNN seen':>10}"
    )
    lines = [header, "-" * len(header)]
    for c in cases:
        lines.append(
            f"{c['case']:<40} {c['windows']:>8} {c['samples_per_s']:>11,.0f} {c['ratio_vs_cudnn_fp32']:>13.3f} "
            f"{str(c['cudnn_kernel_seen']):>10}"
        )
    table = "\n".join(lines)
    print(
        f"{meta['gpu']} | keras {meta['keras']} on {meta['backend']} {meta['torch']} (CUDA {meta['cuda']}, cuDNN {meta['cudnn']})"
    )
    print(table)
    out = Path(os.environ.get("OUT") or Path(__file__).parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_lstm.json").write_text(json.dumps({"meta": meta, "cases": cases}, indent=2))
    md = [
        f"# GPU LSTM training throughput ({meta['gpu']})",
        "",
        f"{meta['date']}; {meta['note']}",
        f"keras {meta['keras']} / torch {meta['torch']} / CUDA {meta['cuda']} / cuDNN {meta['cudnn']}; "
        f"{meta['cpu_count']} CPU cores. Model: {meta['model']}.",
        "",
        "| case | windows | samples/s | × cuDNN fp32 | cuDNN kernel seen |",
        "|---|---|---|---|---|",
    ]
    md += [
        f"| {c['case']} | {c['windows']} | {c['samples_per_s']:,.0f} | {c['ratio_vs_cudnn_fp32']:.3f} | "
        f"{c['cudnn_kernel_seen']} |"
        for c in cases
    ]
    (out / "gpu_lstm.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
