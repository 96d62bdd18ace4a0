"""Matplotlib figures a person reads instead of numbers (PNG, written atomically)."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tracecause.io import atomic_write_bytes  # noqa: E402

MAX_FOREST_ROWS = 40
PARADIGM_COLORS = {"qa": "#7f7f7f", "qta": "#d62728", "qt": "#1f77b4", "t_only": "#2ca02c", "base": "#000000"}


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def short_arm(arm: str, size: str) -> str:
    return arm[len(size) + 1:] if arm.startswith(size + ".") else arm


def forest(rows: pd.DataFrame, title: str, path: Path) -> Path | None:
    """Estimates with CIs, confirmatory first then by adjusted p; filled = adjusted p < 0.05."""
    if rows.empty:
        return None
    rows = rows.assign(_conf=(rows["family"] != "confirmatory").astype(int)).sort_values(["_conf", "p_adj", "p"])
    cut = len(rows) > MAX_FOREST_ROWS
    rows = rows.head(MAX_FOREST_ROWS).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.28 * len(rows)))
    y = np.arange(len(rows))
    est, lo, hi = rows["estimate"].to_numpy(), rows["ci_lo"].to_numpy(), rows["ci_hi"].to_numpy()
    sig = rows["p_adj"].to_numpy(dtype=float) < 0.05
    colors = [PARADIGM_COLORS.get(p, "#9467bd") for p in rows["paradigm"]]
    for c in set(colors):
        k = np.array([x == c for x in colors])
        # the interval as drawn from its ends: a percentile interval need not contain its estimate
        # (a mutant's dose-free world gave one that did not; errorbar refuses negative lengths)
        ax.hlines(y[k], lo[k], hi[k], colors=c, linewidth=1.5)
    ax.scatter(est, y, c=[c if s else "white" for c, s in zip(colors, sig)], edgecolors=colors, zorder=3, s=30)
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{r.size}  {short_arm(r.arm_a, r.size)} − {short_arm(r.arm_b, r.size)}  [{r.benchmark}/{r.metric}, {r.mode}]"
              + ("  *" if r.family == "confirmatory" else "") for r in rows.itertuples()]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("effect (difference in prompt-level means) with 95% CI")
    ax.set_title(title + (f" (top {MAX_FOREST_ROWS} shown)" if cut else ""), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def specificity_heatmap(cells: pd.DataFrame, ddi: pd.DataFrame, paradigm: str, path: Path) -> Path | None:
    cells = cells[cells["paradigm"] == paradigm]
    if cells.empty:
        return None
    sizes = sorted(cells["size"].unique(), key=str)
    modes = sorted(cells["mode"].unique(), reverse=True)
    fig, axes = plt.subplots(len(sizes), len(modes), figsize=(4.4 * len(modes), 3.9 * len(sizes)), squeeze=False)
    fig.subplots_adjust(hspace=0.55, wspace=0.45)
    for i, size in enumerate(sizes):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            sub = cells[(cells["size"] == size) & (cells["mode"] == mode)]
            if sub.empty:
                ax.axis("off")
                continue
            mat = sub.pivot_table(index="rtype_a", columns="axis", values="estimate")
            im = ax.imshow(mat.to_numpy(), cmap="RdBu_r", vmin=-1.6, vmax=1.6)
            ax.set_xticks(range(mat.shape[1]), mat.columns, rotation=30, fontsize=8)
            ax.set_yticks(range(mat.shape[0]), mat.index, fontsize=8)
            for (a, b), v in np.ndenumerate(mat.to_numpy()):
                ax.text(b, a, f"{v:+.1f}", ha="center", va="center", fontsize=8)
            d = ddi[(ddi["size"] == size) & (ddi["mode"] == mode) & (ddi["paradigm"] == paradigm)]
            note = f"DDI {d['estimate'].iloc[0]:.2f}, p {d['p'].iloc[0]:.3g}" if len(d) else ""
            ax.set_title(f"{size} · {mode}\n{note}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.6, label="z within axis")
    fig.suptitle(f"Specificity ({paradigm}): reasoning type × behaviour axis", fontsize=11)
    return _save(fig, path)


def think_vs_no_think(training: pd.DataFrame, path: Path) -> Path | None:
    """Training effect in think (x) vs no-think (y) per arm and benchmark; y = x is full internalisation."""
    keys = ["size", "arm_a", "arm_b", "benchmark", "metric"]
    t = training[training["mode"] == "think"].set_index(keys)
    n = training[training["mode"] == "no_think"].set_index(keys)
    both = t.add_suffix("_t").join(n.add_suffix("_n"), how="inner")
    if both.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 6))
    for paradigm, g in both.groupby("paradigm_t"):
        c = PARADIGM_COLORS.get(paradigm, "#9467bd")
        ax.hlines(g["estimate_n"], g["ci_lo_t"], g["ci_hi_t"], colors=c, alpha=0.8, linewidth=0.7)  # interval ends,
        ax.vlines(g["estimate_t"], g["ci_lo_n"], g["ci_hi_n"], colors=c, alpha=0.8, linewidth=0.7)  # as in the forest
        ax.plot(g["estimate_t"], g["estimate_n"], "o", color=c, ms=4, alpha=0.8, label=paradigm)
    lim = [min(both["ci_lo_t"].min(), both["ci_lo_n"].min()), max(both["ci_hi_t"].max(), both["ci_hi_n"].max())]
    ax.plot(lim, lim, "k--", lw=0.8, label="y = x (effect fully survives)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("training effect, think mode")
    ax.set_ylabel("training effect, no-think mode")
    ax.set_title("Internalisation: does the effect survive without thinking?", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def scale_trend(rows: pd.DataFrame, log_params: dict, title: str, path: Path) -> Path | None:
    """Effect against log10(parameters), one panel per benchmark, one line per contrast."""
    rows = rows[rows["size"].map(lambda s: log_params.get(s) is not None)]
    if rows.empty or rows["size"].nunique() < 2:
        return None
    benches = sorted(rows["benchmark"].unique())
    fig, axes = plt.subplots(1, len(benches), figsize=(4.5 * len(benches), 3.6), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        sub = rows[rows["benchmark"] == bench]
        groups = list(sub.groupby(["rtype_a", "paradigm", "rtype_b", "paradigm_b"]))
        for i, ((ra, pa, rb, pb), g) in enumerate(groups):
            jitter = 0.015 * (i - (len(groups) - 1) / 2)  # keep overlapping intervals apart
            g = g.assign(x=g["size"].map(log_params) + jitter).sort_values("x")
            ax.errorbar(g["x"], g["estimate"], yerr=[g["estimate"] - g["ci_lo"], g["ci_hi"] - g["estimate"]],
                        marker="o", ms=4, capsize=2, label=f"{ra}.{pa} − {rb}.{pb}")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("log10(parameters)")
        ax.set_title(bench, fontsize=9)
    axes[0][0].set_ylabel("effect with 95% CI")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)
