"""The text language of diagrams (``.tnd``): ``parse(text)`` and its inverse ``to_text``.

``to_text`` needs only the IR; ``parse`` imports lark on first use.

>>> from tndiag import ops
>>> g = ops.conv((2, 3, 8), (4, 3, 3), stride=2)
>>> parse(to_text(g)) == g
True
"""

from tndiag.syntax.parser import GRAMMAR_PATH, parse
from tndiag.syntax.printer import to_text

__all__ = ["parse", "to_text", "GRAMMAR_PATH"]
