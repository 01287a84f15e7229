"""docs/notebook.ipynb runs top to bottom (nbclient, a real kernel): a model in memory, two layers of
pictures, a curve; results and contact sheets show as PNGs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from featviz_core import RenderSettings, collect, render_channels

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"


def test_results_show_as_pictures_in_jupyter(tiny, store):
    result = collect(render_channels(tiny, [("relu3", 0)], RenderSettings(size=32, steps=2), store))[0]
    assert result._repr_png_() == result.png and result.png.startswith(b"\x89PNG")


@pytest.mark.usefixtures("single_thread")
def test_the_notebook_runs_and_shows_pictures_and_a_curve(tmp_path, monkeypatch):
    import nbclient  # requirements-dev.txt: a missing one fails here, never skips
    import nbformat

    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 2  # one result, the contact sheet
    assert any("plotly" in mime for o in outputs for mime in o.get("data", {}))  # the curve
    assert (tmp_path / "featviz-cache").is_dir()
