"""The generated parts of docs/SECURITY.md: the role table, made from services/access.ROLE_TABLE.

    .venv/bin/python scripts/security_doc.py          rewrite the table in docs/SECURITY.md
    .venv/bin/python scripts/security_doc.py --check  exit 1 when the document's table is out of date

tests/security/test_security_doc.py fails when the table in the document differs from the code's.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.staff import Role  # noqa: E402
from services import access  # noqa: E402

DOC = ROOT / "docs" / "SECURITY.md"
START, END = "<!-- roles:start -->", "<!-- roles:end -->"


def purpose(name: str, source: str | None = None) -> str:
    """The comment above a named set in services/access.py: what the set allows."""
    source = source if source is not None else inspect.getsource(access)
    lines = source[: source.index(f"\n{name} = ") + 1].rstrip("\n").splitlines()
    said = []
    for line in reversed(lines):
        if not line.startswith("#"):
            break
        said.append(line.lstrip("#").strip())
    return " ".join(reversed(said))


def guarded_fields() -> dict[str, list[str]]:
    """Named set -> the root fields (queries, mutations, subscriptions) that declare it."""
    from strawberry.permission import PermissionExtension
    from strawberry.schema.name_converter import NameConverter

    from schema.conventions import MutationConventions
    from schema.permissions import RolesAllowed
    from schema.root import Mutation, Query, Subscription

    names = NameConverter()
    by_id = {id(value): name for name, value in access.ROLE_TABLE.items()}
    found: dict[str, list[str]] = {}
    for root in (Query, Mutation, Subscription):
        for field in root.__strawberry_definition__.fields:
            roles = None
            for extension in field.extensions:
                if isinstance(extension, PermissionExtension):
                    roles = next((p.roles for p in extension.permissions if isinstance(p, RolesAllowed)), None)
                elif isinstance(extension, MutationConventions):
                    roles = extension.roles
            if roles is not None and id(roles) in by_id:
                found.setdefault(by_id[id(roles)], []).append(names.from_field(field))
    return {name: sorted(fields) for name, fields in found.items()}


def roles_table() -> str:
    """One row per named set of services/access.ROLE_TABLE, one column per role (✓ where it belongs), and the
    root fields that declare the set (services check the same sets with `require_role`)."""
    source = inspect.getsource(access)
    guarded = guarded_fields()
    roles = list(Role)
    header = "| set | allows | " + " | ".join(r.value for r in roles) + " | root fields |"
    rule = "|---|---|" + "|".join(":-:" for _ in roles) + "|---|"
    rows = [header, rule]
    for name, members in access.ROLE_TABLE.items():
        allows = "every role" if name == "ALL_ROLES" else purpose(name, source).replace("|", "\\|")
        marks = " | ".join("✓" if r in members else "" for r in roles)
        fields = ", ".join(f"`{f}`" for f in guarded.get(name, [])) or "(services only)"
        rows.append(f"| `{name}` | {allows} | {marks} | {fields} |")
    return "\n".join(rows)


def section() -> str:
    return f"{START}\n{roles_table()}\n{END}"


def replace_table(document: str) -> str:
    """The document with the text between the role markers replaced by the generated table."""
    head, found, rest = document.partition(START)
    if not found or END not in rest:
        raise ValueError(f"docs/SECURITY.md has no {START} ... {END} markers")
    _, _, tail = rest.partition(END)
    return head + section() + tail


def table_in(document: str) -> str:
    """The text between the markers, as the document holds it."""
    _, _, rest = document.partition(START)
    return rest.partition(END)[0].strip("\n")


def main(argv: list[str]) -> int:
    document = DOC.read_text(encoding="utf-8")
    updated = replace_table(document)
    if "--check" in argv:
        if updated != document:
            print("docs/SECURITY.md: the role table is out of date; run scripts/security_doc.py", file=sys.stderr)
            return 1
        return 0
    if updated != document:
        DOC.write_text(updated, encoding="utf-8")
        print("docs/SECURITY.md: role table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
