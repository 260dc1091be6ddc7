"""Kernel modules as exported text: what :func:`tndiag.export` writes of the torch kernels.

A kernel module (:mod:`tndiag.backends.kernels`, the route kernels of
:mod:`tndiag.backends.routes`, :mod:`tndiag.backends.torch_gather`) is read from its source
(its AST): it may import the modules of :data:`ALLOWED_IMPORTS` (repeated in the exported
module), names of another kernel module of ``tndiag.backends`` (whose text comes first), and
any tndiag name it uses in annotations only (postponed by ``from __future__ import
annotations``); anything else is a :class:`~tndiag.errors.CompileError`. Several modules
share the exported module's namespace, so two defining one name are refused too.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, FrozenSet, List, Tuple

from tndiag.errors import CompileError

__all__ = ["ALLOWED_IMPORTS", "KernelText", "kernel_text", "module_source", "modules_text"]


#: Standard-library and torch modules a kernel module may import (the exported module
#: repeats these imports).
ALLOWED_IMPORTS = frozenset({"__future__", "torch", "torch.nn.functional", "typing",
                             "functools", "itertools", "math"})


@dataclass(frozen=True)
class KernelText:
    """A kernel module as exported text: ``imports`` (statements of allowed modules),
    ``needs`` (kernel modules whose names it uses, exported first), the top-level ``names``
    it defines and its ``text`` (without docstring, imports and ``__all__``)."""

    module: str
    imports: Tuple[str, ...]
    needs: Tuple[str, ...]
    names: FrozenSet[str]
    text: str


def _annotation_nodes(tree: ast.AST) -> set:
    """ids of every node inside an annotation (never evaluated under postponed annotations)."""
    roots: List[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            roots += [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg,
                                             a.kwarg) if x is not None and x.annotation]
            roots += [node.returns] if node.returns is not None else []
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for r in roots for n in ast.walk(r)}


def _defined(node: ast.stmt) -> List[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, ast.AnnAssign) else [])
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _tndiag_import(module: str, node: ast.ImportFrom, runtime: set) -> str:
    """The kernel module an import of tndiag names needs ("" when used in annotations only)."""
    used = [a.asname or a.name for a in node.names if (a.asname or a.name) in runtime]
    if not used:
        return ""
    source = node.module or ""
    if source.startswith("tndiag.backends.") and source != module:
        found = kernel_text(source)
        missing = [a.name for a in node.names if a.name not in found.names or a.asname]
        if not missing:
            return source
    raise CompileError(f"kernel module {module} uses {used} from {source} at run time; the "
                       "exported code may import only torch and other kernel modules")


@functools.lru_cache(maxsize=None)
def kernel_text(name: str) -> KernelText:
    """The exported form of the kernel module ``name`` (see :class:`KernelText`).

    Raises:
        CompileError: when the module imports anything the exported code cannot have.

    >>> found = kernel_text("tndiag.backends.routes.conv")
    >>> found.needs, "run_routed" in found.names
    (('tndiag.backends.kernels', 'tndiag.backends.routes.fold'), True)
    """
    text = inspect.getsource(importlib.import_module(name))
    tree = ast.parse(text)
    lines = text.splitlines()
    annotations = _annotation_nodes(tree)
    runtime = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
               and id(n) not in annotations}
    imports: List[str] = []
    needs: List[str] = []
    names: List[str] = []
    keep = []
    for n, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tndiag"):
            needs += [m for m in [_tndiag_import(name, node, runtime)] if m]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            if any(m not in ALLOWED_IMPORTS for m in modules):
                raise CompileError(f"kernel module {name} imports {modules}; the exported "
                                   "code may import only torch")
            imports.append(ast.unparse(node))
        elif not (n == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  or "__all__" in _defined(node)):
            names += _defined(node)
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            keep.append("\n".join(lines[start - 1:node.end_lineno]))
    if "from __future__ import annotations" not in imports and len(needs) < sum(
            isinstance(x, ast.ImportFrom) and (x.module or "").startswith("tndiag")
            for x in tree.body):
        raise CompileError(f"kernel module {name} imports tndiag names for annotations "
                           "without `from __future__ import annotations`")
    return KernelText(name, tuple(imports), tuple(dict.fromkeys(needs)), frozenset(names),
                      "\n\n\n".join(keep))


def module_source(module: ModuleType) -> str:
    """A kernel module's text without its docstring, imports and ``__all__``.

    Raises:
        CompileError: when the module imports anything the exported code cannot have.

    >>> from tndiag.backends import kernels
    >>> "def run_native(" in module_source(kernels)
    True
    """
    return kernel_text(module.__name__).text


def _ordered(names: List[str]) -> List[KernelText]:
    """The kernel modules ``names`` and those they need, each after what it needs."""
    done: Dict[str, KernelText] = {}

    def visit(name: str) -> None:
        if name not in done:
            found = kernel_text(name)
            for need in found.needs:
                visit(need)
            done[name] = found
    for name in names:
        visit(name)
    return list(done.values())


def modules_text(names: List[str]) -> str:
    """The imports and text of the kernel modules ``names`` and of those they need, each
    once, after what it needs, in one namespace (for a module that starts with ``from
    __future__ import annotations``, as the exported one does).

    Raises:
        CompileError: when a module cannot be exported, or two define the same name.

    >>> modules_text(["tndiag.backends.routes.fold"]).startswith("from typing import")
    True
    """
    texts = _ordered(names)
    owner: Dict[str, str] = {}
    for t in texts:
        for defined in t.names:
            if owner.setdefault(defined, t.module) != t.module:
                raise CompileError(f"kernel modules {owner[defined]} and {t.module} both "
                                   f"define {defined!r}; exported code shares one namespace")
    imports = dict.fromkeys(i for t in texts for i in t.imports if "__future__" not in i)
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(t.text for t in texts)
