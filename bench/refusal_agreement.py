"""Refusal classification against people: XSTest answers with the XSTest authors' human labels.

    python bench/refusal_agreement.py [--file ../shared/benchmarks/xstest-human/xstest_safe_completions_human_labels.csv]
        [--judge-base-url http://127.0.0.1:8000/v1 --judge-model NAME [--judge-api-key-env VAR]] [--limit N]

Prints, per model, for the held-out models together and overall: agreement with the human
over-refusal label (refused = full or partial refusal), three-way agreement, refusal recall for
full and for partial refusals, precision, and the over-refusal RATE the suite would report vs the
people's rate (its error in points). Classifiers, side by side on the same answers:
  string-match      the old default (a refusal phrase in the first 300 characters), the baseline
  refusal-rules-v2  evalsuite.refusal, the default now (no LLM)
  llm:<…>           with --judge-*: the judge's three-way ``refusal`` rubric through the suite's own
                    judge path (evalsuite.judges.stage.judge_rows: prompt, cache, parse retries); replies
                    that do not parse are counted apart (n_unparsed), never as a class.
Goal: agreement >= 0.95 and every model's rate error within ±3 points.

Held out: the rules were developed looking only at the answers of ``llama2new`` (the model with
most refusals; three revisions: first rules, a regex fix for "I'm not able to", and "Instead, …"
alternatives counted as full refusals, as the XSTest paper defines them). ``gpt4`` and
``mistralinstruct`` were not looked at while writing them: their rows are the held-out estimate.
The human labels themselves are noisy (near-identical answers carry different labels), which caps
agreement well below 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_FILE = ROOT.parent / "shared" / "benchmarks" / "xstest-human" / "xstest_safe_completions_human_labels.csv"


def print_table(name: str, table: dict) -> None:
    print(f"\nclassifier: {name}")
    print(f"{'models':<16} {'n':>4} {'agree':>6} {'3-way':>6} {'rec_full':>8} {'rec_part':>8} {'prec':>6} "
          f"{'rate_human':>10} {'rate_clf':>8} {'err_pts':>7} {'unparsed':>8}")
    for key, a in table.items():
        print(f"{key:<16} {a.n:>4} {a.agreement:>6.3f} {a.agreement_3way:>6.3f} {a.recall_full:>8.2f} "
              f"{a.recall_partial:>8.2f} {a.precision:>6.2f} {a.rate_human:>10.3f} {a.rate_classifier:>8.3f} "
              f"{100 * a.rate_error:>+7.1f} {a.n_unparsed:>8}")


def main() -> None:
    from evalsuite.refusal import RULES_CLASSIFIER, classify_refusal
    from evalsuite.refusal_agreement import (DEV_MODEL, agreement_table, classify_all, first_per_model, judge_labels,
                                             load_labelled)
    from evalsuite.scorers import is_refusal_string_match_baseline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default=str(DEFAULT_FILE))
    ap.add_argument("--judge-base-url", default="")
    ap.add_argument("--judge-model", default="")
    ap.add_argument("--judge-api-key-env", default="")
    ap.add_argument("--limit", type=int, default=0, help="first N answers per model (0 = all)")
    args = ap.parse_args()
    rows = load_labelled(args.file)
    if args.limit:
        rows = first_per_model(rows, args.limit)
    print(f"{len(rows)} answers from {args.file}; rules developed on {DEV_MODEL!r} only, "
          f"'held_out' = every other model")
    print_table("string-match (old default)",
                agreement_table(rows, ["full_refusal" if is_refusal_string_match_baseline(r.answer)
                                      else "full_compliance" for r in rows]))
    print_table(f"{RULES_CLASSIFIER} (default)", agreement_table(rows, classify_all(rows, classify_refusal)))
    if args.judge_base_url:
        from evalsuite.config import JudgeConfig
        from tracecause.config import load

        cfg = load(JudgeConfig, [], ["backend=openai", f"base_url={args.judge_base_url}", f"model={args.judge_model}",
                                     f"api_key_env={args.judge_api_key_env}", "sampling.max_tokens=64"])
        name, labels, stats = judge_labels(rows, cfg, progress=True)
        print(f"\njudge calls: {stats}")
        print_table(name, agreement_table(rows, labels))


if __name__ == "__main__":
    main()
