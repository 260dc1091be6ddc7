"""The ``tndiag`` command: render, compile, derive and export ``.tnd`` diagrams; passes; bench;
paper; tune.

Exit status: 0 on success, 1 when the input is wrong or an operation fails (one line
``tndiag: error: ...`` on stderr, no traceback unless ``--debug``), 2 on a usage error.

>>> main(["--version"])
tndiag 0.1.0
0
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from tndiag._version import __version__
from tndiag.errors import DiagramSyntaxError, InvalidArgumentError, TndiagError

__all__ = ["main", "build_parser"]

PROG = "tndiag"


class CommandError(TndiagError):
    """A command could not do its job (missing file, missing feature)."""


# -- reading and transforming ------------------------------------------------------------------
def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise CommandError(f"cannot read {path!r}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {path!r}: not UTF-8 text") from None


def _syntax(name: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module("tndiag.syntax")
        return getattr(module, name)
    except (ImportError, AttributeError):
        raise CommandError(f"the text language is not available (tndiag.syntax.{name} is "
                           "missing in this installation)") from None


def _parse_sets(items: Sequence[str]) -> Dict[str, int]:
    """``["N=8,I1=32", "C=3"]`` -> ``{"N": 8, "I1": 32, "C": 3}``."""
    values: Dict[str, int] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            key, eq, value = part.partition("=")
            if not eq or not key.strip().isidentifier():
                raise InvalidArgumentError(f"--set expects NAME=INT pairs, got {part!r}")
            try:
                values[key.strip()] = int(value)
            except ValueError:
                values[key.strip()] = 0
            if values[key.strip()] < 1:
                raise InvalidArgumentError(
                    f"--set {key.strip()} expects a positive integer, got {value.strip()!r}")
    return values


def _load(args: argparse.Namespace):
    """Parse the file, substitute ``--set`` sizes, run ``--pipeline``; (diagram, result)."""
    text = _read(args.file)
    try:
        diagram = _syntax("parse")(text)
    except DiagramSyntaxError as err:
        raise _located(err, args.file) from None
    sizes = _parse_sets(getattr(args, "set", None) or [])
    if sizes:
        _check_symbols(diagram, sizes, args.file)
        diagram = diagram.substitute(sizes)
    result = None
    if getattr(args, "pipeline", None):
        from tndiag.passes import run_pipeline

        result = run_pipeline(diagram, args.pipeline)
        diagram = result.diagram
    return diagram, result


def _symbols(diagram: Any) -> List[str]:
    terms = getattr(diagram, "terms", (diagram,))
    return sorted({sym.name for term in terms for sym in term.free_symbols()})


def _check_symbols(diagram: Any, sizes: Dict[str, int], path: str) -> None:
    """``--set`` may only name size symbols the diagram has (a typo is not silently ignored)."""
    known = _symbols(diagram)
    unknown = [name for name in sizes if name not in known]
    if unknown:
        has = (f"its symbols are {', '.join(known)}" if known
               else "its sizes are all concrete")
        raise InvalidArgumentError(f"--set {unknown[0]}: {path} has no size symbol "
                                   f"{unknown[0]!r}; {has}")


def _located(err: DiagramSyntaxError, path: str) -> DiagramSyntaxError:
    where = f"{path}:{err.line}:{err.column}: " if err.line is not None else f"{path}: "
    return DiagramSyntaxError(where + err.message, None, None, err.snippet)


# -- commands ----------------------------------------------------------------------------------
_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


def _write(path: str, data: bytes | str) -> None:
    if path == "-":
        sys.stdout.write(data if isinstance(data, str) else data.decode("utf-8"))
        return
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        Path(path).write_bytes(raw)
    except OSError as err:
        raise CommandError(f"cannot write {path!r}: {err.strerror or err}") from None


def _cmd_render(args: argparse.Namespace) -> int:
    from tndiag.render import dot_source, run_dot

    fmt = "svg" if args.output == "-" else _FORMATS.get(Path(args.output).suffix.lower())
    if fmt is None or (args.output == "-" and fmt not in ("svg", "dot")):
        raise InvalidArgumentError(f"cannot tell the format of {args.output!r}; expected a name "
                                   f"ending in one of {sorted(_FORMATS)}")
    diagram, result = _load(args)
    if args.trace and result is None:
        raise InvalidArgumentError("--trace draws what a pipeline did: give --pipeline too")
    source = dot_source(result if args.trace else diagram, sizes=args.sizes)
    _write(args.output, source if fmt == "dot" else run_dot(source, fmt))
    return 0


def _compile_hint(err: TndiagError) -> TndiagError:
    if "symbolic" in str(err):
        return type(err)(f"{err} (on the command line: --set NAME=VALUE,...)")
    return err


def _cmd_compile(args: argparse.Namespace) -> int:
    from tndiag.codegen import compile, plan

    diagram, _ = _load(args)
    lowerings = () if args.lowering == "dense" else None
    if not diagram.is_concrete():
        print("# symbolic sizes: costs are formulas; give values with --set NAME=VALUE,...")
        print(plan(diagram, lowerings=lowerings))
        return 0
    try:
        program = compile(diagram, lowerings=lowerings)
    except TndiagError as err:
        raise _compile_hint(err) from None
    print(program)
    return 0


def _cmd_derive(args: argparse.Namespace) -> int:
    diagram, result = _load(args)
    if args.trace and result is not None:
        for trace in result.traces:
            print(trace, file=sys.stderr)
    print(_syntax("to_text")(diagram).rstrip("\n"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tndiag import export

    diagram, _ = _load(args)
    try:
        source = export(diagram, name=args.name, lowering=args.lowering)
    except TndiagError as err:
        raise _compile_hint(err) from None
    _write(args.output, source)
    return 0


def _cmd_passes(args: argparse.Namespace) -> int:
    from tndiag.passes import PASSES

    rows = [(name + _option_signature(p.options), _summary(p.doc))
            for name, p in sorted(PASSES.items())]
    width = max(len(head) for head, _ in rows)
    for head, doc in rows:
        print(f"{head:<{width}}  {doc}".rstrip())
    return 0


def _summary(doc: str) -> str:
    """A docstring's first paragraph, on one line."""
    return " ".join(doc.split("\n\n")[0].split())


