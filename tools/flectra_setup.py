"""Find the Flectra this project runs on, without installing it: its command,
its Python and its add-ons."""

import hashlib
import os
import shutil
import subprocess
import sys

MODULE = "website_sale_order_handling"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NO_FLECTRA = (
    "Flectra 2.0 was not found: install it so that a `flectra` command is on PATH, "
    "or set FLECTRA_BIN to its path."
)

CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), MODULE)


class SetupError(Exception):
    """A missing prerequisite, said in one sentence to the user."""


def fail(message, code=2):
    print(message, file=sys.stderr)
    sys.exit(code)


def flectra_bin():
    path = os.environ.get("FLECTRA_BIN") or shutil.which("flectra")
    if not path or not os.access(path, os.X_OK):
        raise SetupError(NO_FLECTRA)
    return path


def flectra_python(bin_path):
    """The interpreter behind the `flectra` script (its shebang), if it is Python."""
    with open(bin_path, "rb") as script:
        first = script.readline().decode("utf-8", "replace").strip()
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and os.path.basename(parts[0]) == "env":
        parts = parts[1:]
    if parts and "python" in os.path.basename(parts[0]):
        return shutil.which(parts[0]) or parts[0]
    return None


def default_addons_path(bin_path):
    """Flectra's own addons path, to which ours is prepended."""
    if os.environ.get("FLECTRA_ADDONS_PATH"):
        return os.environ["FLECTRA_ADDONS_PATH"]
    python = flectra_python(bin_path)
    if not python:
        raise SetupError(
            "Cannot tell where Flectra's add-ons live: set FLECTRA_ADDONS_PATH "
            "to its comma-separated addons path."
        )
    code = (
        "import warnings; warnings.simplefilter('ignore');"
        "from flectra.tools import config; config.parse_config([]);"
        "print(config['addons_path'])"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise SetupError(
            "The `flectra` command was found but its Python cannot import flectra: "
            "check the installation or set FLECTRA_ADDONS_PATH."
        )
    return out.stdout.strip().splitlines()[-1]


def module_addons_dir():
    """A folder holding this repository under the module's technical name.

    The repository root is the add-on, but a clone's folder can have any name,
    and Flectra finds add-ons by folder name: link it from a cache folder
    (one per clone, so two clones never shadow each other).
    """
    if os.path.basename(REPO) == MODULE:
        return os.path.dirname(REPO)
    digest = hashlib.sha1(REPO.encode()).hexdigest()[:10]
    folder = os.path.join(CACHE, "addons-%s" % digest)
    link = os.path.join(folder, MODULE)
    os.makedirs(folder, exist_ok=True)
    if os.path.realpath(link) != REPO:
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(REPO, link)
    return folder
