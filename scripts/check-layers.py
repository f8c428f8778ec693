#!/usr/bin/env python3
"""Checks that every module of src/ imports only from lower layers.

The layers are listed once, lowest first, in ARCHITECTURE-layers.txt at
the repository root (one line per layer, the top-level modules of src/ on
it separated by spaces; `#` starts a comment). A module may use modules of
lower layers and its own submodules; using a module of its own layer or a
higher one is an error, as is a top-level module the file does not list.
References are `crate::name` paths outside comments and test modules.
Prints each violation as `src/file.rs:line: a -> b (layer i -> j)`, then
`N passed, M failed`; exits 1 on any violation.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
layers_file = ROOT / "ARCHITECTURE-layers.txt"
rank = {}
for number, line in enumerate(layers_file.read_text().splitlines()):
    line = line.split("#", 1)[0].strip()
    for name in line.split():
        rank[name] = number

failures = []
checked = 0
sources = sorted((ROOT / "src").rglob("*.rs"))
for path in sources:
    relative = path.relative_to(ROOT / "src")
    top = relative.parts[0].removesuffix(".rs")
    if top in ("main", "lib"):
        continue
    if top not in rank:
        failures.append(f"src/{relative}: module {top} is on no layer of {layers_file.name}")
        continue
    text = path.read_text()
    in_tests = False
    for line_number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#[cfg(test)]"):
            in_tests = True  # the rest of the file is tests (by convention here)
        if in_tests:
            break
        code = line.split("//", 1)[0]
        for used in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code):
            checked += 1
            if used == top:
                continue
            if used not in rank:
                failures.append(f"src/{relative}:{line_number}: {top} -> {used} (not on any layer)")
            elif rank[used] >= rank[top]:
                failures.append(
                    f"src/{relative}:{line_number}: {top} -> {used} (layer {rank[top]} -> {rank[used]}: not below)"
                )

for failure in failures:
    print(failure)
print(f"{checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
