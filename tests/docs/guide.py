"""Reads docs/GUIDE.md into its steps, and fills and checks them.

A step is an HTML comment `<!-- guide: NAME key=value ... -->` followed by a fenced block: ```graphql (then its
variables in a ```json block) or ```sh (a curl command); `<!-- guide: file NAME -->` before a block gives a file
that curl steps upload (`-F 0=@NAME`). Keys:

- `role=ROLE` (or `public`): who runs the step;
- `signs-in=ROLE`: a `login` step signing in as a member of ROLE, whose token the later steps of ROLE use;
- `save=name:path,...`: keep a value of the answer as `<name>` for later steps; a path is dotted keys and list
  indices, and `list[sub.path=value]` picks the first element of a list where `sub.path` is `value`;
- `until=path` or `until=path=value`: repeat the step until the path is truthy, or is that value.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "GUIDE.md"

MARKER = re.compile(r"<!-- guide: (.*?) -->\s*\n```(\w+)\n(.*?)\n```", re.S)
JSON_AFTER = re.compile(r"\s*```json\n(.*?)\n```", re.S)
PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9 ]*)>")
PATH_PART = re.compile(r"([^.\[\]]+)(?:\[([^\]=]+)=([^\]]*)\])?")


@dataclass
class Step:
    name: str
    lang: str  # graphql | sh
    text: str  # the query, or the curl command
    variables: str = "{}"  # the JSON, unfilled
    role: str | None = None  # None: public
    signs_in: str | None = None
    saves: list[tuple[str, str]] = field(default_factory=list)
    until: tuple[str, str | None] | None = None


@dataclass
class Guide:
    steps: list[Step]
    files: dict[str, str]


def read_guide(text: str | None = None) -> Guide:
    text = GUIDE.read_text(encoding="utf-8") if text is None else text
    steps, files = [], {}
    for match in MARKER.finditer(text):
        words, lang, body = match.group(1).split(), match.group(2), match.group(3)
        if words[0] == "file":
            files[words[1]] = body + "\n"
            continue
        attrs = dict(w.split("=", 1) for w in words[1:])
        step = Step(name=words[0], lang=lang, text=body)
        role = attrs.get("role", attrs.get("signs-in"))
        step.role = None if role in (None, "public") else role
        step.signs_in = attrs.get("signs-in")
        if "save" in attrs:
            step.saves = [tuple(item.split(":", 1)) for item in attrs["save"].split(",")]
        if "until" in attrs:
            path, _, value = attrs["until"].partition("=")
            step.until = (path, value or None)
        if lang == "graphql":
            variables = JSON_AFTER.match(text, match.end())
            assert variables, f"step {step.name}: its variables (a ```json block) must follow the query"
            step.variables = variables.group(1)
        else:
            assert lang == "sh" and step.text.startswith("curl "), f"step {step.name}: a graphql or curl block"
        steps.append(step)
    return Guide(steps, files)


def resolve(value: Any, path: str) -> Any:
    """The value at a dotted path (see the module docstring); None where the path leads nowhere."""
    for name, sub_path, wanted in PATH_PART.findall(path):
        if value is None:
            return None
        value = value[int(name)] if isinstance(value, list) else value.get(name)
        if sub_path:
            value = next((item for item in value or [] if str(resolve(item, sub_path)) == wanted), None)
    return value


def fill(value: Any, known: dict[str, Any]) -> Any:
    """Placeholders replaced: a string that is one placeholder becomes the value as it is (a number stays one)."""
    if isinstance(value, dict):
        return {k: fill(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, known) for v in value]
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return known[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(known[m.group(1)]), value)
    return value


def placeholders(step: Step) -> set[str]:
    return set(PLACEHOLDER.findall(step.variables if step.lang == "graphql" else step.text))


@dataclass
class Curl:
    url: str
    headers: dict[str, str]
    form: dict[str, str]  # -F name=value
    uploads: dict[str, str]  # -F name=@file
    output: str | None


def parse_curl(command: str) -> Curl:
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "curl"
    url, headers, form, uploads, output = None, {}, {}, {}, None
    items = iter(args[1:])
    for arg in items:
        if arg == "-H":
            name, _, value = next(items).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-F":
            name, _, value = next(items).partition("=")
            (uploads if value.startswith("@") else form)[name] = value.removeprefix("@")
        elif arg == "-o":
            output = next(items)
        else:
            assert not arg.startswith("-"), f"an option the test does not know: {arg}"
            url = arg
    assert url, command
    return Curl(url, headers, form, uploads, output)


def payload_errors(data: dict | None) -> dict[str, list]:
    """The non-empty `errors` of every mutation payload in an answer's data."""
    return {
        name: value["errors"] for name, value in (data or {}).items() if isinstance(value, dict) and value.get("errors")
    }


def fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)\n```", text, re.S)
