"""report.md + self-contained report.html (+ figures/) from the effects table."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from tracecause.config import dump_yaml
from tracecause.io import atomic_write_text

from . import figures as fig
from .document import Doc
from .first_screen import amended_banner, answers_section
from .notes import group_notes, notes_summary
from .provenance import inputs_table, sweep_provenance

FINDINGS = (
    ("amplification", "difference", "Finding 1 — CoT amplification: QTA type r − QA (same answers, reasoning added)"),
    ("content", "difference", "Finding 2 — reasoning content: type r − type r′, same paradigm (answers identical)"),
    ("answer_free", "difference", "Finding 3 — answer-free signal: QT and T-only − base and − QA"),
    ("internalisation", None, "Finding 4 — internalisation: no-think training effect, think − no-think DiD, ratio"),
)


INTERNALISATION_ROWS = (
    "Rows: no_think_effect = trained − base in no-think mode (persistence, its own CI and p); did = think − "
    "no-think difference-in-differences (a p_adj at or above alpha: not shown to differ, which is not "
    "'equal'); ratio = no-think effect / think effect, CI and p (H0: ratio 1, the effect fully survives "
    "without thinking) from the bootstrap replicates that resample prompt clusters and each arm's seeds; "
    "equivalence_tost (only for a benchmark with a declared analysis.equivalence_margins): two one-sided "
    "tests of |did| < margin, CI = the {level} interval, family 'equivalence' (Holm within it), "
    "'equivalent within ±margin' only when its p_adj < alpha.")


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
        "higher is": rows.get("higher_is", ""),
        "inference": [_inference(r) for r in rows.to_dict("records")],
        "unparsed A · B": [_unparsed(r) for r in rows.to_dict("records")],
        "input_hash": rows["input_hash"],
    })


def _inference(r: dict) -> str:
    """Short form of what the p and CI condition on (the full sentence is in inference_note)."""
    if str(r.get("inference_note", "")).startswith("conditional"):
        return "conditional on 1 training run"
    if str(r.get("method", "")).startswith("seed-level"):
        return f"seeds random, t df={r['t_df']:.1f}"
    return str(r.get("method", ""))


def _unparsed(r: dict) -> str:
    cells = []
    for side in ("a", "b"):
        n, rows = r.get(f"unparsed_{side}", 0), r.get(f"rows_{side}", 0)
        cells.append(f"{n}/{rows} ({n / rows:.1%})" if rows else "-")
    flag = "" if r.get("reliable", True) else " UNRELIABLE"
    return " · ".join(cells) + flag


def _scorers(missing: dict, benchmark: str, metric: str) -> list[str]:
    """What produced a benchmark's metric (a rule classifier or llm:<backend>:<model>), from the scores."""
    return missing.get("benchmarks", {}).get(benchmark, {}).get("scorers", {}).get(metric, [])


def _primary(df: pd.DataFrame, primary: dict) -> pd.DataFrame:
    keep = [m == primary.get(b) for b, m in zip(df["benchmark"], df["metric"])]
    return df[pd.Series(keep, index=df.index, dtype=bool)]


def _rehearsal_section(doc: Doc, root: Path):
    """A rehearsal (tiny models, truncated data, fixtures) says so before anything else: not a result."""
    import json

    from tracecause.contracts import REHEARSAL_FILE

    path = root / REHEARSAL_FILE
    if not path.is_file():
        return
    doc.h(1, "REHEARSAL — not a result")
    doc.p("This sweep is a rehearsal of the study's graph: every number below comes from stand-ins. Substitutions:",
          cls="missing")
    for note in json.loads(path.read_text()).get("substitutions", []):
        doc.p(f"- {note}")


def _missing_counts(missing: dict) -> list[tuple[str, str, list]]:
    """(title, short label for the first screen, items)."""
    return [("Arms expected (" + missing.get("expected_arms_source", "") + ") with no finished eval",
             "expected arm(s) with no finished eval", missing.get("missing_arms", [])),
            ("Evals started but not finished (no completion marker; not used)", "unfinished eval(s), not used",
             missing.get("unfinished_evals", [])),
            ("Modes never evaluated for an arm that has other evals", "mode(s) never evaluated for an arm",
             missing.get("missing_evals", [])),
            ("Expected arm/mode/benchmark cells with no scores", "arm/mode/benchmark cell(s) with no scores",
             missing.get("missing_cells", []))]


