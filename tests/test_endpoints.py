"""The endpoint table (cifar/page/endpoints.py): the one place that says what each endpoint takes, whether it runs a
model, and for how long it may hold a GPU; the API's reference is printed from it."""

import inspect

import gradio as gr
import pytest

from cifar.engine.explainer import COSTLY_METHODS
from cifar.page.endpoints import BY_METHOD, GPU_SECONDS, QUICK, Endpoints, declared, endpoint, markdown
from cifar.page.parameters import PARAMETERS
from cifar.page.layout import TABS_WITH_ENDPOINTS
from tests.conftest import EXAMPLES, ROOT


class OneTab:
    @endpoint(BY_METHOD)
    def explain(self, image, method: str = "Grad-CAM", model: str | None = None):
        """A heatmap."""
        return image, method

    @endpoint(None)
    def stored(self, count: float = 3, model: str | None = None):
        """Something stored."""
        return count

    @endpoint(QUICK, api=False)
    def page_only(self, image):
        return image


def test_each_call_asks_for_the_gpu_time_its_arguments_need():
    table = Endpoints([OneTab()])
    assert table["explain"].seconds(EXAMPLES[0], "Grad-CAM") == GPU_SECONDS["quick"]
    assert table["explain"].seconds(EXAMPLES[0], method=COSTLY_METHODS[0]) == GPU_SECONDS["costly"]
    assert table["stored"].seconds(3) is None  # runs no model
    assert table["explain"].seconds(None) is None  # no picture: answered by a message at once
    assert table["explain"].seconds(str(ROOT / "README.md")) is None  # not a picture: likewise
    assert GPU_SECONDS["quick"] < GPU_SECONDS["costly"] <= 60  # 60 s: the platform's default, the longest queue


def test_the_page_serves_exactly_the_api_the_table_declares():
    table = Endpoints([OneTab()])
    with gr.Blocks():
        image, method, model, out = gr.Image(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        with pytest.raises(ValueError, match="takes 3 parameters, given 2 inputs"):
            table.api("explain", [image, method], [out])
        with pytest.raises(ValueError, match="page_only is not an API endpoint"):
            table.api("page_only", [image], [out])
        table.api("explain", [image, method, model], [out, out])
        with pytest.raises(ValueError, match="API endpoints declared but not served: stored"):
            table.check_complete()
    with pytest.raises(ValueError, match="two tabs declare the endpoint explain"):
        Endpoints([OneTab(), OneTab()])


def test_the_api_reference_in_docs_is_the_tables():
    printed = markdown(TABS_WITH_ENDPOINTS)  # what `python -m cifar.page.api` prints
    assert "| `/predict` | `image, top_k=3, calibrated=True, model=None` | 10 s |" in printed
    assert printed in (ROOT / "docs" / "api.md").read_text(), "docs/api.md: paste `python -m cifar.page.api` again"


def test_every_api_parameter_is_described_once_for_assistants_and_docs():
    """What an MCP client reads of each parameter (cifar/page/parameters.py): every API parameter has a line, and every
    line belongs to a parameter (a renamed one would leave its description behind)."""
    taken = {p.name for tab in TABS_WITH_ENDPOINTS for _, method, _, api in declared(tab) if api
             for p in list(inspect.signature(method).parameters.values())[1:]}
    assert taken == set(PARAMETERS)
