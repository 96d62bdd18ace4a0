"""The self-contained report.html opened in headless Chromium: it renders and every image loads."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from tests.conftest import need

PROBE = """<script>
function tracecauseCheck() {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.length > 0 && imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images', (ok ? 'loaded:' : 'broken:') + imgs.length);
}
window.addEventListener('load', tracecauseCheck);
</script></body>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    # Chromium's singleton socket path must stay short: pytest's per-test TMPDIR is too long for it
    with tempfile.TemporaryDirectory(prefix="chr", dir="/tmp") as short:
        env = {**os.environ, "TMPDIR": short, "HOME": short}
        return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={short}/profile",
                               *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("html") / "html-sweep"
    simulate_sweep(root, SimSpec.small(types=("evil", "misleading"), paradigms=("qa", "qta"), seeds=(0,),
                                       n_clusters=8, k_samples=2), seed=4, drop_arms=["sim-0.6b.misleading.qta.s0"])
    analyze(root, AnalysisConfig(resamples=300, progress=False, wandb=False, figures=True))
    return root / "analysis"


def test_report_is_self_contained(report):
    html = (report / "report.html").read_text()
    pngs = sorted((report / "figures").glob("*.png"))
    assert len(pngs) >= 5
    assert html.count("<img ") == len(pngs) == html.count("src='data:image/png;base64,")
    assert not re.search(r"src=['\"](?!data:)", html), "every image must be embedded, not linked"
    md = (report / "report.md").read_text()
    for p in pngs:
        assert f"](figures/{p.name})" in md
    for text in ("Finding 1", "Finding 2", "Finding 3", "Finding 4", "What is missing", "sim-0.6b.misleading.qta.s0",
                 "Exact inputs behind each number", "scores_sha256"):
        assert text in html and text in md


def test_report_renders_in_headless_chromium(report, tmp_path):
    need(_chromium() is not None, "Debian chromium (headless)")
    probe = tmp_path / "probe.html"
    probe.write_text((report / "report.html").read_text().replace("</body>", PROBE, 1))
    dom = _run(["--virtual-time-budget=15000", "--dump-dom", probe.as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_images = len(list((report / "figures").glob("*.png")))
    assert f'data-images="loaded:{n_images}"' in dom.stdout, dom.stdout[:500]
    assert "Finding 1" in dom.stdout and "<table>" in dom.stdout

    shot = tmp_path / "report.png"
    res = _run([f"--screenshot={shot}", "--window-size=1280,2200", (report / "report.html").as_uri()])
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2200, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"
    keep = report.parent.parent / "report-screenshot.png"
    shutil.copy(shot, keep)  # left next to the sweep for a person to look at