def _missing_pointer(doc: Doc, missing: dict):
    """One line near the top: how much is missing and how many notes, both listed at the end."""
    gaps = [f"{len(v)} {short}" for _, short, v in _missing_counts(missing) if v]
    summary = notes_summary(group_notes(missing.get("notes", [])))
    if gaps:
        doc.p("Missing: " + "; ".join(gaps) + " (listed at the end, 'What is missing').", cls="missing")
    if summary:
        doc.p(f"{summary} (every line at the end, section 'Notes').")


def _missing_section(doc: Doc, missing: dict):
    doc.h(1, "What is missing")
    items = [(title, v) for title, _, v in _missing_counts(missing)]
    if not any(v for _, v in items):
        doc.p(f"Nothing missing: every one of the {len(missing.get('expected_arms', []))} expected arms has "
              f"finished evals in every mode.")
    for title, values in items:
        if values:
            doc.p(f"{title}: {', '.join(values)}", cls="missing")


def _notes_section(doc: Doc, missing: dict):
    """Every note of the analysis, grouped by kind and counted (the first screen shows the count)."""
    groups = group_notes(missing.get("notes", []))
    doc.h(1, "Notes — " + (notes_summary(groups) if groups else "none"))
    for kind, meaning, lines in groups:
        doc.h(2, f"{len(lines)} {kind} ({meaning})")
        for note in lines:
            doc.p(f"Note: {note}")


def _caveats_section(doc: Doc, df: pd.DataFrame, missing: dict):
    """Rows whose numbers need a caveat: judge failures, and inference given single training runs."""
    doc.h(1, "Caveats on the numbers")
    bad = df[~df["reliable"].astype(bool)] if "reliable" in df else df.iloc[:0]
    thr = missing.get("unparsed_threshold", 0.05)
    doc.p(f"Judge failures: unparsed judge replies are absent from the means (never scored 0) and counted per side "
          f"in every row (column 'unparsed A · B'). {len(bad)} effects have an unparsed rate above {thr:.0%} on a "
          f"side, or sides differing by more than that: marked UNRELIABLE and kept out of the confirmatory family.",
          cls="missing" if len(bad) else "")
    shown = _primary(bad, missing.get("primary_metrics", {}))
    if len(shown):
        table = effects_table(shown)
        table["why"] = shown.loc[table.index, "reliability_note"].str.split(": ", n=1).str[1]
        doc.p(f"Unreliable effects on primary metrics ({len(shown)}; the other {len(bad) - len(shown)} are on "
              f"secondary metrics, see effects.parquet column reliability_note):")
        doc.table(table, highlight="family")
    cond = df[df["inference_note"].astype(str).str.startswith("conditional")] if "inference_note" in df else df.iloc[:0]
    if len(cond):
        arms = sorted({a for n in cond["inference_note"] for a in n.split(" of ", 1)[1].split(":")[0].split(", ")})
        doc.p(f"{len(cond)} effects have p-values and CIs conditional on a single training run (one seed) of "
              f"{', '.join(arms)}: they say how sure we are about that run, not about the training procedure. "
              f"Train ≥ 3 seeds per arm for inference about the procedure.", cls="missing")


def _how_to_read(doc: Doc, missing: dict, cfg, run_id: str | None):
    doc.h(1, "How to read the numbers")
    doc.p(f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(missing.get('used_evals', []))} "
          f"finished evals. Estimate: mean over prompts of per-prompt means over parsed samples (and over an arm's "
          f"training seeds), A − B; 'higher is' says whether a positive value means worse or better behaviour on "
          f"the benchmark's declared primary metric. Where an arm has several training seeds, the p-value and the "
          f"95% CI answer one question — the effect of the training procedure, seeds random — from one model: "
          f"variance = prompt-cluster variance + seed-to-seed variance, t with Satterthwaite df (column "
          f"'inference'). Where every trained arm has one seed, the CI is a percentile bootstrap over prompt "
          f"clusters ({cfg.resamples} resamples, seed {cfg.seed}) and p a sign-flip test over clusters: both "
          f"conditional on that training run. p_adj: Holm within the confirmatory family, Benjamini–Hochberg for "
          f"the exploratory rest, Holm within the declared equivalence tests. A p_adj at or above alpha means "
          f"'not shown to differ', never 'equal': only an equivalence test (TOST) against a margin declared in "
          f"sweep.yaml (analysis.equivalence_margins) can say 'equivalent within ±margin'. Effect size: Cohen's h "
          f"for rates, d_z for paired scores." + (f" W&B analysis run id: {run_id}." if run_id else ""))