def _option_signature(options: Sequence[Any]) -> str:
    from tndiag.passes.base import SIZE

    kinds = {str: "NAME", tuple: "A|B", int: "INT", float: "NUMBER", bool: "true|false",
             SIZE: "SIZE"}
    parts = [f"{key}={kinds.get(kind, kind.__name__.upper())}" for key, kind in options]
    return "{" + ",".join(parts) + "}" if parts else ""


def _cmd_bench(args: argparse.Namespace) -> int:
    module = {"paper": "tndiag.bench.paper", "tune": "tndiag.bench.tune"}.get(args.command,
                                                                             "tndiag.bench")
    try:
        bench = importlib.import_module(module)
        entry = bench.main
    except (ImportError, AttributeError) as err:
        raise CommandError(f"benchmarks are not available in this installation ({err})") from None
    try:
        code = entry(list(args.bench_args))
    except SystemExit as done:  # the runner's own argparse (--help, usage errors)
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    return int(code or 0)


def _cmd_demo(args: argparse.Namespace) -> int:
    path = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    if not path.is_file():
        raise CommandError(f"the demo needs a source checkout: {path} does not exist")
    spec = importlib.util.spec_from_file_location("tndiag_quickstart", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    if not hasattr(module, "main"):
        raise CommandError(f"{path} has no main() function")
    return int(module.main() or 0)


# -- parser ------------------------------------------------------------------------------------
def _common(debug_default: Any) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=debug_default,
                        help="show the full traceback when something fails")
    return parent


def _add_input(p: argparse.ArgumentParser, pipeline_required: bool = False) -> None:
    p.add_argument("file", metavar="FILE.tnd", help="diagram in the text language ('-': stdin)")
    p.add_argument("--pipeline", "-p", metavar="P", required=pipeline_required,
                   help='passes to run first, e.g. "differentiate{wrt=W},simplify"')
    p.add_argument("--set", action="append", metavar="NAME=INT[,...]",
                   help="give symbolic sizes values, e.g. --set N=8,I1=32 (repeatable)")


