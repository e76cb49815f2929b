#!/usr/bin/env python3
"""Check every XML file with lxml and every translation file with polib.

Runs inside the lint virtualenv (tools/lint.py), which has both libraries.
Prints one line per problem; exits 1 if there is any.
"""
import os
import re
import sys

import polib
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", ".test-logs", "__pycache__", "node_modules"}
# Data files must have Flectra's root; static QWeb files have <templates>.
DATA_DIRS = ("views", "data", "demo", "security", "wizard")
PLACEHOLDER = re.compile(r"%\([A-Za-z_]\w*\)[sdrf]|%[sdrf]|\$\{[^}]*\}|\{\w*\}")


def files(suffix):
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        for name in sorted(names):
            if name.endswith(suffix):
                yield os.path.join(root, name)


def check_xml(path):
    try:
        tree = etree.parse(path)
    except etree.XMLSyntaxError as err:
        return ["%s: not well-formed: %s" % (path, err)]
    rel = os.path.relpath(path, REPO)
    if rel.split(os.sep)[0] in DATA_DIRS and tree.getroot().tag != "flectra":
        return ["%s: root is <%s>, Flectra 2.0 only loads <flectra>" % (rel, tree.getroot().tag)]
    return []


def placeholders(text):
    return sorted(PLACEHOLDER.findall(text or ""))


def check_po(path):
    rel = os.path.relpath(path, REPO)
    try:
        catalog = polib.pofile(path)
    except (OSError, ValueError) as err:
        return ["%s: cannot be parsed: %s" % (rel, err)]
    problems = []
    is_template = path.endswith(".pot")
    for entry in catalog:
        if entry.obsolete:
            continue
        where = "%s:%s msgid %r" % (rel, entry.linenum, entry.msgid[:60])
        if is_template:
            continue
        if "fuzzy" in entry.flags:
            problems.append("%s: is fuzzy" % where)
        if not entry.msgstr.strip():
            problems.append("%s: has an empty msgstr" % where)
        elif placeholders(entry.msgid) != placeholders(entry.msgstr):
            problems.append(
                "%s: placeholders %s became %s"
                % (where, placeholders(entry.msgid), placeholders(entry.msgstr))
            )
    return problems


def check_views_defined_once(paths):
    """A view (record of ir.ui.view, or template) defined twice under one XML
    id is one view: the second file's arch silently replaces the first's."""
    seen, problems = {}, []
    for path in paths:
        rel = os.path.relpath(path, REPO)
        if rel.split(os.sep)[0] not in DATA_DIRS + ("report",):
            continue
        try:
            root = etree.parse(path).getroot()
        except etree.XMLSyntaxError:
            continue  # check_xml says why
        for node in root.iter("record", "template"):
            if node.tag == "record" and node.get("model") != "ir.ui.view":
                continue
            xml_id = node.get("id") or ""
            if "." in xml_id:
                continue  # another add-on's view, inherited or changed
            where = "%s:%s" % (rel, node.sourceline)
            if xml_id in seen:
                problems.append("%s: view %r is already defined at %s" % (where, xml_id, seen[xml_id]))
            else:
                seen[xml_id] = where
    return problems


def check_complete(po_path, pot_path):
    """A translation has every term of the template: no string of the
    add-on shows in English to a French or German user."""
    try:
        template = {entry.msgid for entry in polib.pofile(pot_path) if entry.msgid}
        translated = {entry.msgid for entry in polib.pofile(po_path) if not entry.obsolete}
    except (OSError, ValueError):
        return []  # check_po says why
    missing = sorted(template - translated)
    return ["%s: lacks msgid %r of the .pot (msgmerge it)" % (os.path.relpath(po_path, REPO), m[:60])
            for m in missing]


def main():
    problems = []
    for path in files(".xml"):
        problems += check_xml(path)
    problems += check_views_defined_once(files(".xml"))
    for path in list(files(".po")) + list(files(".pot")):
        problems += check_po(path)
    templates = list(files(".pot"))
    for path in files(".po"):
        for template in templates:
            if os.path.dirname(template) == os.path.dirname(path):
                problems += check_complete(path, template)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
