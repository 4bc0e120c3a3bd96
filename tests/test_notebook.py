"""The notebook end to end: executed headless in the `smoke` profile, outputs written to a temporary folder."""

import json
import re

import pytest
from conftest import ROOT

TEMPERATURES = ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, corpus_text):
    papermill = pytest.importorskip("papermill")
    out = tmp_path_factory.mktemp("smoke")
    papermill.execute_notebook(
        str(ROOT / "assignment3.ipynb"), str(out / "executed.ipynb"), cwd=str(ROOT), progress_bar=False,
        parameters=dict(PROFILE="smoke", RESULTS_DIR=str(out / "results"), FIGURES_DIR=str(out / "figures"),
                        CHECKPOINT_DIR=str(out / "checkpoints")),
    )
    return out


def test_notebook_runs_top_to_bottom_without_errors(smoke_run):
    cells = json.loads((smoke_run / "executed.ipynb").read_text())["cells"]
    errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert all(c.get("execution_count") for c in cells if c["cell_type"] == "code")


def test_smoke_run_records_every_result_the_report_reads(smoke_run):
    results = json.loads((smoke_run / "results" / "smoke.json").read_text())
    assert results["profile"] == "smoke"
    assert set(results["hardware"]) >= {"device", "torch"}
    for name in ("baseline", "large"):
        run = results[name]
        assert set(run) >= {"config", "n_params", "best_val_loss", "best_iter", "final_val_loss", "train_time_s",
                            "tokens_per_s", "history"}
        assert len(run["history"]["iter"]) == len(run["history"]["val_loss"]) == len(run["history"]["train_loss"])
        assert run["best_val_loss"] == min(run["history"]["val_loss"])
    assert list(results["samples"]) == TEMPERATURES
    assert all(s.startswith("ROMEO:") for s in results["samples"].values())
    assert len(results["temperature_metrics"]["nll"]) == 6


def test_figures_are_written_per_profile_as_png_and_pdf(smoke_run):
    names = {p.name for p in (smoke_run / "figures").iterdir()}
    for stem in ("char_freq", "baseline_loss", "large_loss", "temperature"):
        assert {f"{stem}_smoke.png", f"{stem}_smoke.pdf"} <= names


def test_notebook_contains_no_fused_attention():
    source = (ROOT / "assignment3.ipynb").read_text()
    assert not re.search(r"scaled_dot_product_attention|MultiheadAttention|flash_attn", source)


def test_parameters_cell_is_tagged_for_papermill():
    cells = json.loads((ROOT / "assignment3.ipynb").read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and 'PROFILE = "auto"' in "".join(tagged[0]["source"])
