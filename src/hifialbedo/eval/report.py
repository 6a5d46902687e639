"""Writing a benchmark result: a markdown table, JSON, per-case CSV and PNG charts."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hifialbedo.eval.benchmark import BenchmarkResult
from hifialbedo.eval.fair import SKIN_TYPES


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown_table(result: BenchmarkResult) -> str:
    """The results as markdown: the FAIR table, image metrics, lighting invariance, the k curve."""
    lines = [
        "# hifialbedo benchmark: relit real faces",
        "",
        (f"{sum(1 for s in result.scores if s.k == 1) // max(len(result.summary), 1)} cases per method "
        f"({len(result.config.relit.photos)} photos{' and their mirrors' if result.config.relit.mirror else ''} x "
        f"{len(result.config.relit.skin_types)} skin types x {result.config.relit.lightings} lightings), seed {result.config.relit.seed}; "
        f"{result.seconds:.0f} s."),
        "",
        "## Skin colour (FAIR protocol, ITA error in degrees; lower is better)",
        "",
        "| method | Score | Avg ITA | Bias | " + " | ".join(SKIN_TYPES) + " | ITA spread over lightings |",
        "|---|---|---|---|" + "---|" * len(SKIN_TYPES) + "---|",
    ]
    for method, s in result.summary.items():
        f = s["fair"]
        per = " | ".join(_fmt(f["per_type"].get(t), 1) for t in SKIN_TYPES)
        lines.append(f"| {method} | {_fmt(f['score'])} | {_fmt(f['avg_ita'])} | {_fmt(f['bias'])} | {per} | {_fmt(s['ita_spread_mean'])} |")
    first = next(iter(result.summary.values()))
    counts = first["fair"]["counts"]
    lines += ["", "Cases per ground-truth type: " + ", ".join(f"{t} {counts.get(t, 0)}" for t in SKIN_TYPES) + ".", ""]
    lines += [
        "## Albedo accuracy (face pixels; sRGB)",
        "",
        "| method | MAE | PSNR (dB) | SSIM | LPIPS | ID distance (photo vs re-render) |",
        "|---|---|---|---|---|---|",
    ]
    for method, s in result.summary.items():
        lines.append(f"| {method} | {_fmt(s['mae'], 4)} | {_fmt(s['psnr'])} | {_fmt(s['ssim'], 3)} | {_fmt(s['lpips'], 3)} | {_fmt(s['id_distance'], 3)} |")
    for method, ks in result.curve.items():
        lines += ["", f"## More photos: {method}, error against the number of photos k", "", "| k | ITA error | MAE | runs |", "|---|---|---|---|"]
        for k, v in ks.items():
            lines.append(f"| {k} | {_fmt(v['ita_error'])} | {_fmt(v['mae'], 4)} | {v['runs']} |")
    return "\n".join(lines) + "\n"


def bar_chart_png(result: BenchmarkResult) -> bytes:
    """Per-skin-type ITA error, one bar group per type, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(result.summary)
    fig, axes = plt.subplots(1, 2 if result.curve else 1, figsize=(12 if result.curve else 8, 4), squeeze=False)
    ax = axes[0, 0]
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(SKIN_TYPES))
    for i, m in enumerate(methods):
        per = result.summary[m]["fair"]["per_type"]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [per.get(t, np.nan) for t in SKIN_TYPES], width, label=m)
    ax.set_xticks(x, [f"type {t}" for t in SKIN_TYPES])
    ax.set_ylabel("mean |ITA error| (degrees)")
    ax.set_title("ITA error per skin type (FAIR protocol)")
    ax.legend(fontsize=7)
    if result.curve:
        ax2 = axes[0, 1]
        for m, ks in result.curve.items():
            k = list(ks)
            ax2.plot(k, [ks[i]["ita_error"] for i in k], "o-", label=f"{m}: ITA error")
        ax2.set_xlabel("photos fused (k)")
        ax2.set_ylabel("mean |ITA error| (degrees)")
        ax2.set_title("More photos of one face")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def examples_png(result: BenchmarkResult, tile: int = 160) -> np.ndarray | None:
    """A contact sheet: per example case, the input photo's face, the ground truth and each
    method's albedo (uint8 sRGB)."""
    import cv2

    from hifialbedo.ops.colour import linear_to_srgb_uint8

    rows = []
    labels: list[str] = []
    for case, preds in result.examples:
        labels = ["photo", "ground truth", *preds]
        ys, xs = np.nonzero(case.face_mask)
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        tiles = [case.image[box], linear_to_srgb_uint8(case.albedo * case.face_mask[..., None])[box]]
        tiles += [linear_to_srgb_uint8(np.clip(p, 0, 1) * case.face_mask[..., None])[box] for p in preds.values()]
        rows.append(np.concatenate([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles], axis=1))
    if not rows:
        return None
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    header = np.full((24, width, 3), 255, np.uint8)
    for i, label in enumerate(labels):
        cv2.putText(header, label[:24], (i * tile + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, *rows], axis=0)


def write_report(result: BenchmarkResult, out_dir: Path, *, overwrite: bool = False) -> list[str]:
    """Write results.md, results.json, cases.csv, per_type.png and examples.png atomically."""
    from hifialbedo.io.images import write_png
    from hifialbedo.io.output import atomic_output_dir, write_json

    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "results.md").write_text(markdown_table(result))
        write_json(
            tmp / "results.json",
            {
                "config": asdict(result.config),
                "seconds": result.seconds,
                "summary": result.summary,
                "curve": {m: {str(k): v for k, v in ks.items()} for m, ks in result.curve.items()},
            },
        )
        with open(tmp / "cases.csv", "w", newline="") as f:
            rows = [asdict(s) for s in result.scores]
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "per_type.png").write_bytes(bar_chart_png(result))
        sheet = examples_png(result)
        if sheet is not None:
            write_png(tmp / "examples.png", sheet)
    return ["results.md", "results.json", "cases.csv", "per_type.png"] + (["examples.png"] if sheet is not None else [])
