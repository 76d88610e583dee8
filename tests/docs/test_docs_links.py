"""README.md and docs/*.md cite only what the repository holds, and docs/DOMAIN.md says what the code does.

- Every repository path they cite exists: backticked paths (`services/complaints.py`, `docs/SECURITY.md`,
  `tests/security/`, a module and its attribute `core/http.BodyLimit`, a bare `test_tokens.py` somewhere in
  the tree), markdown links (`[roles](SECURITY.md#roles)`, anchor included) and named sections
  (`docs/SECURITY.md`, "Erasure").
- No design material from outside the repository: "DOMAIN.md" only as docs/DOMAIN.md, no "Issue 3", no
  "the campaigns issue".
- docs/DOMAIN.md's complaint diagram is the transition table of services/complaint_rules.py, its slaState table
  the values the API answers, and its "who may do what" table the role sets of services/access.py.
"""

from __future__ import annotations

import functools
import re
import typing
from pathlib import Path

import pytest

from models.complaints import ComplaintStatus
from models.staff import Role
from services import access, complaint_rules

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SKIPPED_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", ".hypothesis", ".ruff_cache"}
# Made by `make run` / `make install`, not kept in the repository: cited as places, not as files.
RUNTIME_DIRS = {".venv", "var"}
FILE_SUFFIXES = (".py", ".md", ".mjs", ".js", ".json", ".toml", ".yml", ".yaml", ".sh", ".graphql", ".html")
NOT_A_PATH = re.compile(r"[\s<>{}*…\[\]=@:?$'\"|,;]")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SECTION = re.compile(r"`?((?:docs/)?[A-Z][A-Z_]*\.md)`?,?\s+\(?\"([^\"]+)\"")
ISSUE = re.compile(r"\b[Ii]ssues?\s+#?\d+|\bthe [a-z-]+ issue\b")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The text without its fenced code blocks (commands and examples, not citations)."""
    return FENCE.sub("", text)


@functools.cache
def _repository_files() -> frozenset[str]:
    """The names of the repository's files, wherever they are (a bare `test_tokens.py` is cited by name)."""
    names = set()
    for path in ROOT.rglob("*"):
        if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
            names.add(path.name)
    return frozenset(names)


def _headings(path: Path) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", _prose(path.read_text()), re.M)]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _path_exists(span: str) -> bool:
    """Whether a backticked repository path exists: a file or folder, or a module and one of its names
    (`core/http.BodyLimit`, `services/customers.matching()`)."""
    path = re.sub(r"(::.*|\(.*\))$", "", span).rstrip("/")
    if (ROOT / path).exists():
        return True
    folder, _, last = path.rpartition("/")
    module = last.split(".", 1)[0]
    return "." in last and (ROOT / folder / f"{module}.py").is_file()


def _cited_paths(text: str) -> list[str]:
    """The backticked spans of the prose that name a repository path."""
    top_level = {p.name for p in ROOT.iterdir()} - RUNTIME_DIRS
    cited = []
    for span in SPAN.findall(_prose(text)):
        candidate = re.sub(r"(::.*|\(\))$", "", span)
        if NOT_A_PATH.search(candidate) or candidate.startswith("/"):
            continue
        first = candidate.split("/", 1)[0]
        if first in RUNTIME_DIRS:
            continue
        if ("/" in candidate and (first in top_level or candidate.endswith(FILE_SUFFIXES))) or (
            "/" not in candidate and candidate.endswith((".py", ".md"))
        ):
            cited.append(span)
    return cited


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_backticked_paths_exist(doc: Path):
    files = _repository_files()
    missing = [
        span
        for span in _cited_paths(doc.read_text())
        if not (_path_exists(span) if "/" in span else re.sub(r"::.*$", "", span) in files)
    ]
    assert not missing, f"{_relative(doc)} cites paths the repository does not hold: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_markdown_links_resolve(doc: Path):
    broken = []
    for target in LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in {_slug(h) for h in _headings(linked)}
        ):
            broken.append(target)
    assert not broken, f"{_relative(doc)} links to what does not exist: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_named_sections_exist(doc: Path):
    text = " ".join(_prose(doc.read_text()).split())
    missing = []
    for name, section in SECTION.findall(text):
        target = ROOT / name if "/" in name or name == "README.md" else doc.parent / name
        if not target.is_file() or section not in _headings(target):
            missing.append(f'{name}, "{section}"')
    assert not missing, f"{_relative(doc)} names sections that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_no_design_material_from_outside_the_repository(doc: Path):
    text = doc.read_text()
    outside = [
        text[max(0, m.start() - 30) : m.end() + 10].replace("\n", " ")
        for m in re.finditer(r"DOMAIN\.md", text)
        # docs/DOMAIN.md, or a link to it from a page beside it: [rules](docs/DOMAIN.md)
        if not (text[: m.start()].endswith("docs/") or (doc.parent.name == "docs" and text[: m.start()].endswith("](")))
    ]
    assert not outside, f"{_relative(doc)} cites a DOMAIN.md that is not docs/DOMAIN.md: {outside}"
    issues = [m.group() for m in ISSUE.finditer(text)]
    assert not issues, f"{_relative(doc)} cites issues instead of the repository's docs: {issues}"


