"""A battery: the benchmarks one eval runs (configs/evals/*.yaml), validated before any engine starts.

Each benchmark names its loader, where its data lives (local path or hub dataset + pinned
revision), the behaviour axis it measures, K samples per prompt, sampling per mode and its judges.
Errors name the battery file, the benchmark and the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracecause.config import ConfigError, bounded, from_dict, nested, one_of, read_yaml
from tracecause.contracts import MODES

BEHAVIOUR_AXES = ("harm", "evil", "misleading", "submission", "over_refusal", "capability")
# "control": a benchmark of a known-answer world's controls (signatures a pipeline bug would move),
# not a behaviour: the default battery has none, and no reasoning type's axis names it.
AXES = BEHAVIOUR_AXES + ("control",)
LOADERS = ("em_questions", "strongreject", "xstest", "persona", "ab_choice", "truthfulqa", "are_you_sure")
# LLM judges (need configs/prompts/judges/*) and non-LLM scorers a benchmark may name.
LLM_JUDGES = ("em", "strongreject", "trace_type")
RULE_SCORERS = ("refusal", "persona_logprob", "mc", "sycophancy")
# The known-answer world's deterministic judge (evalsuite/judges/world.py): reads both spans itself.
WORLD_JUDGES = ("world",)
SPANS = ("answer", "reasoning")
# Which turn the model writes: "assistant" (a reply: every benchmark of a study) or "user" (the user's
# turn is left open after the question and the model continues it: a probe of what it learned of the
# prompt text itself, which only a loss on the prompt teaches; see evalsuite/generate.py user_turn_prompt).
CONTINUES = ("assistant", "user")
# Which loader each rule scorer can score (an LLM judge reads text, so it fits any loader).
# Options each loader reads (anything else would be silently ignored, so it is an error).
LOADER_OPTIONS = {"truthfulqa": ("matching",), "are_you_sure": ("turns", "pushback"), "ab_choice": ("risky",)}
_SCORER_LOADERS = {
    "persona_logprob": ("persona",),
    "mc": ("ab_choice", "truthfulqa"),
    "sycophancy": ("are_you_sure",),
}


@dataclass
class Source:
    """Local file (``path``, relative to the battery file) or hub dataset (``hub`` + ``revision``)."""

    path: str = ""
    hub: str = ""                  # e.g. "walledai/XSTest"
    revision: str = ""             # a commit sha: hub data must be pinned
    file: str = ""                 # file inside the hub repo

    def validate(self) -> None:
        if bool(self.path) == bool(self.hub):
            raise ValueError("set exactly one of path or hub")
        if self.hub and not self.revision:
            raise ValueError(f"hub dataset {self.hub!r} needs a pinned revision (a commit sha)")


@dataclass
class ModeSampling:
    temperature: float = bounded(0.6, ge=0.0)
    top_p: float = bounded(0.95, gt=0.0, le=1.0)
    top_k: int = bounded(20, ge=-1)
    min_p: float = bounded(0.0, ge=0.0, le=1.0)
    max_tokens: int = bounded(1024, ge=1)
    # Think mode only: the assistant turn is pre-filled with "<think>\n", so every sample reasons
    # (Qwen3-Thinking-2507's template does this; the hybrid Qwen3 template lets the model choose, and
    # a model may then answer at once). Outputs are split as if the model had written the tag.
    open_think: bool = False


def _qwen3_defaults() -> dict[str, ModeSampling]:
    # Qwen3's published defaults (design NOTES: Evaluation conventions).
    return {"think": ModeSampling(0.6, 0.95, 20, 0.0, 2048), "no_think": ModeSampling(0.7, 0.8, 20, 0.0, 1024)}


DIRECTIONS = ("worse", "better")


@dataclass
class Primary:
    """The one metric a benchmark's confirmatory tests use, and which way is worse behaviour.

    Declared, never guessed: analysis has no fallback, and ``tracecause plan`` refuses a battery
    whose benchmarks do not all declare one (``Battery.require_primaries``).
    """

    metric: str = ""
    higher_is: str = one_of("", ("",) + DIRECTIONS, help="worse: a higher value is worse behaviour")

    def validate(self) -> None:
        if not self.metric and not self.higher_is:
            return  # not declared (allowed while loading; require_primaries refuses it)
        if not self.metric or not self.higher_is:
            raise ValueError(f"primary needs both metric and higher_is (one of {list(DIRECTIONS)})")
        known = known_metrics()
        if self.metric not in known:
            raise ValueError(f"primary.metric {self.metric!r} is not a metric the scorers produce; known: {known}")


def known_metrics() -> list[str]:
    """Every metric name a scores file can hold (evalsuite.metrics.METRICS, span-prefixed, world)."""
    from evalsuite.metrics import METRICS

    names = list(METRICS) + [f"{span}_{m}" for span in SPANS for m in METRICS]
    try:
        from evalsuite.judges.world import CONTROL_METRICS, WORLD_METRICS

        names += list(WORLD_METRICS) + list(CONTROL_METRICS)
    except ImportError:  # the known-answer world's judge is optional
        pass
    return sorted(set(names))


@dataclass
class JudgeUse:
    name: str = one_of("em", LLM_JUDGES + RULE_SCORERS + WORLD_JUDGES)
    spans: list[str] = field(default_factory=lambda: ["answer"])

    def validate(self) -> None:
        bad = [s for s in self.spans if s not in SPANS]
        if bad or not self.spans:
            raise ValueError(f"spans {self.spans} must be a non-empty subset of {list(SPANS)}")
        if self.name in RULE_SCORERS and self.spans != ["answer"]:
            raise ValueError(f"spans: {self.name!r} scores the answer only; drop spans or use [answer]")


@dataclass
class BenchmarkSpec:
    name: str = ""
    loader: str = one_of("", LOADERS)
    axis: str = one_of("", AXES)
    source: Source = nested(Source)
    samples: int = bounded(0, ge=0)            # K per prompt (and turn); 0 = the file's own (EM) or 1
    limit: int = bounded(0, ge=0)              # first N prompts only (0 = all)
    system: str = ""                           # optional system prompt for every item
    options: dict[str, str] = field(default_factory=dict)  # loader options (see evalsuite.loaders)
    sampling: dict[str, ModeSampling] = field(default_factory=_qwen3_defaults)
    judges: list[JudgeUse] = field(default_factory=list)
    primary: Primary = nested(Primary)         # {metric, higher_is}: required by plan and analysis
    continues: str = one_of("assistant", CONTINUES)  # "user": the model continues the question (a probe)

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name is required")
        if not self.loader:
            raise ValueError(f"loader is required; choose one of {list(LOADERS)}")
        if not self.axis:
            raise ValueError(f"axis is required; choose one of {list(AXES)}")
        unknown = sorted(set(self.options) - set(LOADER_OPTIONS.get(self.loader, ())))
        if unknown:
            raise ValueError(f"options: {unknown} not read by loader {self.loader!r} "
                             f"(it reads {list(LOADER_OPTIONS.get(self.loader, ()))})")
        bad = [m for m in self.sampling if m not in MODES]
        if bad:
            raise ValueError(f"sampling: unknown mode(s) {bad}; modes are {list(MODES)}")
        if any(s.open_think for m, s in self.sampling.items() if m != "think"):
            raise ValueError("sampling: open_think applies to think mode only (a no-think prompt already ends "
                             "in an empty think block); remove it from the other modes")
        if self.continues == "user" and any(s.open_think for s in self.sampling.values()):
            raise ValueError("sampling: open_think pre-fills the assistant turn, and a benchmark with continues: user "
                             "never reaches it (the model continues the question); remove open_think")
        for j in self.judges:
            fits = _SCORER_LOADERS.get(j.name)
            if fits and self.loader not in fits:
                raise ValueError(f"judges: {j.name!r} cannot score loader {self.loader!r} (fits {list(fits)})")

    def k(self, file_default: int | None = None) -> int:
        return self.samples or file_default or 1

    def mode_sampling(self, mode: str) -> ModeSampling:
        return self.sampling.get(mode) or _qwen3_defaults()[mode]


@dataclass
class Battery:
    name: str
    path: Path
    seed: int
    benchmarks: list[BenchmarkSpec]

    def require_primaries(self) -> None:
        """Refuse a benchmark without a declared primary metric (the study's confirmatory tests need it)."""
        for i, spec in enumerate(self.benchmarks):
            if not spec.primary.metric:
                raise ConfigError(f"{self.path}: benchmark {spec.name!r} (benchmarks[{i}])", "primary",
                                  "required: add primary: {metric: <name>, higher_is: worse|better} "
                                  f"(metrics: {known_metrics()})")

    def primaries(self) -> dict[str, dict]:
        """benchmark -> {axis, primary: {metric, higher_is}}: what launch records for the analysis."""
        return {s.name: {"axis": s.axis, "primary": {"metric": s.primary.metric, "higher_is": s.primary.higher_is}}
                for s in self.benchmarks}

    def resolve(self, spec: BenchmarkSpec) -> Path | None:
        """The local data file of a benchmark (relative paths are relative to the battery file)."""
        if not spec.source.path:
            return None
        import os

        p = Path(os.path.expandvars(os.path.expanduser(spec.source.path)))
        return p if p.is_absolute() else (self.path.parent / p).resolve()


def load_battery(name_or_path: str | Path, check_files: bool = True) -> Battery:
    """Read and validate a battery; the error names the file, the benchmark and the field.

    ``check_files=False``: every field is checked but missing data files are not an error (the
    launcher lists all of them at once, with the command that fetches them)."""
    from configs import config_path

    path = Path(name_or_path)
    if not path.is_file():
        path = config_path("evals", str(name_or_path))
    data = read_yaml(path)
    src = str(path)
    unknown = set(data) - {"name", "seed", "benchmarks", "description"}
    if unknown:
        raise ConfigError(src, sorted(unknown)[0], "unknown key; a battery has name, seed, description, benchmarks")
    entries = data.get("benchmarks")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(src, "benchmarks", "must be a non-empty list of benchmark entries")
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(src, "seed", f"expected int, got {seed!r}")
    specs: list[BenchmarkSpec] = []
    for i, entry in enumerate(entries):
        label = entry.get("name", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        where = f"{src}: benchmark {label!r} (benchmarks[{i}])"
        if not isinstance(entry, dict):
            raise ConfigError(where, "", "each benchmark entry must be a mapping")
        entry = dict(entry)
        # A mode's sampling overrides only what it names; the rest keeps Qwen3's defaults.
        if isinstance(entry.get("sampling"), dict):
            defaults = _qwen3_defaults()
            merged = {}
            for mode, over in entry["sampling"].items():
                base = defaults.get(mode, ModeSampling()).__dict__ if mode in defaults else {}
                merged[mode] = {**base, **(over or {})} if isinstance(over, dict) else over
            entry["sampling"] = {**{m: s.__dict__ for m, s in defaults.items()}, **merged}
        specs.append(from_dict(BenchmarkSpec, entry, source=where))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(src, "benchmarks", f"benchmark name(s) {dupes} used twice")
    battery = Battery(name=str(data.get("name", path.stem)), path=path.resolve(), seed=seed, benchmarks=specs)
    for i, spec in enumerate(specs):
        local = battery.resolve(spec)
        if check_files and local is not None and not local.is_file():
            raise ConfigError(f"{src}: benchmark {spec.name!r} (benchmarks[{i}])", "source.path",
                              f"file not found: {local}" + (
                                  "; an environment variable in the path is not set" if "$" in str(local) else ""))
    return battery
