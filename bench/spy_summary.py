"""Where a process's CPU time went, from a py-spy raw profile: the share of samples per layer of the stack
(graphql-core, Strawberry, the ORM, the driver, the event loop, the web server, this project's code) and the
functions with the most samples of their own.

    .venv/bin/py-spy record --pid <API process> --duration 20 --rate 200 --format raw --output profile.txt
    .venv/bin/python bench/spy_summary.py profile.txt

A sample is counted in the layer of the innermost frame that belongs to one of the layers below (so time in a
library called from our resolver counts for the library); `--top N` sets how many functions are listed."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

# (layer, what a frame's file path contains); the first match wins, innermost frame first.
LAYERS = [
    ("JSON (json module)", "json/"),
    ("asyncpg (driver)", "asyncpg/"),
    ("pypika (ORM's SQL builder)", "pypika"),
    ("Tortoise ORM", "tortoise/"),
    ("Strawberry (resolver wrappers, extensions, DataLoader)", "strawberry/"),
    ("graphql-core (executor, validation)", "graphql/"),
    ("uvicorn, httptools", "uvicorn/"),
    ("Starlette", "starlette/"),
    ("this project: schema/", "schema/"),
    ("this project: resolvers/", "resolvers/"),
    ("this project: services/", "services/"),
    ("this project: core/ and app", "core/"),
    ("asyncio event loop", "asyncio/"),
]


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, marker in LAYERS:
            if marker in frame:
                return layer
    return "other"


def summarise(lines: list[str], top: int) -> str:
    layers: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples, frames = int(count), stack.split(";")
        total += samples
        layers[layer_of(frames)] += samples
        own[frames[-1]] += samples
    if not total:
        return "no samples"
    out = [f"{total} samples", "", "| layer | share of CPU samples |", "|---|---|"]
    out += [f"| {layer} | {n * 100 / total:.1f} % |" for layer, n in layers.most_common()]
    out += ["", f"the {top} functions with the most samples of their own:"]
    out += [f"  {n * 100 / total:5.1f} %  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("profile", type=Path, help="py-spy record --format raw output")
    options.add_argument("--top", type=int, default=20)
    args = options.parse_args(argv)
    print(summarise(args.profile.read_text().splitlines(), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
