"""The notebooks' papermill parameters: clear failures on bad values and names; committed outputs."""
import json
import re

import papermill as pm
import pytest

from stif_core.lab.report import check_parameters, execute, notebooks_dir, suite

TOUR = notebooks_dir() / "01_tour.ipynb"
COMMON = {"data_root", "checkpoint", "device", "seed", "fast"}
ABLATION = "10_ablation.ipynb"  # scores the whole val split: it has no ``sequence``
OWN_VIDEO = "12_your_video.ipynb"  # tracks a video file: ``video`` and ``box`` instead of ``sequence``


def run(tmp_path, **parameters):
    execute(TOUR, tmp_path / "out.ipynb", parameters)


def test_bad_parameter_value_stops_in_the_first_cells(tmp_path):
    with pytest.raises(ValueError, match=r"parameter device='gpu' is not valid; valid values"):
        run(tmp_path, device="gpu")
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    ran = [c for c in executed["cells"] if c["cell_type"] == "code" and c.get("execution_count")]
    assert len(ran) <= 3  # parameters, injected parameters, set-up: nothing after it ran


@pytest.mark.data
def test_unknown_sequence_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"parameter sequence='jogging'.*'jogging-1'"):
        run(tmp_path, sequence="jogging")


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"parameter checkpoint='nothing.safetensors'"):
        run(tmp_path, checkpoint="nothing.safetensors")


@pytest.mark.parametrize("parameters, message", [
    ({"variant": "baseline", "knockout": "gate_half"}, r"unknown knock-out 'gate_half' for the baseline variant; "
                                                       r"valid: \['no_q2m', 'mask_empty'\]"),
    ({"variant": "ste+stif"}, r"parameter variant='ste\+stif': no shipped model of that row"),
])
def test_ablation_refuses_a_knockout_or_model_it_cannot_have(tmp_path, parameters, message):
    with pytest.raises(ValueError, match=message):
        execute(notebooks_dir() / ABLATION, tmp_path / "out.ipynb",
                parameters | {"output_dir": str(tmp_path / "ablation")})


@pytest.mark.parametrize("parameters, message", [
    ({"video": "nothing.mp4"}, r"video nothing.mp4 does not exist"),
    ({"box": "1,2"}, r"--box '1,2': give four numbers x,y,w,h"),
    ({"memory_policy": "newest"}, r"parameter memory_policy='newest' is not valid"),
])
def test_your_video_refuses_a_video_or_box_it_cannot_use(tmp_path, parameters, message):
    with pytest.raises(ValueError, match=message):
        execute(notebooks_dir() / OWN_VIDEO, tmp_path / "out.ipynb", parameters)


def test_unknown_parameter_name_is_refused():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['sequense'\]"):
        check_parameters(TOUR, {"sequense": "deer"})


@pytest.mark.parametrize("path", suite(ablation=True), ids=lambda p: p.name)
def test_notebooks_have_parameters_and_clean_outputs(path):
    expected = COMMON | {ABLATION: set(), OWN_VIDEO: {"video", "box"}}.get(path.name, {"sequence"})
    cells = json.loads(path.read_text())["cells"]
    if any("STIFTracker(" in "".join(c["source"]) for c in cells):
        expected |= {"memory_policy"}  # a notebook that tracks names the memory it keeps
    assert expected <= set(pm.inspect_notebook(str(path)))
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(c.get("outputs") or not c["source"] for c in code[1:]), "committed without outputs"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    stray = [c["source"] for c in code for o in c["outputs"]
             if o["output_type"] == "execute_result" and "nb.check(" in "".join(c["source"]).strip().splitlines()[-1]]
    assert not stray, f"a cell ends with the value of nb.check: {stray[:1]}"
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for c in code for o in c["outputs"]]
    assert not [t for t in texts if re.match(r"[VH]Box\(children=|<\S+ object at 0x", t)], "a widget's repr as text"


QUOTED = re.compile(r"(-?\d+(?:\.\d+)?)(%?)\s*<!--\s*check:\s*([^>]+?)\s*-->")  # 0.372 <!-- check: KEY -->


def quoted_numbers(path) -> list[tuple[str, str, str]]:
    """(number as written, '%' or '', key) of every number a markdown cell ties to a stored key."""
    cells = json.loads(path.read_text())["cells"]
    return [m.groups() for c in cells if c["cell_type"] == "markdown" for m in QUOTED.finditer("".join(c["source"]))]


def test_numbers_the_text_quotes_are_the_stored_ones():
    """A number in a notebook's text followed by ``<!-- check: KEY -->`` (invisible when rendered) must be the
    stored reference of that key, to the decimals it is written with (or within the key's tolerance): re-made
    references that move a number fail here until the sentence is rewritten."""
    refs = json.loads((notebooks_dir() / "reference_values.json").read_text())["values"]
    quoted = {p.name: quoted_numbers(p) for p in suite(ablation=True)}
    assert sum(map(len, quoted.values())) >= 20  # the conclusions quote their key numbers
    wrong = []
    for name, rows in quoted.items():
        for text, percent, key in rows:
            assert key in refs, f"{name}: the text quotes {key!r}, which has no stored reference"
            value = refs[key]["value"] * (100 if percent else 1)
            decimals = len(text.partition(".")[2])
            slack = max(0.5 * 10 ** -decimals, refs[key]["tol"] * (100 if percent else 1))
            if abs(float(text) - value) > slack + 1e-12:
                wrong.append(f"{name}: {text}{percent} for {key!r}, stored {value:.4g}")
    assert not wrong, wrong
