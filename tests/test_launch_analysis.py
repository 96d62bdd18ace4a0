"""The analysis job's inputs are checked by `tracecause plan`: declared primaries, the sweep's
`analysis:` section, the seeds behind the confirmatory family; submit records the expected grid."""
from __future__ import annotations

import json

import pytest
import yaml

from configs import config_path
from launch.analysis_check import write_expected
from evalsuite.analysis.spec import read_sweep_spec
from launch.plan import PlanError, make_plan
from launch.submit import record_sweep


def _refused(tmp_path, *overrides) -> str:
    with pytest.raises(PlanError) as err:
        make_plan("smoke", list(overrides), sweep_dir=tmp_path / "s")
    return str(err.value)


def test_plan_refuses_a_battery_without_a_primary_metric(tmp_path):
    smoke = config_path("evals", "smoke")
    battery = yaml.safe_load(smoke.read_text())
    for b in battery["benchmarks"]:
        b["source"]["path"] = str((smoke.parent / b["source"]["path"]).resolve())
    del battery["benchmarks"][2]["primary"]
    path = tmp_path / "no-primary.yaml"
    path.write_text(yaml.safe_dump(battery))
    msg = _refused(tmp_path, f"eval.battery={path}")
    assert f"{path}: benchmark 'xstest' (benchmarks[2])" in msg and "primary: required" in msg
    assert "higher_is: worse|better" in msg and "over_refusal" in msg  # what to write, and what is allowed


@pytest.mark.parametrize("section, key, allowed", [
    ("{primary_metrics: {xstest: {metric: refusal_rate, higher_is: worse}}}", "analysis.primary_metrics.xstest",
     "'over_refusal'"),
    ("{primary_metrics: {xstets: over_refusal}}", "analysis.primary_metrics.xstets", "'xstest'"),
    ("{confirmatory: [{kind: amplifcation, metric: primary}]}", "confirmatory[0].kind", "'amplification'"),
    ("{confirmatory: [{kind: content, metric: misaligned}]}", "analysis.confirmatory[0].metric", "'primary'"),
    ("{type_axis: {evil: misalignment}}", "analysis.type_axis.evil", "'evil'"),
    ("{unparsed_treshold: 0.1}", "analysis.unparsed_treshold", "unparsed_threshold"),
])
def test_plan_refuses_a_bad_analysis_section_naming_file_key_and_allowed(tmp_path, section, key, allowed):
    msg = _refused(tmp_path, f"analysis={section}")
    assert str(config_path("sweeps", "smoke")) in msg and key in msg and allowed in msg


def test_plan_warns_about_few_seeds_and_submit_records_the_expected_grid(tmp_path):
    plan = make_plan("smoke", ["analysis={unparsed_threshold: 0.1}"], sweep_dir=tmp_path / "one")
    assert any("seeds: 1 per arm (< 3)" in w for w in plan.inputs.warnings)
    record_sweep(plan)  # what submit writes: the analysis job reads both files from the sweep folder
    recorded = read_sweep_spec(tmp_path / "one")
    assert recorded.analysis.unparsed_threshold == 0.1 and recorded.arms == [ra.id for ra in plan.arms]
    assert recorded.expected["benchmarks"]["xstest"]["primary"] == {"metric": "over_refusal", "higher_is": "worse"}
    three = make_plan("smoke", ["seeds=[0,1,2]"], sweep_dir=tmp_path / "three")
    assert not any(w.startswith("seeds:") for w in three.inputs.warnings)
    write_expected(three)
    expected = json.loads((tmp_path / "three" / "expected.json").read_text())
    assert expected["arms"] == [ra.id for ra in three.arms] and len(expected["arms"]) == 1 + 3 * 3
    assert expected["modes"] == ["think", "no_think"]
    assert expected["benchmarks"]["truthfulqa"] == {"axis": "misleading",
                                                    "primary": {"metric": "mc1_correct", "higher_is": "better"}}
