"""The page's endpoints in one table: each one's name, its parameters (its handler's own, `model` among them), whether
it runs a model and so needs a GPU, and for how long at most. The page's events, the ZeroGPU requests and the API's
documentation (docs/api.md, printed by `python -m cifar.page.endpoints`) are all read from it.

An endpoint is a method of a tab (cifar/page/tabs/), marked where it is defined:

    @endpoint(BY_METHOD)                     # runs the model: a GPU for 10 s, or 30 s with Score-CAM
    def explain(self, image, layer=..., model=None): ...

    @endpoint(BY_METHOD, api=False)          # the page's own: not in the API
    def show_explanation(self, image, ...): ...

On a ZeroGPU Space (the Hub's shared GPUs) every request that runs a model goes through one function wrapped by
`spaces.GPU`, so one worker process holds the weights and the explainer's memory of recent heatmaps for every endpoint,
and asks for that endpoint's bound; a request that runs no model (a stored gallery, a refresh with no picture yet, a
missing picture's message) asks for nothing. Anywhere else the handlers are called as they are.
"""

import functools
import inspect
from dataclasses import dataclass
from typing import Callable

import gradio as gr

from cifar.device import on_zero_gpu
from cifar.engine.explainer import COSTLY_METHODS
from cifar.engine.pictures import BadImage, load_image
from cifar.page.parameters import PARAMETERS, described

# The most GPU time one request may hold on a ZeroGPU Space, in seconds. The platform's default is 60; a shorter request
# is admitted sooner, and only if it fits what is left of the visitor's daily quota (2 minutes unauthenticated, 5 for a
# free account). `spaces` scales it by its GPU's duration factor (1.5 on the half RTX Pro 6000 a Space gets by default).
# Basis: BENCHMARKS.md, "ZeroGPU request bounds" (`python -m benchmarks zerogpu`): on this project's 2-core CPU the
# quick requests take under a second in the worker and the costly ones seconds to tens of seconds; a GPU runs the same
# batched passes many times faster, and a fresh worker first starts CUDA and moves the weights onto it. The platform
# ends a request that outlives its bound ("GPU task aborted").
GPU_SECONDS = {"quick": 10, "costly": 30}


@dataclass(frozen=True)
class Gpu:
    """How long a request may hold a GPU: `seconds(tab, arguments)`, None for a request that runs no model; `text`
    says it for the API's documentation."""

    text: str
    seconds: Callable


QUICK = Gpu(f"{GPU_SECONDS['quick']} s", lambda tab, arguments: GPU_SECONDS["quick"])
COSTLY = Gpu(f"{GPU_SECONDS['costly']} s", lambda tab, arguments: GPU_SECONDS["costly"])
# Pictures in bulk: hundreds of pictures' heatmaps and ROAD scores in one request; nothing without files.
BY_FILES = Gpu(f"{GPU_SECONDS['costly']} s",
               lambda tab, arguments: GPU_SECONDS["costly"] if arguments["files"] else None)
BY_METHOD = Gpu(f"{GPU_SECONDS['quick']} s; {GPU_SECONDS['costly']} s for {', '.join(COSTLY_METHODS)}",
                lambda tab, arguments: GPU_SECONDS["costly" if arguments["method"] in COSTLY_METHODS else "quick"])


def endpoint(gpu: Gpu | None, api: bool = True):
    """Marks a tab's method as an endpoint: `gpu`, how long it may hold a GPU (None: it never runs a model); `api`,
    whether it is in the API (named after the method) or only the page's."""
    def mark(method):
        method.endpoint = (gpu, api)
        return method
    return mark


@dataclass(frozen=True)
class Endpoint:
    name: str
    handler: Callable  # the tab's bound method
    gpu: Gpu | None
    api: bool

    @property
    def parameters(self) -> list:
        return list(inspect.signature(self.handler).parameters.values())

    @property
    def description(self) -> str:
        """What it answers (its docstring), then what each parameter means (cifar/page/parameters.py)."""
        return described(inspect.getdoc(self.handler), [p.name for p in self.parameters]) if self.api else \
            inspect.getdoc(self.handler)

    def seconds(self, *args, **kwargs) -> float | None:
        """The GPU time this call may hold; None when it runs no model: never, or not with these arguments (a request
        without a picture, or with one that cannot be read, is answered at once by a message or left as it is)."""
        if self.gpu is None:
            return None
        arguments = inspect.signature(self.handler).bind(*args, **kwargs)
        arguments.apply_defaults()
        if "image" in arguments.arguments and not readable(arguments.arguments["image"]):
            return None
        return self.gpu.seconds(self.handler.__self__, arguments.arguments)


def readable(image) -> bool:
    """Whether an upload is a picture the model can be shown (else the handler's message answers it)."""
    try:
        load_image(image)
    except BadImage:
        return False
    return True


