"""A griffe extension for the API reference: Sphinx/numpydoc roles in docstrings
(``:func:`load```, ``:class:`~devpersist.PrecisionLossError```...) become mkdocstrings
cross-references to the public name, or inline code when the target is not public, so
no role is printed literally.

Loaded by mkdocs.yml (``extensions: [docs_ext/griffe_roles.py]``); docstrings stay in
numpydoc style for ``help()``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import devpersist

_ROLE = re.compile(r":(?:func|class|data|meth|attr|mod|exc|obj):`(~?)([^`]+)`")
_PUBLIC = frozenset(devpersist.__all__) - {"__version__"}
#: Public modules documented on their own.
_MODULES = ("devpersist.mlflow",)


def _target(name: str) -> str | None:
    if name.startswith(_MODULES):
        return name
    short = name.rpartition(".")[2]
    public_name = name in (short, f"devpersist.{short}") or name.startswith("devpersist._")
    if short in _PUBLIC and public_name:
        return f"devpersist.{short}"
    return None


def replace_roles(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        tilde, name = match.groups()
        shown = name.rpartition(".")[2] if tilde else name
        shown = shown.removeprefix("devpersist.") if not tilde else shown
        target = _target(name)
        return f"[`{shown}`][{target}]" if target else f"`{shown}`"

    return _ROLE.sub(one, text)


class RolesToReferences(griffe.Extension):
    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = replace_roles(obj.docstring.value)
