"""docs/SECURITY.md shows the role table of services/access.py as it is: the table between its markers is
generated (scripts/security_doc.py) and must equal what the generator makes from the code now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from models.staff import Role
from services import access

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("security_doc", ROOT / "scripts" / "security_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_role_table_in_docs_security_is_the_codes():
    generator = _generator()
    document = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    assert generator.START in document and generator.END in document
    assert generator.table_in(document) == generator.roles_table(), (
        "docs/SECURITY.md's role table differs from services/access.py: run .venv/bin/python scripts/security_doc.py"
    )


def test_the_table_has_one_row_per_named_set_and_one_column_per_role():
    generator = _generator()
    lines = generator.roles_table().splitlines()
    assert len(lines) == 2 + len(access.ROLE_TABLE)
    for name, members in access.ROLE_TABLE.items():
        row = next(line for line in lines if line.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        marks = cells[2 : 2 + len(Role)]
        assert {r for r, mark in zip(Role, marks, strict=True) if mark == "✓"} == set(members), name
        if name != "ALL_ROLES":
            assert cells[1], f"{name} has no comment in services/access.py saying what it allows"


def test_a_changed_table_is_caught():
    generator = _generator()
    document = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    tampered = document.replace("| `CUSTOMER_ERASERS` |", "| `CUSTOMER_ERASERS` | (edited) |", 1)
    assert generator.table_in(tampered) != generator.roles_table()
    assert generator.replace_table(tampered) == generator.replace_table(document)
