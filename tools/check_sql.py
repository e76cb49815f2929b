#!/usr/bin/env python3
"""Refuse SQL that the oldest PostgreSQL Flectra 2.0 runs on (10) lacks.

Flectra 2.0 supports PostgreSQL 10 and later; the add-on must too. A short
list of the functions and syntax added since, each with the version that
brought it, is looked for in the add-on's Python and XML files (not in
tools/, which holds this list). Prints one line per use; exits 1 if any.
Standard library only.
"""

import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", ".test-logs", "__pycache__", "node_modules", "tools", "i18n"}

# name (a regular expression) -> the PostgreSQL version that added it. Names
# that Python has too (gcd, bit_count) are left out: the check reads whole files.
NEWER_THAN_10 = {
    r"\bgen_random_uuid\s*\(": "13 (core; pgcrypto before)",
    r"\bwebsearch_to_tsquery\s*\(": "11",
    r"\bjsonb_path_(?:query|exists|match|query_array|query_first)\w*\s*\(": "12",
    r"\bpg_current_xact_id\s*\(": "13",
    r"\btrim_scale\s*\(": "13",
    r"\bmin_scale\s*\(": "13",
    r"\b(?:date_bin|string_to_table|trim_array|range_agg)\s*\(": "14",
    r"\b(?:any_value|unistr|array_sample|array_shuffle)\s*\(": "16",
    r"\bjson_(?:scalar|serialize)\s*\(": "16 (SQL/JSON)",
    r"\bMERGE\s+INTO\b": "15",
    r"\bNULLS\s+NOT\s+DISTINCT\b": "15",
    r"\bGENERATED\s+ALWAYS\s+AS\s*\([^)]*\)\s*STORED\b": "12",
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?PROCEDURE\b": "11",
    r"\bINCLUDE\s*\(\s*\w+": "11 (covering indexes)",
    r"\bMATERIALIZED\s*\(": "12 (CTE AS MATERIALIZED)",
}
PATTERNS = [
    (re.compile(pattern, re.IGNORECASE), version) for pattern, version in NEWER_THAN_10.items()
]


def files():
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in sorted(names):
            if name.endswith((".py", ".xml", ".sql")):
                yield os.path.join(root, name)


def check(path):
    problems = []
    with open(path, encoding="utf-8", errors="replace") as source:
        for number, line in enumerate(source, 1):
            for pattern, version in PATTERNS:
                match = pattern.search(line)
                if match:
                    problems.append(
                        "%s:%d: %s needs PostgreSQL %s; Flectra 2.0 runs on 10"
                        % (os.path.relpath(path, REPO), number, match.group(0).strip(), version)
                    )
    return problems


def main():
    problems = [problem for path in files() for problem in check(path)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
