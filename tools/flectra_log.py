"""Read Flectra's log: its records (tracebacks included), and the few lines
that tell a person where a long run is."""

import re

LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z?]+) (?P<db>\S+) "
    r"(?P<logger>[^:\s]+): (?P<msg>.*)$"
)


def log_records(path):
    """Yield (level, logger, text) for each record of a Flectra log, tracebacks included."""
    current = None
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = LOG_RECORD.match(line)
            if match:
                if current:
                    yield current
                current = [match["level"], match["logger"], line]
            elif current:
                current[2] += line
    if current:
        yield current


def show_progress(line):
    """Echo the few log lines that tell a person where a long run is."""
    match = LOG_RECORD.match(line)
    if not match:
        return
    msg = match["msg"].strip()
    module = re.match(r"Loading module (\S+) \((\d+)/(\d+)\)", msg)
    if module:
        print("  loading %s (%s/%s)" % module.groups(), flush=True)
    elif msg.startswith("Starting ") and msg.endswith(" ..."):
        print("  test %s" % msg[len("Starting ") : -4], flush=True)
    elif msg.startswith("Starting post tests"):
        print("  post-install tests", flush=True)
    elif msg.startswith("Starting the second pass"):
        print("  second pass: the at_install tests, every module loaded", flush=True)
    elif match["level"] in ("ERROR", "CRITICAL"):
        print("  %s %s" % (match["level"], msg[:200]), flush=True)
