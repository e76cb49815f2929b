#!/usr/bin/env python3
"""Static checks that need no ERP: pylint-odoo, ruff, XML, translation and Markdown files.

The tools live in a virtualenv under the user's cache folder, built once from
tools/requirements-lint.txt (rebuilt when that file changes).
"""

import argparse
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flectra_env as fe  # noqa: E402

REQUIREMENTS = os.path.join(fe.REPO, "tools", "requirements-lint.txt")
VENV = os.path.join(fe.CACHE, "lint-venv")
SKIP_DIRS = {".git", ".test-logs", "__pycache__", "node_modules"}


def lint_python():
    """The interpreter of the lint venv, (re)built when the requirements change."""
    with open(REQUIREMENTS, "rb") as req:
        digest = hashlib.sha256(req.read()).hexdigest()
    stamp = os.path.join(VENV, ".requirements.sha256")
    python = os.path.join(VENV, "bin", "python")
    if os.path.exists(stamp) and open(stamp).read() == digest:
        return python
    print("  installing the lint tools into %s ..." % VENV, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise fe.SetupError("Could not install the lint tools from PyPI:\n%s" % done.stderr[-2000:])
    with open(stamp, "w") as out:
        out.write(digest)
    return python


def repo_files(*suffixes):
    for root, dirs, files in os.walk(fe.REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in files:
            if name.endswith(suffixes):
                yield os.path.join(root, name)


def check(name, cmd, **kwargs):
    print("  %s ..." % name, end=" ", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode == 0:
        print("ok")
        return 0
    print("FAILED")
    print((done.stdout + done.stderr).rstrip())
    return 1


def run_all(only=None, fix=False):
    """Run every static check (or the one named ``only``); return how many
    failed. ``fix``: let the formatter rewrite the files first."""
    try:
        python = lint_python()
    except (fe.SetupError, subprocess.CalledProcessError) as err:
        print(err)
        return 1
    bin_dir = os.path.dirname(python)
    ruff = os.path.join(bin_dir, "ruff")
    if fix:
        subprocess.run([ruff, "format", "--no-cache", "."], cwd=fe.REPO, check=False)
    checks = {
        "pylint-odoo": dict(
            cmd=[
                os.path.join(bin_dir, "pylint"),
                "--rcfile=%s" % os.path.join(fe.REPO, ".pylintrc"),
                # The README is Markdown, as the project asks, not OCA's README.rst.
                "--disable=missing-readme",
                os.path.join(fe.module_addons_dir(), fe.MODULE),
            ]
        ),
        "ruff": dict(cmd=[ruff, "check", "--no-cache", "."], cwd=fe.REPO),
        # The one formatter of the project's Python (ruff's, with .ruff.toml).
        "ruff-format": dict(cmd=[ruff, "format", "--check", "--no-cache", "."], cwd=fe.REPO),
        "XML, translation and Markdown files": dict(
            cmd=[python, os.path.join(fe.REPO, "tools", "check_files.py"), "--require-all"]
        ),
        "SQL for PostgreSQL 10": dict(
            cmd=[sys.executable, os.path.join(fe.REPO, "tools", "check_sql.py")]
        ),
    }
    failures = 0
    for name, spec in checks.items():
        if only and name != only:
            continue
        failures += check(name, spec["cmd"], **({"cwd": spec["cwd"]} if "cwd" in spec else {}))
    return failures


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run this check alone (e.g. ruff-format)")
    parser.add_argument("--fix", action="store_true", help="format the Python files first")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    try:
        sys.exit(1 if run_all(only=args.only, fix=args.fix) else 0)
    except fe.SetupError as err:
        fe.fail(str(err))
