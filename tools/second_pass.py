"""The second pass of tools/test --core and --stock: the at_install tests of
Flectra's suites again, this time with every module of the database loaded.

    <Flectra's python> tools/second_pass.py --suites sale,stock,... \\
        --test-tags /sale,/stock,... -- <Flectra's options: --database, --addons-path ...>

Flectra runs a module's at_install tests right after it installs that module,
before the modules that depend on it are loaded (flectra/modules/loading.py):
in the first pass, those tests never see the add-on. This script runs them on
the database the first pass installed, in the fully loaded registry, the way
Flectra runs its post-install tests (flectra/service/server.py
preload_registries): the HTTP server up first (ThreadedServer.start, for the
HttpCase and tours), Flectra's loader and runner
(flectra.tests.loader.make_suite, run_suite), its logging
(config.parse_config initialises it: flectra.netsvc.init_logger). The log is
Flectra's, one "Starting Class.method ..." record per test on the test
module's logger, so tools/test counts it as it counts the first pass. Only the
at_install tests run: the post_install ones already ran with everything
loaded in the first pass.

The last record is "N failed, N error(s) of N tests with every module loaded,
on database 'db'". Exit code: 0 when every test passed, 1 when one failed, 2
when the pass could not run.
"""

import os

# As the `flectra` script does, before anything reads the time zone.
os.environ["TZ"] = "UTC"

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import flectra  # noqa: E402
from flectra.cli.server import report_configuration  # noqa: E402
from flectra.modules.registry import Registry  # noqa: E402
from flectra.service import server as flectra_server  # noqa: E402
from flectra.tests import loader  # noqa: E402
from flectra.tests.runner import FlectraTestResult  # noqa: E402
from flectra.tools import config  # noqa: E402

_logger = logging.getLogger("flectra.tests.second_pass")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suites",
        required=True,
        help="comma-separated add-ons whose at_install tests to run, in order",
    )
    parser.add_argument("--test-tags", required=True, help="the --test-tags spec of the first pass")
    parser.add_argument(
        "flectra_args", nargs=argparse.REMAINDER, help="Flectra's own options, after --"
    )
    args = parser.parse_args(argv)
    if args.flectra_args[:1] == ["--"]:
        args.flectra_args = args.flectra_args[1:]
    return args


def run_tests(registry, suites):
    """Each suite's at_install tests, in the loaded registry; the merged result."""
    report = FlectraTestResult()
    with flectra.api.Environment.manage():
        for module_name in suites:
            if module_name not in registry._init_modules:
                _logger.warning(
                    "%s is not installed on this database: its tests do not run", module_name
                )
                continue
            suite = loader.make_suite(module_name, "at_install")
            if not suite.countTestCases():
                continue
            _logger.info(
                "Starting the at_install tests of %s (%d), every module loaded",
                module_name,
                suite.countTestCases(),
            )
            report.update(loader.run_suite(suite, module_name))
    return report


def main(argv):
    args = parse_args(argv)
    # Flectra's configuration and logging, as the `flectra` command sets them
    # up. Without --test-enable: with it, loading the registry below would run
    # every module's at_install tests as that module loads (loading.py), the
    # very thing this pass is there to avoid.
    config.parse_config(args.flectra_args)
    report_configuration()
    if config["test_enable"]:
        _logger.critical("give the tests' tags with --test-tags before --, not to Flectra")
        return 2
    db = config["db_name"]
    try:
        # As flectra.service.server.start and ThreadedServer.run do: the
        # server-wide modules, the HTTP server (for the HttpCase and tours, on
        # --http-port), then the database's registry.
        flectra_server.load_server_wide_modules()
        server = flectra_server.ThreadedServer(flectra.service.wsgi_server.application)
        server.start()
        registry = Registry.new(db)
    except Exception:
        _logger.critical("Failed to load database %r for the second pass.", db, exc_info=True)
        return 2
    # Now the tests run, as Flectra's would with --test-enable --test-tags.
    # These two are Flectra's configuration, read by make_suite (the tags),
    # ir.http and the report engine (test mode), not patched behaviour.
    config["test_enable"] = True
    config["test_tags"] = args.test_tags
    suites = [name.strip() for name in args.suites.split(",") if name.strip()]
    rc = 2
    try:
        _logger.info("Starting the second pass: at_install tests with every module loaded")
        report = run_tests(registry, suites)
        log = (
            _logger.error
            if not report.wasSuccessful()
            else _logger.warning
            if not report.testsRun
            else _logger.info
        )
        log("%s with every module loaded, on database %r", report, db)
        rc = 0 if report.wasSuccessful() else 1
    except Exception:
        _logger.critical("The second pass stopped on database %r.", db, exc_info=True)
    finally:
        server.stop()  # waits up to 1 s for requests, then logging.shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