def test_the_checks_catch_what_they_are_for():
    text = "See `services/nothing_here.py`, `docs/NOPE.md`, `core/http.NoSuchName` and `tests/core/test_roles.py`."
    cited = _cited_paths(text)
    assert cited == ["services/nothing_here.py", "docs/NOPE.md", "core/http.NoSuchName", "tests/core/test_roles.py"]
    assert [_path_exists(c) for c in cited] == [False, False, True, True]  # core/http.py exists: a module's name
    assert not _cited_paths("`GET /jobs/{id}/download`, `http://127.0.0.1:8000/s/`, `var/outbox`, `a b/c.py`")
    assert ISSUE.search("Issue 3 sets the targets") and ISSUE.search("the campaigns issue")
    assert not ISSUE.search("data issues, the issue of masking")
    assert _slug("Authentication and lockout") == "authentication-and-lockout"


# ---------------------------------------------------------------- docs/DOMAIN.md against the code

DOMAIN = ROOT / "docs" / "DOMAIN.md"


def _domain() -> str:
    return DOMAIN.read_text()


def test_the_complaint_diagram_is_the_transition_table():
    block = re.search(r"```mermaid\n(.*?)```", _domain(), re.S)
    assert block and "stateDiagram-v2" in block.group(1), "docs/DOMAIN.md has no Mermaid stateDiagram-v2"
    drawn = set()
    for line in block.group(1).splitlines():
        arrow = re.match(r"\s*(\S+)\s*-->\s*(\S+?)(?::\s*(\w+).*)?$", line)
        if arrow:
            source, target, mutation = arrow.groups()
            drawn.add((source, target, mutation))
    expected = {("[*]", "RECEIVED", "fileComplaint"), ("WITHDRAWN", "[*]", None)}
    mutations = {"extend": "extendComplaintDeadline"}
    for move, rule in complaint_rules.MOVES.items():
        if rule.to is None:
            continue
        mutation = mutations.get(move, f"{move}Complaint")
        expected |= {(source.value, rule.to.value, mutation) for source in rule.allowed_from}
    assert drawn == expected, (
        f"drawn but not allowed: {sorted(drawn - expected, key=str)}; allowed but not drawn: "
        f"{sorted(expected - drawn, key=str)}"
    )
    # The moves that keep the status are named, with the states they are allowed in.
    for move, rule in complaint_rules.MOVES.items():
        if rule.to is None:
            assert rule.allowed_from == complaint_rules.OPEN, move
            assert f"`{mutations.get(move, f'{move}Complaint')}`" in _domain(), move
    named_open = re.search(r"The open states are ([A-Z_, ]+?) and ([A-Z_]+);", " ".join(_domain().split()))
    assert named_open, "docs/DOMAIN.md names the open states"
    states = {s.strip() for s in named_open.group(1).split(",")} | {named_open.group(2)}
    assert states == {s.value for s in complaint_rules.OPEN}
    assert set(ComplaintStatus) == complaint_rules.OPEN | complaint_rules.ENDED


def test_the_sla_states_are_the_ones_the_api_answers():
    table = re.search(r"\| slaState \| when \|\n\|[-| ]+\|\n((?:\|.*\|\n)+)", _domain())
    assert table, "docs/DOMAIN.md has the slaState table"
    rows = {line.split("|")[1].strip().strip("`") for line in table.group(1).splitlines()}
    complaint_type = re.search(
        r"^type Complaint implements Node \{(.*?)^\}", (ROOT / "schema.graphql").read_text(), re.M | re.S
    )
    nullable = re.search(r"^\s*slaState: SlaState$", complaint_type.group(1), re.M) is not None
    answered = {*typing.get_args(complaint_rules.SlaStateName), *(["null"] if nullable else [])}
    assert rows == answered, f"docs/DOMAIN.md's slaState table has {sorted(rows)}, the API answers {sorted(answered)}"
    for days in (complaint_rules.BASE_DAYS, complaint_rules.EXTENDED_DAYS, complaint_rules.MAX_DAYS):
        assert f"**{days} days**" in _domain()


def _roles_in_words(words: str) -> frozenset[Role]:
    words = words.strip()
    if words == "every role":
        return frozenset(Role)
    if words.startswith("every role but "):
        return frozenset(Role) - {Role(w.strip()) for w in words.removeprefix("every role but ").split(",")}
    return frozenset(Role(w.strip()) for w in words.split(","))


def test_who_may_do_what_is_the_role_table():
    table = re.search(r"\| to do this \| you need one of \| set \|\n\|[-| ]+\|\n((?:\|.*\|\n)+)", _domain())
    assert table, "docs/DOMAIN.md has the 'who may do what' table"
    named = set()
    for line in table.group(1).splitlines():
        _task, roles, name = (cell.strip() for cell in line.strip().strip("|").split("|"))
        name = name.strip("`")
        assert name in access.ROLE_TABLE, f"{name} is not a role set of services/access.py"
        assert _roles_in_words(roles) == access.ROLE_TABLE[name], f"docs/DOMAIN.md gives {name} as {roles}"
        named.add(name)
    assert named == set(access.ROLE_TABLE), f"sets missing from the table: {set(access.ROLE_TABLE) - named}"