def declared(tab_class) -> list:
    """(name, function, gpu, api) of each endpoint a tab's class declares, in the order of its code."""
    return [(name, method, *method.endpoint) for name, method in vars(tab_class).items() if hasattr(method, "endpoint")]


class Endpoints:
    """The table: every endpoint of the page's tabs, by name; and each one's handler as the page's events call it."""

    def __init__(self, tabs: list):
        self.by_name = {}
        for tab in tabs:
            for name, _, gpu, api in declared(type(tab)):
                if name in self.by_name:
                    raise ValueError(f"two tabs declare the endpoint {name}")
                self.by_name[name] = Endpoint(name, getattr(tab, name), gpu, api)
        self.registered = set()
        self.on_gpu = None
        if on_zero_gpu():
            import spaces  # the platform's own package: imported at start-up, before torch (app.py)

            self.on_gpu = spaces.GPU(self._run, duration=self._seconds)

    def __getitem__(self, name: str) -> Endpoint:
        return self.by_name[name]

    def _run(self, name: str, args: tuple, kwargs: dict):
        """An endpoint's work in the GPU worker, as a stream (one item for an endpoint that is not a generator)."""
        answer = self.by_name[name].handler(*args, **kwargs)
        if inspect.isgenerator(answer):
            yield from answer
        else:
            yield answer

    def _seconds(self, name: str, args: tuple, kwargs: dict) -> float:
        return self.by_name[name].seconds(*args, **kwargs)

    def handler(self, name: str) -> Callable:
        """What the page's event calls: the tab's method, or, on ZeroGPU, the method run in the GPU worker when the
        call runs a model. Its signature is the method's and its docstring the endpoint's description: the API's
        parameters, and what an MCP client reads."""
        found = self.by_name[name]

        def on_gpu(args, kwargs) -> bool:
            return self.on_gpu is not None and found.seconds(*args, **kwargs) is not None

        if inspect.isgeneratorfunction(found.handler):
            @functools.wraps(found.handler)
            def stream(*args, **kwargs):
                yield from (self.on_gpu(name, args, kwargs) if on_gpu(args, kwargs) else found.handler(*args, **kwargs))
            run = stream
        else:
            @functools.wraps(found.handler)
            def call(*args, **kwargs):
                if not on_gpu(args, kwargs):
                    return found.handler(*args, **kwargs)
                *_, answer = self.on_gpu(name, args, kwargs)
                return answer
            run = call
        run.__doc__ = found.description
        return run

    def api(self, name: str, inputs: list, outputs: list) -> None:
        """The named API endpoint /name (inside the page's Blocks): the handler's parameters, one input each, in order.
        Not bound to a control: the page's controls have events of their own, which may do several steps at once."""
        found = self.by_name[name]
        if not found.api or name in self.registered:
            raise ValueError(f"{name} is {'registered already' if found.api else 'not an API endpoint'}")
        if len(inputs) != len(found.parameters):
            raise ValueError(f"/{name} takes {len(found.parameters)} parameters, given {len(inputs)} inputs")
        self.registered.add(name)
        gr.on([], self.handler(name), inputs, outputs, api_name=name)

    def on(self, trigger, name: str, inputs: list, outputs, **options):
        """A control's event (inside the page's Blocks): `trigger` (e.g. button.click) calls the endpoint `name`."""
        return trigger(self.handler(name), inputs, outputs, api_visibility="private", **options)

    def check_complete(self) -> None:
        """Every API endpoint of the table is served: a tab that declares one and forgets it fails at start-up."""
        missing = [name for name, found in self.by_name.items() if found.api and name not in self.registered]
        if missing:
            raise ValueError(f"API endpoints declared but not served: {', '.join(missing)}")


def markdown(tab_classes: list) -> str:
    """The API's reference, from the table: each endpoint, its parameters with their defaults, its GPU bound on ZeroGPU
    and what it answers (its docstring); then what each parameter means (cifar/page/parameters.py)."""
    rows = ["| endpoint | parameters | GPU on ZeroGPU | answers |", "|---|---|---|---|"]
    used = {}
    for tab_class in tab_classes:
        for name, method, gpu, api in declared(tab_class):
            if not api:
                continue
            taken = list(inspect.signature(method).parameters.values())[1:]  # after self
            used.update((p.name, None) for p in taken)
            parameters = ", ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                                   for p in taken)
            answer = " ".join(inspect.getdoc(method).split())
            rows.append(f"| `/{name}` | `{parameters}` | {gpu.text if gpu else 'none'} | {answer} |")
    rows += ["", "| parameter | meaning |", "|---|---|", *(f"| `{name}` | {PARAMETERS[name]} |" for name in used)]
    return "\n".join(rows) + "\n"
