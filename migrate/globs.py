"""Path globs of file steps (``include`` / ``exclude``), matched against paths relative
to the source root."""

from __future__ import annotations

import re
from collections.abc import Iterable


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob matched against the whole relative path.

    ``*`` and ``?`` stay inside one path segment, ``[...]`` is a character class, ``**``
    matches any number of segments (``**/x`` also matches a top-level ``x``; ``d/**``
    matches everything below ``d``). A pattern is anchored at the source root:
    ``*.log`` matches ``a.log`` but not ``logs/a.log`` (use ``**/*.log``).
    """
    i, n, out = 0, len(pattern), []
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < n and pattern[i] == "/":
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            start = i + 1
            if pattern[start : start + 1] == "!":
                start += 1
            if pattern[start : start + 1] == "]":  # a ']' first in a class is literal
                start += 1
            j = pattern.find("]", start)
            if j < 0:  # no closing bracket: a literal '[' (as fnmatch does)
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                elif body.startswith("^"):
                    body = "\\" + body
                out.append("[" + body + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class PathFilter:
    """``include`` minus ``exclude``: a path is selected when some include glob matches it
    and no exclude glob matches it or one of its folders (``exclude = [".snapshot"]``
    leaves out everything below a top-level ``.snapshot``; ``"**/.snapshot"`` below any)."""

    def __init__(self, include: Iterable[str], exclude: Iterable[str]) -> None:
        self._inc = [glob_regex(g) for g in include]
        self._exc = [glob_regex(g.rstrip("/") or g) for g in exclude]

    def __call__(self, path: str) -> bool:
        if not any(r.match(path) for r in self._inc):
            return False
        candidates = [path]
        while "/" in candidates[-1]:
            candidates.append(candidates[-1].rsplit("/", 1)[0])
        return not any(r.match(p) for r in self._exc for p in candidates)