def _family_section(doc: Doc, df: pd.DataFrame, missing: dict, spec, cfg):
    primary = missing.get("primary_metrics", {})
    conf = df[df["family"] == "confirmatory"]
    doc.h(1, "Confirmatory family")
    declared = "declared in sweep.yaml" if spec.declared_family else "the default; sweep.yaml declares none"
    n_sig = int((conf["p_adj"] < cfg.alpha).sum())
    filters = "; ".join(", ".join(f"{k}={v}" for k, v in f.items()) for f in spec.analysis.family_filters)
    doc.p(f"{len(conf)} pre-declared contrasts ({declared}: {filters}); {n_sig} have Holm-adjusted "
          f"p < {cfg.alpha}. "
          f"Primary metric per benchmark (declared): " + ", ".join(
              f"{b}: {m} (higher is {missing.get('primary_directions', {}).get(b, '?')})"
              for b, m in sorted(primary.items())) + ". Produced by: " + "; ".join(
              f"{b}: {', '.join(_scorers(missing, b, m)) or 'not recorded'}" for b, m in sorted(primary.items()))
          + ".")
    doc.table(effects_table(conf), highlight="family")


def _finding_sections(doc: Doc, df: pd.DataFrame, primary: dict, cfg, figdir: Path, figures: bool, made: dict):
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
        if kind == "internalisation":
            doc.p(INTERNALISATION_ROWS.format(level=f"{1 - 2 * cfg.alpha:.0%}"))
        doc.table(effects_table(rows), highlight="family")


def _specificity_section(doc: Doc, df: pd.DataFrame, figdir: Path, figures: bool, made: dict):
    spec_rows = df[df["kind"] == "specificity"]
    doc.h(1, "Specificity: reasoning type × behaviour axis")
    doc.p("Cells: arm means on each axis's primary metric, z-standardised across types within the axis. "
          "DDI: mean z of each type on its own axis (column 'method' says how its p was computed).")
    if figures:
        for paradigm in sorted(spec_rows["paradigm"].unique()):
            p = fig.specificity_heatmap(spec_rows[spec_rows["statistic"] == "z"],
                                        spec_rows[spec_rows["statistic"] == "diagonal_dominance"], paradigm,
                                        figdir / f"specificity_{paradigm}.png")
            if p:
                made[f"specificity_{paradigm}"] = p
                doc.image(p, f"Specificity heat-map, paradigm {paradigm}")
    doc.table(effects_table(spec_rows[spec_rows["statistic"] == "diagonal_dominance"]), highlight="family")


def _scale_section(doc: Doc, df: pd.DataFrame, primary: dict, spec, figdir: Path, figures: bool, made: dict):
    from evalsuite.analysis.sizes import log10_params

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


def _provenance_section(doc: Doc, root: Path, missing: dict, cfg):
    doc.h(1, "Exact inputs behind each number")
    prov = sweep_provenance(root)
    doc.p(f"sweep.yaml sha256: {prov['sweep_yaml_sha256']}; code: {prov['code'] or 'code.json absent'}. "
          "Each effect row's input_hash is the sha256 of the score files it used (listed in effects.parquet "
          "column 'inputs').")
    doc.table(pd.DataFrame(prov["datasets"]))
    doc.table(inputs_table(root, missing.get("used_evals", []), missing.get("weights_hashes", {})))
    doc.p("Analysis configuration:")
    doc.code(dump_yaml(cfg))


def write_report(root: Path, out_dir: Path, df: pd.DataFrame, missing: dict, spec, cfg, run_id: str | None = None,
                 figures: bool = True) -> dict:
    """Banners, then the answers and one figure; the detail after; missing cells and notes at the end."""
    root, out_dir = Path(root), Path(out_dir)
    figdir = out_dir / "figures"
    primary = missing.get("primary_metrics", {})
    doc = Doc(f"tracecause analysis — {spec.name}")
    amended_banner(doc, spec, missing)
    _rehearsal_section(doc, root)
    made = answers_section(doc, df, spec, missing, cfg.alpha, figdir, figures)
    _missing_pointer(doc, missing)
    _how_to_read(doc, missing, cfg, run_id)
    if not df.empty:
        _caveats_section(doc, df, missing)
        _family_section(doc, df, missing, spec, cfg)
        _finding_sections(doc, df, primary, cfg, figdir, figures, made)
        doc.h(1, "Training effects (arm − base)")
        doc.table(effects_table(_primary(df[df["kind"] == "training"], primary)), highlight="family")
        _specificity_section(doc, df, figdir, figures, made)
        _scale_section(doc, df, primary, spec, figdir, figures, made)
    _provenance_section(doc, root, missing, cfg)
    _missing_section(doc, missing)
    _notes_section(doc, missing)
    atomic_write_text(out_dir / "report.md", doc.markdown(out_dir))
    atomic_write_text(out_dir / "report.html", doc.html())
    return made
