"""The models one page serves (python app.py --model A B): their names, and the request's choice among them.

Every handler that runs a model takes the model's name as its last argument, `model`, the first model by default: the
page sends its model chooser, an API caller may leave it out. Everything else on the page (curves, tables, model
card) is drawn once per model, and the chooser shows the chosen one's.
"""

import inspect

import gradio as gr


class Served:
    """One object per model (its handlers), by name; `route` makes a request reach the one it names."""

    def __init__(self, by_name: dict):
        self.by_name = by_name
        self.names = list(by_name)
        self.default = self.names[0]

    @property
    def first(self):
        """The default model's object."""
        return self.by_name[self.default]

    def __getitem__(self, name: str):
        if name not in self.by_name:
            raise gr.Error(f"Unknown model {name!r}: this page serves {', '.join(self.names)}.")
        return self.by_name[name]

    def route(self, method: str):
        """The handlers' `method` with a last parameter, `model` (default: the first model), that picks whose. The
        signature is the handler's own plus that one, so the API names and defaults every parameter as before."""
        own = inspect.signature(getattr(self.by_name[self.default], method))
        signature = own.replace(parameters=[*own.parameters.values(), inspect.Parameter(
            "model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=self.default, annotation=str)])

        def routed(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            name = arguments.arguments.pop("model")
            return getattr(self[name], method)(**arguments.arguments)

        routed.__signature__, routed.__name__ = signature, method
        routed.__doc__ = getattr(self.by_name[self.default], method).__doc__
        return routed


class OnePerModel:
    """Parts of the page drawn once per model (inside the page's Blocks), in columns of which only the chosen model's
    is visible: `for name in shown.each(): ...draw name's...`, then `shown.follow(chooser)` once."""

    def __init__(self, names: list):
        self.names, self.columns = names, []

    def each(self):
        for name in self.names:
            with gr.Column(visible=name == self.names[0]) as column:
                self.columns.append((name, column))
                yield name

    def id(self, element: str, name: str) -> str:
        """An element's id: the default model's has the plain one (a page has each id once)."""
        return element if name == self.names[0] else f"{element}-{self.names.index(name)}"

    def follow(self, chooser: gr.Dropdown) -> None:
        if len(self.names) > 1:
            chooser.change(lambda chosen: [gr.Column(visible=name == chosen) for name, _ in self.columns], chooser,
                           [column for _, column in self.columns], api_visibility="private", queue=False)
