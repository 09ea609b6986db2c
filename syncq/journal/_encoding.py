"""Names for journaled functions, and JSON for their arguments and results."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable


def function_name(fn: Callable[..., Any]) -> str:
    """Return the ``module:qualname`` of `fn`, checking that importing it gives `fn`.

    Raises:
        TypeError: `fn` is a lambda, a nested function, a bound method or any other
            callable that cannot be found again by importing its module.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(
            f"journaled tasks must be importable functions, got {fn!r} "
            "(it has no __module__ or __qualname__)"
        )
    name = f"{module}:{qualname}"
    if "<" in qualname:
        raise TypeError(
            f"journaled tasks must be importable functions, got {name} "
            "(lambdas and nested functions cannot be imported again)"
        )
    try:
        found = resolve_function(name)
    except (ImportError, AttributeError) as exc:
        raise TypeError(f"journaled task {name} cannot be imported: {exc}") from exc
    if found is not fn:
        raise TypeError(
            f"journaled tasks must be importable functions, got {fn!r}: importing "
            f"{name} gives {found!r} instead; bound methods and partials are refused"
        )
    return name


def resolve_function(name: str) -> Callable[..., Any]:
    """Import and return the function that `function_name` described as `name`.

    Raises:
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
    """
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise AttributeError(f"{name} is not callable")
    return target  # type: ignore[no-any-return]


def encode_arguments(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Return `args` and `kwargs` as JSON text.

    Raises:
        TypeError: An argument is not JSON-serializable; the message names it.
    """
    for index, value in enumerate(args):
        _check_json(value, f"argument {index} of {name}")
    for keyword, value in kwargs.items():
        _check_json(value, f"keyword argument {keyword!r} of {name}")
    return json.dumps(list(args), allow_nan=False), json.dumps(
        dict(kwargs), allow_nan=False
    )


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{where} must be JSON-serializable to be journaled, got {value!r}: {exc}"
        ) from exc


def encode_result(result: Any) -> str | None:
    """Return `result` as JSON text, or None if JSON cannot represent it."""
    try:
        return json.dumps(result, allow_nan=False)
    except (TypeError, ValueError):
        return None
