"""Writing a benchmark result: markdown tables, JSON, per-case CSV and PNG charts."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hifialbedo.eval.benchmark import SUBSETS, BenchmarkResult, per_group
from hifialbedo.ops.colour import SKIN_TYPES

SUBSET_TITLES = {
    "main": "Main: ordinary scenes, sources not side-lit",
    "bright_scene": "Apart: scenes that fool a whole-frame meter (bright background or clothes; the face comes out dark)",
    "side_lit": "Apart: strongly side-lit source photos (their shading is part of the ground truth)",
    "all": "Everything",
}


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def fair_table(summary: dict) -> list[str]:
    lines = [
        "| method | Score | Avg ITA | Bias | " + " | ".join(SKIN_TYPES) + " | ITA spread over lightings | cases | people |",
        "|---|---|---|---|" + "---|" * len(SKIN_TYPES) + "---|---|---|",
    ]
    for method, s in summary.items():
        f = s["fair"]
        per = " | ".join(_fmt(f["per_type"].get(t), 1) for t in SKIN_TYPES)
        lines.append(f"| {method} | {_fmt(f['score'])} | {_fmt(f['avg_ita'])} | {_fmt(f['bias'])} | {per} | {_fmt(s['ita_spread_mean'])} | {s['cases']} | {s['people']} |")
    return lines


def harm_check(summary: dict, method: str = "reconstruct", baselines: tuple[str, ...] = ("identity", "photo_shape")) -> list[str]:
    """Per skin type: is ``method`` below every baseline that was run?"""
    if method not in summary:
        return []
    present = [b for b in baselines if b in summary]
    if not present:
        return []
    mine = summary[method]["fair"]["per_type"]
    lines = ["", f"Do no harm: {method} against " + " and ".join(present) + " per type (lower is better):", ""]
    lines += ["| type | " + " | ".join([method, *present]) + " | below all |", "|---|" + "---|" * (len(present) + 2)]
    for t in SKIN_TYPES:
        if t not in mine:
            continue
        base = [summary[b]["fair"]["per_type"].get(t) for b in present]
        ok = all(b is None or mine[t] < b for b in base)
        lines.append(f"| {t} | {_fmt(mine[t], 1)} | " + " | ".join(_fmt(b, 1) for b in base) + f" | {'yes' if ok else '**no**'} |")
    signed = summary[method].get("signed_error_per_type", {})
    if signed:
        lines += ["", f"{method}'s mean signed ITA error per type (+: albedo too light): " + ", ".join(f"{t} {v:+.1f}" for t, v in signed.items()) + "."]
    return lines


def harm_interval_table(result: BenchmarkResult) -> list[str]:
    """``BenchmarkResult.harm`` (``harm_intervals``) as markdown: per type, reconstruct less
    each baseline, person by person."""
    table = result.harm
    if not table:
        return []
    present = list(table)
    lines = [
        "",
        (
            "The same person by person: reconstruct's |ITA error| less each baseline's (each person's cases of a type averaged, then the people;"
            " 90 % bootstrap interval over the people in brackets). Below or above only where the whole interval is:"
        ),
        "",
        "| type | " + " | ".join(f"less {b}" for b in present) + " | people |",
        "|---|" + "---|" * (len(present) + 1),
    ]
    for t in SKIN_TYPES:
        cells = [table[b].get(t) for b in present]
        if all(c is None for c in cells):
            continue
        shown = [
            "-" if c is None else f"{c['difference']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]" + ("" if c["verdict"] == "below" else f" **{c['verdict']}**")
            for c in cells
        ]
        people = next(c["people"] for c in cells if c is not None)
        lines.append(f"| {t} | " + " | ".join(shown) + f" | {people} |")
    return lines


def error_structure_lines(result: BenchmarkResult) -> list[str]:
    """``BenchmarkResult.structure`` (``error_structure``) as markdown: what averaging photos
    of one face can remove."""
    e = result.structure
    if e is None:
        return []
    ratios = ", ".join(f"k = {k}: {100 * r:.0f} %" for k, r in e["rms_ratio_by_k"].items() if k > 1)
    return [
        "",
        "## What averaging photos can remove: reconstruct (main subset, single photos)",
        "",
        (
            f"Over {e['faces']} faces (one base photo, skin type and metering, under several lightings), the signed ITA error is"
            f" a bias the face keeps under every lighting, RMS {e['face_bias_rms']:.1f}, plus a part that changes with the lighting,"
            f" SD {e['lighting_sd']:.1f}. A fusion that averages the photos' estimates removes only the second: were the lightings'"
            f" errors independent, its RMS error against one photo's would be {ratios}."
        ),
    ]


def mean_colour_table(summary: dict) -> list[str]:
    """The FAIR table on each case's mean colour over the cheeks and forehead (the ITA of the
    mean, ``CaseScore.pred_colour_ita``), with the signed error per type."""
    rows = [(m, s) for m, s in summary.items() if s.get("fair_mean_colour")]
    if not rows:
        return []
    lines = [
        "",
        "The same cases on the mean colour of the cheeks and forehead (the ITA of their mean linear colour, not the mean of per-pixel ITA):"
        " the albedo's overall tone. The per-pixel mean falls with the spread of lightness in a map, and the truth keeps its source photo's own shading.",
        "",
        "| method | Score | Avg ITA | Bias | " + " | ".join(SKIN_TYPES) + " | signed per type | ITA spread over lightings |",
        "|---|---|---|---|" + "---|" * len(SKIN_TYPES) + "---|---|",
    ]
    for method, s in rows:
        f = s["fair_mean_colour"]
        per = " | ".join(_fmt(f["per_type"].get(t), 1) for t in SKIN_TYPES)
        signed = " ".join(f"{v:+.1f}" for v in s.get("mean_colour_signed_per_type", {}).values())
        lines.append(f"| {method} | {_fmt(f['score'])} | {_fmt(f['avg_ita'])} | {_fmt(f['bias'])} | {per} | {signed} | {_fmt(s.get('mean_colour_spread_mean'))} |")
    return lines


def group_table(result: BenchmarkResult, key: str, title: str, methods: tuple[str, ...] = ("reconstruct", "identity", "photo_shape")) -> list[str]:
    table = per_group(result.scores, key)
    present = [m for m in methods if m in table]
    if not present:
        return []
    groups = sorted({g for m in present for g in table[m]})
    lines = ["", f"## {title}", "", "mean |ITA error| (signed mean in brackets; main subset, single photos)", ""]
    lines += ["| " + key + " | " + " | ".join(present) + " | cases |", "|---|" + "---|" * (len(present) + 1)]
    for g in groups:
        cells = [f"{table[m][g]['ita_error']:.1f} ({table[m][g]['signed']:+.1f})" if g in table[m] else "-" for m in present]
        lines.append(f"| {g} | " + " | ".join(cells) + f" | {table[present[0]].get(g, {}).get('cases', 0)} |")
    return lines


def markdown_table(result: BenchmarkResult) -> str:
    """The results as markdown: the FAIR tables per subset, the do-no-harm check, per person,
    per source and per light, image metrics, the k-photo curve."""
    relit = result.config.relit
    photos = f"{len(relit.photos)} given photos" if relit.photos else f"the face set's {relit.split} split"
    lines = [
        "# hifialbedo benchmark: relit real faces",
        "",
        (f"{photos}{' and their mirrors' if relit.mirror else ''} x {len(relit.skin_types)} skin types x {relit.lightings} lightings, "
         f"metering {relit.metering}, seed {relit.seed}; {result.seconds:.0f} s. ITA errors in degrees, lower is better (FAIR protocol)."),
    ]
    for sub in SUBSETS:
        summary = result.summaries.get(sub) or {}
        if not summary:
            continue
        lines += ["", f"## {SUBSET_TITLES[sub]}", ""] + fair_table(summary)
        if sub == "main":
            lines += harm_check(summary)
            lines += harm_interval_table(result)
            lines += mean_colour_table(summary)
    lines += group_table(result, "person", "Per person")
    lines += group_table(result, "source", "Per source")
    lines += group_table(result, "light", "Per light")
    lines += [
        "",
        "## Albedo accuracy (main subset; face pixels; sRGB)",
        "",
        "| method | MAE | PSNR (dB) | SSIM | LPIPS | ID distance (photo vs re-render) |",
        "|---|---|---|---|---|---|",
    ]
    for method, s in result.summary.items():
        lines.append(f"| {method} | {_fmt(s['mae'], 4)} | {_fmt(s['psnr'])} | {_fmt(s['ssim'], 3)} | {_fmt(s['lpips'], 3)} | {_fmt(s['id_distance'], 3)} |")
    for method, c in result.curve.items():
        lines += ["", f"## More photos: {method}, error against the number of photos k (main subset)", "", "| k | ITA error | MAE | runs |", "|---|---|---|---|"]
        for k, v in c["k"].items():
            lines.append(f"| {k} | {_fmt(v['ita_error'])} | {_fmt(v['mae'], 4)} | {v['runs']} |")
        lines += ["", f"k = {max(c['k'])} against k = 1: {_fmt(c['ratio_last_to_first'] and 100 * c['ratio_last_to_first'], 0)} %."]
    lines += error_structure_lines(result)
    return "\n".join(lines) + "\n"


def bar_chart_png(result: BenchmarkResult) -> bytes:
    """Per-skin-type ITA error (main subset), one bar group per type, one bar per method; the k curve."""
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
    ax.set_title("ITA error per skin type (FAIR protocol, main subset)")
    ax.legend(fontsize=7)
    if result.curve:
        ax2 = axes[0, 1]
        for m, c in result.curve.items():
            k = list(c["k"])
            ax2.plot(k, [c["k"][i]["ita_error"] for i in k], "o-", label=f"{m}: ITA error")
        ax2.set_xlabel("photos fused (k)")
        ax2.set_ylabel("mean |ITA error| (degrees)")
        ax2.set_title("More photos of one face")
        ax2.set_ylim(bottom=0)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def examples_png(result: BenchmarkResult) -> np.ndarray | None:
    """A contact sheet of the first method's worst main cases: per row the photo's face, the
    ground truth and each method's albedo, captioned with the person, type, light and error
    (uint8 sRGB)."""
    import cv2

    if not result.examples:
        return None
    labels = list(result.examples[0].tiles)
    tile = next(iter(result.examples[0].tiles.values())).shape[0]
    rows = []
    for ex in result.examples:
        row = np.concatenate([ex.tiles[k] for k in labels], axis=1)
        caption = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(caption, ex.caption[:110], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [caption, row]
    header = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    for i, label in enumerate(labels):
        cv2.putText(header, label[:24], (i * tile + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, *rows], axis=0)


def _with_str_keys(structure: dict | None) -> dict | None:
    return None if structure is None else structure | {"rms_ratio_by_k": {str(k): v for k, v in structure["rms_ratio_by_k"].items()}}


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
                "summaries": result.summaries,
                "per_person": per_group(result.scores, "person"),
                "per_source": per_group(result.scores, "source"),
                "per_light": per_group(result.scores, "light"),
                "curve": {m: {"k": {str(k): v for k, v in c["k"].items()}, "ratio_last_to_first": c["ratio_last_to_first"]} for m, c in result.curve.items()},
                "harm_intervals": result.harm,
                "error_structure": _with_str_keys(result.structure),
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
