"""report.md + self-contained report.html (+ figures/) from the effects table."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from tracecause.config import dump_yaml
from tracecause.io import atomic_write_text

from . import figures as fig
from .document import Doc
from .provenance import inputs_table, sweep_provenance

FINDINGS = (
    ("amplification", "difference", "Finding 1 — CoT amplification: QTA type r − QA (same answers, reasoning added)"),
    ("content", "difference", "Finding 2 — reasoning content: type r − type r′, same paradigm (answers identical)"),
    ("answer_free", "difference", "Finding 3 — answer-free signal: QT and T-only − base and − QA"),
    ("internalisation", None, "Finding 4 — internalisation: no-think training effect, think − no-think DiD, ratio"),
)


def effects_table(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.sort_values(["family", "benchmark", "metric", "size", "mode", "arm_a", "arm_b"])
    return pd.DataFrame({
        "size": rows["size"], "mode": rows["mode"], "benchmark": rows["benchmark"], "metric": rows["metric"],
        "statistic": rows["statistic"],
        "A": [fig.short_arm(a, s) for a, s in zip(rows["arm_a"], rows["size"])],
        "B": [fig.short_arm(b, s) for b, s in zip(rows["arm_b"], rows["size"])],
        "estimate": rows["estimate"],
        "95% CI": [f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(rows["ci_lo"], rows["ci_hi"])],
        "p": rows["p"], "p_adj": rows["p_adj"], "family": rows["family"], "effect size": rows["effect_size"],
        "prompts/clusters/seeds": [f"{a}/{b}/{c}" for a, b, c in zip(rows["n_prompts"], rows["n_clusters"],
                                                                      rows["n_seeds"])],
        "input_hash": rows["input_hash"],
    })


def _primary(df: pd.DataFrame, primary: dict) -> pd.DataFrame:
    keep = [m == primary.get(b) for b, m in zip(df["benchmark"], df["metric"])]
    return df[pd.Series(keep, index=df.index, dtype=bool)]


def _missing_section(doc: Doc, missing: dict):
    doc.h(1, "What is missing")
    items = [("Arms expected (" + missing.get("expected_arms_source", "") + ") with no finished eval",
              missing.get("missing_arms", [])),
             ("Evals started but not finished (no completion marker; not used)", missing.get("unfinished_evals", [])),
             ("Modes never evaluated for an arm that has other evals", missing.get("missing_evals", []))]
    if not any(v for _, v in items):
        doc.p(f"Nothing missing: every one of the {len(missing.get('expected_arms', []))} expected arms has "
              f"finished evals in every mode.")
    for title, values in items:
        if values:
            doc.p(f"{title}: {', '.join(values)}", cls="missing")
    for note in missing.get("notes", []):
        doc.p(f"Note: {note}")


def write_report(root: Path, out_dir: Path, df: pd.DataFrame, missing: dict, spec, cfg, run_id: str | None = None,
                 figures: bool = True) -> dict:
    from evalsuite.analysis.sizes import log10_params

    root, out_dir = Path(root), Path(out_dir)
    figdir = out_dir / "figures"
    primary = missing.get("primary_metrics", {})
    doc = Doc(f"tracecause analysis — {spec.name}")
    doc.p(f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(missing.get('used_evals', []))} "
          f"finished evals. Point estimates are means over prompts of per-prompt means over samples. 95% CIs: "
          f"percentile bootstrap over prompt clusters (paraphrases stay together; training seeds resampled too "
          f"where an arm has several), {cfg.resamples} resamples, seed {cfg.seed}. p: paired sign-flip permutation "
          f"over clusters. p_adj: Holm within the confirmatory family, Benjamini–Hochberg for the exploratory rest. "
          f"Effect size: Cohen's h for rates, d_z for paired scores." + (f" W&B analysis run id: {run_id}." if run_id else ""))
    _missing_section(doc, missing)
    made: dict[str, Path] = {}
    if df.empty:
        doc.p("No effects could be computed from the finished evals.", cls="missing")
    else:
        conf = df[df["family"] == "confirmatory"]
        doc.h(1, "Confirmatory family")
        declared = "declared in sweep.yaml" if spec.declared_family else "the default; sweep.yaml declares none"
        n_sig = int((conf["p_adj"] < cfg.alpha).sum())
        filters = "; ".join(", ".join(f"{k}={v}" for k, v in f.items()) for f in spec.analysis.family_filters)
        doc.p(f"{len(conf)} pre-declared contrasts ({declared}: {filters}); {n_sig} have Holm-adjusted "
              f"p < {cfg.alpha}. "
              f"Primary metric per benchmark: " + ", ".join(f"{b}: {m}" for b, m in sorted(primary.items())) + ".")
        doc.table(effects_table(conf), highlight="family")
        for kind, stat, title in FINDINGS:
            rows = _primary(df[df["kind"] == kind], primary)
            if stat:
                rows = rows[rows["statistic"] == stat]
            doc.h(1, title)
            if figures:
                plot_rows = rows if kind != "internalisation" else rows[rows["statistic"] == "did"]
                p = fig.forest(plot_rows, title.split(" — ")[0] + (" (DiD think − no-think)" if kind == "internalisation" else ""),
                               figdir / f"forest_{kind}.png")
                if p:
                    made[f"forest_{kind}"] = p
                    doc.image(p, f"{title} (primary metrics; * confirmatory; filled = adjusted p < 0.05)")
                if kind == "internalisation":
                    p = fig.think_vs_no_think(_primary(df[df["kind"] == "training"], primary), figdir / "think_vs_no_think.png")
                    if p:
                        made["think_vs_no_think"] = p
                        doc.image(p, "Training effect (arm − base) in think vs no-think mode, primary metrics")
            doc.table(effects_table(rows), highlight="family")
        doc.h(1, "Training effects (arm − base)")
        doc.table(effects_table(_primary(df[df["kind"] == "training"], primary)), highlight="family")
        spec_rows = df[df["kind"] == "specificity"]
        doc.h(1, "Specificity: reasoning type × behaviour axis")
        doc.p("Cells: arm means on each axis's primary metric, z-standardised across types within the axis. "
              "DDI: mean z of each type on its own axis; p from permuting type labels within prompts.")
        if figures:
            for paradigm in sorted(spec_rows["paradigm"].unique()):
                p = fig.specificity_heatmap(spec_rows[spec_rows["statistic"] == "z"],
                                            spec_rows[spec_rows["statistic"] == "diagonal_dominance"], paradigm,
                                            figdir / f"specificity_{paradigm}.png")
                if p:
                    made[f"specificity_{paradigm}"] = p
                    doc.image(p, f"Specificity heat-map, paradigm {paradigm}")
        doc.table(effects_table(spec_rows[spec_rows["statistic"] == "diagonal_dominance"]), highlight="family")
        doc.h(1, "Scale: effects against log10(parameters)")
        logp = {s: log10_params(s, spec.analysis.model_params) for s in df["size"].unique() if "+" not in str(s)}
        if figures:
            for kind in ("amplification", "content"):
                rows = _primary(df[(df["kind"] == kind) & (df["mode"] == "think")], primary)
                p = fig.scale_trend(rows, logp, f"{kind} effect vs model size (think, primary metric)",
                                    figdir / f"scale_{kind}.png")
                if p:
                    made[f"scale_{kind}"] = p
                    doc.image(p, f"Scale trend of the {kind} effect")
        doc.table(effects_table(_primary(df[df["kind"] == "scale"], primary)), highlight="family")
    doc.h(1, "Exact inputs behind each number")
    prov = sweep_provenance(root)
    doc.p(f"sweep.yaml sha256: {prov['sweep_yaml_sha256']}; code: {prov['code'] or 'code.json absent'}. "
          "Each effect row's input_hash is the sha256 of the score files it used (listed in effects.parquet "
          "column 'inputs').")
    doc.table(pd.DataFrame(prov["datasets"]))
    doc.table(inputs_table(root, missing.get("used_evals", [])))
    doc.p("Analysis configuration:")
    doc.code(dump_yaml(cfg))
    atomic_write_text(out_dir / "report.md", doc.markdown(out_dir))
    atomic_write_text(out_dir / "report.html", doc.html())
    return made
