#!/usr/bin/env python3
"""Check every XML file with lxml, every translation file with polib, and
every relative link and image of the Markdown files.

Runs inside the lint virtualenv (tools/lint.py), which has both libraries.
The Markdown check needs only the standard library: run with a Python that
lacks lxml or polib (``python3 tools/check_files.py``), it checks the
Markdown files alone and says what it left out; ``--require-all`` (what
tools/lint.py passes) makes a missing library an error instead.
Prints one line per problem; exits 1 if there is any.
"""

import os
import re
import sys
from urllib.parse import unquote

try:
    import polib
    from lxml import etree
except ImportError as err:  # the Markdown check needs neither
    polib = etree = None
    MISSING_LIBRARY = err.name
else:
    MISSING_LIBRARY = None

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
                problems.append(
                    "%s: view %r is already defined at %s" % (where, xml_id, seen[xml_id])
                )
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
    return [
        "%s: lacks msgid %r of the .pot (msgmerge it)" % (os.path.relpath(po_path, REPO), m[:60])
        for m in missing
    ]


# --- Markdown: relative links and images -------------------------------------
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target): the target, with or without <>.
INLINE_LINK = re.compile(r"\]\(\s*(<[^>]*>|[^\s()]*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
# [label]: target, a reference definition.
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
# <a href="..."> and <img src="..."> written as HTML inside the Markdown.
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:name|id)\s*=\s*[\"']([^\"']*)[\"']", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_lines(path):
    """(line number, text) of ``path`` outside fenced code blocks."""
    with open(path, encoding="utf-8") as source:
        fence = None
        for number, line in enumerate(source, 1):
            opening = FENCE.match(line)
            if fence:
                if (
                    opening
                    and opening.group(1)[0] == fence[0]
                    and len(opening.group(1)) >= len(fence)
                ):
                    fence = None
                continue
            if opening:
                fence = opening.group(1)
                continue
            yield number, line.rstrip("\n")


def heading_slug(text):
    """The anchor GitHub gives a heading: its text without Markdown, lower
    case, punctuation dropped (letters, digits, _ and - kept), each space a -."""
    text = CODE_SPAN.sub(lambda match: match.group(0).strip("`").strip(), text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def markdown_anchors(path):
    """Every anchor of ``path``: its headings' slugs, the repeated ones
    numbered -1, -2... as GitHub does, and explicit HTML anchors."""
    anchors, seen = set(), {}
    for _number, line in markdown_lines(path):
        anchors.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if not heading:
            continue
        slug = heading_slug(heading.group(2))
        if slug in seen:
            seen[slug] += 1
            slug = "%s-%d" % (slug, seen[slug])
        else:
            seen[slug] = 0
        anchors.add(slug)
    return anchors


def markdown_targets(path):
    """(line number, target) of every link and image of ``path``."""
    for number, line in markdown_lines(path):
        reference = REFERENCE.match(line)
        if reference:
            yield number, reference.group(1)
            continue
        prose = CODE_SPAN.sub("", line)
        for target in INLINE_LINK.findall(prose) + HTML_LINK.findall(prose):
            yield number, target


def check_markdown_links(paths, repo=REPO):
    """``path:line: broken link target`` for each relative link or image of
    the Markdown files ``paths`` whose file does not exist (relative to the
    Markdown file; to the repository when it starts with /), or whose
    #anchor is no heading of the Markdown file it points to. Web, mail and
    other scheme links are not followed."""
    problems, anchors = [], {}
    for path in paths:
        rel = os.path.relpath(path, repo)
        for number, target in markdown_targets(path):
            target = target.strip("<>").strip()
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue
            file_part, _hash, anchor = target.partition("#")
            file_part = unquote(file_part.split("?", 1)[0])
            if not file_part:
                resolved = path
            elif file_part.startswith("/"):
                resolved = os.path.join(repo, file_part.lstrip("/"))
            else:
                resolved = os.path.join(os.path.dirname(path), file_part)
            resolved = os.path.normpath(resolved)
            broken = not os.path.exists(resolved)
            if not broken and anchor and resolved.endswith(".md") and os.path.isfile(resolved):
                if resolved not in anchors:
                    anchors[resolved] = markdown_anchors(resolved)
                broken = unquote(anchor) not in anchors[resolved]
            if broken:
                problems.append("%s:%d: broken link %s" % (rel, number, target))
    return problems


def check_tests_imported():
    """Flectra runs only the test files tests/__init__.py imports: a file
    left out would never run, and nobody would notice."""
    folder = os.path.join(REPO, "tests")
    with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as init:
        imported = set(re.findall(r"^from \. import (\w+)$", init.read(), re.MULTILINE))
    return [
        "tests/%s: not imported by tests/__init__.py, so it never runs" % name
        for name in sorted(os.listdir(folder))
        if name.startswith("test_") and name.endswith(".py") and name[:-3] not in imported
    ]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    problems = check_markdown_links(files(".md")) + check_tests_imported()
    if MISSING_LIBRARY:
        message = (
            "XML and translation files not checked: %s is not installed here "
            "(tools/lint.py checks them in its own virtualenv)" % MISSING_LIBRARY
        )
        if "--require-all" in argv:
            problems.append(message)
        else:
            print("note: %s" % message, file=sys.stderr)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
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