def _add_render(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("render", parents=[common], help="draw a diagram (SVG, PNG, PDF, DOT)",
                       description="Draw a diagram; the format follows the output's extension.")
    _add_input(p)
    p.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="out.svg / .png / .pdf / .dot ('-' or none: SVG on stdout)")
    p.add_argument("--sizes", action="store_true", help="label legs with their sizes too")
    p.add_argument("--trace", action="store_true",
                   help="draw each pass of --pipeline as a before/after pair")
    p.set_defaults(run=_cmd_render)


def _add_compile_derive_export(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("compile", parents=[common], help="print equation, path and cost",
                       description="Compile a diagram and print its einsum program (with "
                       "cost formulas when sizes are symbolic).")
    _add_input(p)
    _add_lowering(p)
    p.set_defaults(run=_cmd_compile)

    p = sub.add_parser("derive", parents=[common], help="run passes, print the text form",
                       description="Run a pipeline of passes and print the resulting diagram.")
    _add_input(p, pipeline_required=True)
    p.add_argument("--trace", action="store_true", help="print what each pass did to stderr")
    p.set_defaults(run=_cmd_derive)

    p = sub.add_parser("export", parents=[common], help="write a standalone torch module",
                       description="Write a Python module that needs only torch.")
    _add_input(p)
    p.add_argument("-o", "--output", default="-", metavar="OUT.py",
                   help="where to write the module ('-' or none: stdout)")
    p.add_argument("--name", default="forward", help="name of the exported function")
    _add_lowering(p)
    p.set_defaults(run=_cmd_export)


def _add_lowering(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lowering", choices=("window", "dense"), default="window",
                   help="index patterns as strided windows or native kernels where possible "
                   "(default), or all dense 0/1 tensors contracted by einsum")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tndiag`` command (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[_common(False)],
        description="Tensor-network diagrams for convolutions: draw, compile, derive, export.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common(argparse.SUPPRESS)
    _add_render(sub, common)
    _add_compile_derive_export(sub, common)
    p = sub.add_parser("bench", parents=[common], help="run the benchmarks (tndiag.bench)",
                       description="Run the benchmarks; every argument after 'bench' goes "
                       "to tndiag.bench (try: tndiag bench --help).", add_help=False)
    p.set_defaults(run=_cmd_bench, bench_args=[])
    p = sub.add_parser("paper", parents=[common], help="the paper's experiments "
                       "(tndiag.bench.paper)", add_help=False,
                       description="Run the paper's experiments; every argument after 'paper' "
                       "goes to tndiag.bench.paper (try: tndiag paper --help).")
    p.set_defaults(run=_cmd_bench, bench_args=[])
    p = sub.add_parser("tune", parents=[common], add_help=False, help="fill the tuning cache "
                       "ahead of time (tndiag.bench.tune; try: tndiag tune --help)")
    p.set_defaults(run=_cmd_bench, bench_args=[])
    p = sub.add_parser("passes", parents=[common], help="list every pass and its options",
                       description="List the passes a --pipeline can name, with options.")
    p.set_defaults(run=_cmd_passes)
    p = sub.add_parser("demo", parents=[common], help="run examples/quickstart.py",
                       description="Run the quick-start example.")
    p.set_defaults(run=_cmd_demo)
    return parser


def _report(err: BaseException) -> None:
    lines = str(err).splitlines() or [type(err).__name__]
    print(f"{PROG}: error: {lines[0]}", file=sys.stderr)
    if isinstance(err, DiagramSyntaxError) and err.snippet:
        print(err.snippet, file=sys.stderr)


def _split_bench(argv: List[str]):
    """``bench`` (``paper``, ``tune``) passes everything after it to its runner untouched."""
    for k, word in enumerate(argv):
        if word in ("bench", "paper", "tune"):
            return argv[:k + 1], argv[k + 1:]
        if not word.startswith("-"):
            break
    return argv, []


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output)
        pass


def main(argv: List[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    head, rest = _split_bench(argv)
    try:
        args = build_parser().parse_args(head)
    except SystemExit as done:
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    if args.command in ("bench", "paper", "tune"):
        args.bench_args = rest
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here rather than at exit
        return code
    except BrokenPipeError:  # `tndiag ... | head`: the reader has seen enough
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except (TndiagError, OSError) as err:
        if args.debug:
            raise
        _report(err)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug: say so in one line
        if args.debug:
            raise
        print(f"{PROG}: error: internal error ({type(err).__name__}: {err}); rerun with --debug "
              "for the traceback", file=sys.stderr)
        return 1
