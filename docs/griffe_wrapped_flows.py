"""Griffe extension: keep a function documented when it is rewrapped under its own name.

`name = SomeFlow(name, ...)` (how the bulk flow gets its own `Flow` subclass) replaces the
decorated-looking function with a plain attribute in static analysis, which would drop its
signature and docstring from the API reference. Where an attribute's value is a call whose
first argument is the function of the same name just defined, the function stays.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


class WrappedFlows(griffe.Extension):
    """Put back `f` where the module says `f = Wrapper(f, ...)`."""

    def __init__(self) -> None:
        self._functions: dict[str, griffe.Function] = {}
        self._wrapped: list[str] = []

    def on_function_instance(self, *, func: griffe.Function, **_: Any) -> None:
        self._functions[func.path] = func

    def on_attribute_instance(self, *, node: ast.AST | griffe.ObjectNode,
                              attr: griffe.Attribute, **_: Any) -> None:
        value = getattr(node, "value", None)
        if (isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.Name)
                and value.args[0].id == attr.name and attr.path in self._functions):
            self._wrapped.append(attr.path)

    def on_module_members(self, *, mod: griffe.Module, **_: Any) -> None:
        for path in [p for p in self._wrapped if p.rpartition(".")[0] == mod.path]:
            func = self._functions[path]
            func.labels.add("flow")
            if func.docstring is not None:  # griffe handed it to the attribute
                func.docstring.parent = func
            mod.set_member(func.name, func)
