"""The benchmark's published form: a Markdown table with targets, and a latency chart."""

from pathlib import Path

SIZES = ["Kit-Ho Mak", "SQuAD paragraph", "5,000 chars", "20,000 chars"]
SHORT = SIZES[:2]
# Issue targets, as ratios qasite / reference (lower is better); fast mode has them for long inputs.
LATENCY_TARGET = {size: (0.7 if size in SHORT else 0.9) for size in SIZES}
FAST_LATENCY_TARGET = {"5,000 chars": 0.5, "20,000 chars": 0.5}
FAST_AGREEMENT_TARGET = 0.97
FLOOR_TARGET = 1.3
COLD_TARGET = 0.6
PAGE_TARGET = 0.25
FOOTPRINT_TARGET = 0.6
PARITY_TARGET = 0.99


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return f"{value:.2f}"
    return f"{value:.2f} ({'met' if value <= target else 'missed'}; target ≤ {target})"


def share_verdict(share: float, target: float) -> str:
    return f"{100 * share:.1f}% ({'met' if share >= target else 'missed'}; target ≥ {100 * target:.0f}%)"


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# qasite vs transformers v4 pipeline ({report['mode']} run, {machine['date']})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"torch {machine['torch']}; qasite on transformers {machine['transformers (qasite)']}, "
        f"reference on transformers {machine['transformers (reference)']}. torch on 1 thread on both sides. "
        f"Ratios are qasite / reference from the same run (lower is better). Measuring took "
        f"{report['seconds']:.0f} s, after {report['setup_seconds']:.0f} s of set-up (virtualenv, "
        "runtime trees and baked models, reused by later runs).",
        "",
        "## Parity (real MiniLM model, SQuAD sample)",
        "",
        "| options | questions | identical (answer, start, end) | max score diff (v4's capped at 1) | EM / F1 qasite | EM / F1 reference |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in report["parity"].items():
        lines.append(
            f"| {label} | {row['questions']} | {share_verdict(row['identical_share'], PARITY_TARGET)} | "
            f"{row['max_score_diff_when_identical']:.1e} | {row['qasite_exact_match']:.1f} / {row['qasite_f1']:.1f} | "
            f"{row['reference_exact_match']:.1f} / {row['reference_f1']:.1f} |"
        )
    fast = report["fast_mode"]
    lines += ["", "Fast mode (QA_FAST=1, bfloat16) against exact mode, same questions: "
              f"{share_verdict(fast['identical_share'], FAST_AGREEMENT_TARGET)} identical best answers "
              f"({fast['identical']} of {fast['questions']}); EM / F1 {fast['fast_exact_match']:.1f} / "
              f"{fast['fast_f1']:.1f} (exact mode {fast['exact_exact_match']:.1f} / {fast['exact_f1']:.1f})."]
    lines += ["", "## Warm latency per request (median / p90, ms)", "",
              "| model | layer | input | qasite | reference | ratio (target) | qasite / floor |",
              "|---|---|---|---|---|---|---|"]
    for key, row in report["latency"].items():
        model, layer, size = key.split(" | ")
        if size == "peak RSS MB":
            continue
        floor = report["floor_ms"].get(size) if model == "bert-tiny shape" and layer == "in-process" else None
        over_floor = verdict(row["qasite"]["median_ms"] / floor, FLOOR_TARGET) if floor else "–"
        target = FAST_LATENCY_TARGET.get(size) if "fast" in layer else LATENCY_TARGET[size]
        lines.append(
            f"| {model} | {layer} | {size} | {row['qasite']['median_ms']:.2f} / {row['qasite']['p90_ms']:.2f} | "
            f"{row['reference']['median_ms']:.2f} / {row['reference']['p90_ms']:.2f} | "
            f"{verdict(row['ratio'], target)} | {over_floor} |"
        )
    lines += ["", "Floor (tokenization + the forward pass over all windows, bert-tiny shape, exact mode): "
              + ", ".join(f"{size} {ms:.2f} ms" for size, ms in report["floor_ms"].items()) + ".", ""]
    lines += ["## Memory (peak RSS of the latency workers, MB)", "", "| model | layer | qasite | reference |",
              "|---|---|---|---|"]
    for key, row in report["latency"].items():
        model, layer, size = key.split(" | ")
        if size == "peak RSS MB":
            lines.append(f"| {model} | {layer} | {row['qasite']:.0f} | {row['reference']:.0f} |")
    cold = report["cold_start"]
    answer = cold["qasite first answer (Lambda handler)"]["median_s"]
    reference = cold["reference first answer (WSGI app)"]["median_s"]
    page = cold["qasite first page (WSGI, model loading in background)"]["median_s"]
    lines += ["", "## Cold start (fresh process, bert-tiny shape; median)", "",
              "| what | seconds | peak RSS MB |", "|---|---|---|"]
    lines += [f"| {label} | {row['median_s']:.2f} | {row['peak_rss_mb']:.0f} |" for label, row in cold.items()]
    lines += ["", f"First answer qasite / reference: {verdict(answer / reference, COLD_TARGET)}. "
              f"First page / qasite's first answer: {verdict(page / answer, PAGE_TARGET)}.", ""]
    lines += ["## Throughput (gunicorn on loopback, 2 workers × 1 thread, SQuAD paragraph)", "",
              "| server | clients | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for key, row in report["throughput"].items():
        server, clients = key.split(" | concurrency ")
        lines.append(f"| {server} | {clients} | {row['requests_per_s']:.0f} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['errors']} |")
    foot = report["footprint"]
    lines += ["", "## Footprint (runtime tree as the image installs it, model excluded)", "",
              "| tree | installed MB | gzipped MB |", "|---|---|---|",
              f"| qasite (build/runtime) | {foot['qasite']['installed_mb']:.0f} | {foot['qasite']['gzipped_mb']:.0f} |",
              f"| reference (pip --target transformers 4.57.6 torch numpy) | {foot['reference']['installed_mb']:.0f} | "
              f"{foot['reference']['gzipped_mb']:.0f} |",
              "", f"Ratio installed: {verdict(foot['ratio_installed'], FOOTPRINT_TARGET)}; gzipped: "
              f"{verdict(foot['ratio_gzipped'], FOOTPRINT_TARGET)}.", ""]
    return "\n".join(lines)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for layer in ["in-process", "end-to-end", "in-process, fast mode"]:
        rows = [report["latency"].get(f"bert-tiny shape | {layer} | {size}") for size in SIZES]
        if not all(rows):
            continue
        # Fast mode's reference is the in-process one, already drawn.
        sides = (("qasite", "-o"),) if "fast" in layer else (("qasite", "-o"), ("reference", "--s"))
        for side, style in sides:
            axes.plot(SIZES, [row[side]["median_ms"] for row in rows], style, label=f"{side}, {layer}")
    axes.plot(SIZES, [report["floor_ms"][size] for size in SIZES], ":", color="grey", label="floor")
    axes.set_yscale("log")
    axes.set_ylabel("median latency per request (ms, log scale)")
    axes.set_title("qasite vs transformers v4 pipeline (bert-tiny shape, 1 thread)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
