"""Can Flectra drive this machine's browser? Asked before a test run.

Run by tools/test under Flectra's own Python, with tools/chromium first on
PATH as for the tests. It starts the browser exactly as Flectra's tours do
(flectra.tests.common.ChromeBrowser: same switches, same DevTools WebSocket
client), reads the page's width and closes it. It prints one line, the
browser's version, and exits 0; or one sentence saying why the browser cannot
be driven, and exits 1.
"""

import logging
import shutil
import subprocess
import sys
import tempfile
import unittest

WINDOW = (1366, 768)  # what Flectra's HttpCase.browser_js asks for


def browser_version():
    path = shutil.which("chromium") or shutil.which("google-chrome") or "chromium"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    return (out.stdout.strip() or None), out.stderr.strip()


def drive():
    """None if Flectra's ChromeBrowser opens a page at the right size, else why not."""
    import flectra
    from flectra.tests import common

    workdir = tempfile.mkdtemp(prefix="wsoh_browser_check_")
    flectra.tools.config.parse_config(["--database=browser_check", "--screenshots=%s" % workdir])
    logger = logging.getLogger("browser_check")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    browser = None
    try:
        browser = common.ChromeBrowser(logger, "%dx%d" % WINDOW, None)
        request = browser._websocket_send(
            "Runtime.evaluate", params={"expression": "window.innerWidth", "returnByValue": True}
        )
        answer = browser._websocket_wait_id(request) or {}
        width = answer.get("result", {}).get("result", {}).get("value")
        if width != WINDOW[0]:
            return "its page is %s px wide instead of %d (window size switch not understood)" % (
                width,
                WINDOW[0],
            )
        return None
    except unittest.SkipTest as err:
        return str(err)
    except Exception as err:  # the WebSocket client's own errors, a crash...
        return "%s: %s" % (type(err).__name__, str(err).strip().splitlines()[0] if str(err) else "")
    finally:
        if browser is not None:
            try:
                browser.stop()
            except Exception:  # noqa: BLE001 (closing a browser that already died)
                pass
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    version, error = browser_version()
    if not version:
        print(
            "No browser for the tours: Debian's chromium package is needed (%s)."
            % (error or "chromium --version printed nothing")
        )
        return 1
    why = drive()
    if why:
        print("%s was found, but Flectra cannot drive it: %s." % (version, why.rstrip(".")))
        return 1
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
