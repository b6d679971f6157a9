"""The app as tools for AI assistants: `python app.py --mcp` driven by the `mcp` package's own client over Streamable
HTTP, as an assistant drives it, and compared with gradio_client against the same server."""

import ast
import asyncio
import base64
import io

import numpy as np
import PIL.Image
from gradio_client import Client, handle_file

from cifar.page.assistant_tools import MCP_PATH
from cifar.page.parameters import PARAMETERS
from tests.conftest import EXAMPLES
from tests.test_app import app_process

CAT = EXAMPLES[3]


def data_url(path) -> str:
    with open(path, "rb") as file:
        return "data:image/png;base64," + base64.b64encode(file.read()).decode()


async def session_calls(url: str, calls: list) -> tuple:
    """(the tools the server lists, the result of each (tool, arguments) call), over one MCP session."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url + MCP_PATH) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            return tools, [await session.call_tool(name, arguments) for name, arguments in calls]


def pixels(item) -> np.ndarray:
    """An MCP image content's picture, or a file's."""
    source = io.BytesIO(base64.b64decode(item.data)) if hasattr(item, "data") else item
    return np.asarray(PIL.Image.open(source).convert("RGB"), dtype=np.float32)


def test_an_assistant_lists_and_calls_the_apps_tools(tiny_run):
    calls = [("predict", {"image": data_url(CAT), "top_k": 3}),
             ("explain", {"image": data_url(CAT), "layer": "layer3", "method": "LayerCAM"}),
             ("predict", {"image": "data:image/png;base64," + base64.b64encode(b"not a picture").decode()})]
    with app_process("--mcp", "--model", str(tiny_run)) as url:
        tools, (predicted, explained, refused) = asyncio.run(session_calls(url, calls))
        client = Client(url, verbose=False)
        label, model_view = client.predict(handle_file(CAT), 3, api_name="/predict")
        heatmap, strip, caption = client.predict(handle_file(CAT), "layer3", "predicted class", "LayerCAM",
                                                 api_name="/explain")

    # Every API endpoint is a tool, described for an assistant: what it answers, each parameter's meaning and type.
    by_name = {tool.name: tool for tool in tools}
    assert {"predict", "explain", "faithfulness", "metrics", "cover", "contrast", "compare_methods",
            "corruption", "misclassified", "mistake_evidence"} <= set(by_name)
    explain = by_name["explain"]
    assert explain.description.startswith("The heatmap of `method` at `layer` for class `target`")
    schema = explain.inputSchema
    assert schema["required"] == ["image"]
    assert schema["properties"]["layer"]["enum"] == ["layer1", "layer2", "layer3", "layer4", "layer4.1.conv2"]
    assert "Score-CAM" in schema["properties"]["method"]["enum"]
    assert schema["properties"]["opacity"]["type"] == "number"
    for tool in tools:
        for name, described in tool.inputSchema["properties"].items():
            assert described["description"] == PARAMETERS[name], (tool.name, name)

    # The same answers as gradio_client's: the label's probabilities, and the pictures as the protocol's images.
    assert not predicted.isError and [item.type for item in predicted.content] == ["text", "image", "text"]
    assert ast.literal_eval(predicted.content[0].text) == label
    assert np.array_equal(pixels(predicted.content[1]), pixels(model_view))  # PNG: exact
    assert not explained.isError
    assert [item.type for item in explained.content] == ["image", "text", "text", "text"]
    # The heatmap is a JPEG, which Gradio's MCP server decodes and encodes again: close, not equal.
    assert np.abs(pixels(explained.content[0]) - pixels(heatmap)).mean() < 3
    # A gallery (the strip across the stages) reaches an assistant as text: each picture's URL and caption.
    assert [shown["caption"] for shown in ast.literal_eval(explained.content[2].text)] == [
        shown["caption"] for shown in strip]
    assert explained.content[3].text == caption

    # A picture the app cannot read is a tool error carrying the page's message, and the app goes on serving.
    assert refused.isError
    assert refused.content[0].text == "This file is not an image we can read (PNG, JPEG, GIF, WebP, BMP or TIFF)."
