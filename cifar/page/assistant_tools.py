"""The page's API endpoints as tools for AI assistants: Gradio's Model Context Protocol server (`python app.py --mcp`,
on by default on a Space), Streamable HTTP at /gradio_api/mcp/. Each API endpoint is one tool named after it; its
description and its parameters' are the endpoint's (cifar/page/parameters.py), their types and allowed values the page
controls' (a dropdown's choices become an enum). Pictures go in as http(s) or data: URLs and come back as the
protocol's image content; an unreadable picture is a tool error carrying the page's message.

Why on by default on a Space: every tool is an endpoint the Space already serves to anyone through its API
(gradio_client), through the same queue, upload limit and, on ZeroGPU, the caller's own GPU quota; the tools add no
action and no data that the page does not already give. Locally it is off unless asked (`--mcp`), like every other
way of reaching the app from outside the browser (`--share`).
"""

import gradio.mcp
from anyio.to_thread import run_sync

# Where an MCP client connects, on the app's own address.
MCP_PATH = "gradio_api/mcp/"


async def _every_output(server, job) -> list:
    """One item per output of the endpoint (the heatmap as an image, the caption as text), as Gradio 6.31 already
    answers a client that asks for progress. Without a progress token it wraps a multi-output endpoint's answer (a
    tuple) as one item, and the assistant would get the tuple's text with the images as server paths."""
    answer = await run_sync(job.result)
    return list(answer) if isinstance(answer, tuple) else [answer]


def serve_every_output() -> None:
    """Before launch(mcp_server=True): every tool answers output by output (tests/test_mcp.py fails if a Gradio
    upgrade changes what this replaces)."""
    gradio.mcp.GradioMCPServer._execute_tool_without_progress = _every_output
