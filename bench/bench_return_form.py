#!/usr/bin/env python3
"""Benchmark the online return form against the native order page.

Run it with Flectra's own interpreter (the one named on the first line of the
``flectra`` script, which must be on PATH), from the add-on's root:

    <Flectra's python> bench/bench_return_form.py [--rebuild]

It builds a database (``wsoh_bench_returns``; add-on installed, no demo),
seeds two portal customers with delivered orders, one of 3 lines per order,
one of 60 lines per order, starts a Flectra server on a free loopback port,
then times, in the same run and for both order sizes:

* GET  /my/orders/<id>          (native order page, the reference)
* GET  /my/orders/<id>/return   (the return form)
* POST /my/orders/<id>/return   (a valid submission, redirect not followed;
                                 with WSOH_BENCH_VARIANTS=1, one product
                                 exchanged for another size)

sequentially and with 4 concurrent clients, and prints medians, ratios to the
native page of the same size, and SQL queries per request (counted by the
server: its request log line ends with the request's query count; each timed
request carries a ``_b`` tag in its query string to find its line).
Connection settings: PGHOST, PGPORT, PGUSER, PGPASSWORD (default
127.0.0.1:5432, wsoh/wsoh), like tools/test.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ADDON = os.path.dirname(HERE)
MODULE = "website_sale_order_handling"
# WSOH_BENCH_VARIANTS=1: every product in three sizes, S (cheaper), M (the
# one ordered) and L (dearer), all in stock: the form offers an exchange on
# every line and the POST exchanges one. Its own database.
VARIANTS = os.environ.get("WSOH_BENCH_VARIANTS") == "1"
DB = os.environ.get(
    "WSOH_BENCH_DB", "wsoh_bench_returns_sizes" if VARIANTS else "wsoh_bench_returns"
)
ORDERS = 12  # per order size
SIZES = (3, 60)  # lines per order
SEQUENTIAL_RUNS = 20  # per order size
CONCURRENT_CLIENTS = 4
CONCURRENT_RUNS = 6  # per client and order size
KEYS = ["native GET /my/orders/<id>", "return form GET", "return form POST"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flectra_config(addons_dir, port):
    import flectra  # noqa: F401  (the interpreter must be Flectra's)
    from flectra.tools import config

    config.parse_config([])
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(
        "[options]\n"
        "addons_path = %s,%s\n"
        "db_host = %s\ndb_port = %s\ndb_user = %s\ndb_password = %s\n"
        "http_interface = 127.0.0.1\nhttp_port = %s\nlongpolling_port = %s\n"
        "workers = 0\nmax_cron_threads = 0\nlog_level = info\nlist_db = False\n"
        "logfile = %s\n"
        % (
            addons_dir,
            config["addons_path"],
            os.environ.get("PGHOST", "127.0.0.1"),
            os.environ.get("PGPORT", "5432"),
            os.environ.get("PGUSER", "wsoh"),
            os.environ.get("PGPASSWORD", "wsoh"),
            port,
            free_port(),
            SERVER_LOG,
        )
    )
    conf.close()
    return conf.name


SERVER_LOG = "/tmp/%s-server.log" % DB


def flectra_cmd(conf, *args):
    return ["flectra", "-c", conf, "-d", DB, *args]


def db_exists():
    out = subprocess.run(
        [
            "psql",
            "-h",
            os.environ.get("PGHOST", "127.0.0.1"),
            "-p",
            os.environ.get("PGPORT", "5432"),
            "-U",
            os.environ.get("PGUSER", "wsoh"),
            "-d",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = '%s'" % DB,
        ],
        env=dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", "wsoh")),
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() == "1"


SEED = r"""
env = env(context=dict(env.context, tracking_disable=True, mail_notrack=True))
website = env["website"].browse(1)
website.write({"allow_online_returns": True, "return_window_days": 30})
env["ir.config_parameter"].set_param(
    "website_sale_order_handling.return_max_requests_per_hour", 100000)
warehouse = env["stock.warehouse"].search([], limit=1)
for size in __SIZES__:
    login = "bench_portal_%s" % size
    user = env["res.users"].search([("login", "=", login)])
    if not user:
        user = env["res.users"].with_context(no_reset_password=True).create({
            "name": "Bench Customer %s" % size, "login": login, "password": login,
            "email": "bench%s@example.com" % size,
            "groups_id": [(6, 0, [env.ref("base.group_portal").id])]})
        user.partner_id.country_id = env.ref("base.be")
        if __VARIANTS__:
            sizes = env["product.attribute"].search([("name", "=", "Bench Size")]) or env[
                "product.attribute"].create({"name": "Bench Size", "value_ids": [
                    (0, 0, {"name": name}) for name in ("S", "M", "L")]})
            templates = env["product.template"].create([
                {"name": "Bench Lamp %s-%s" % (size, i), "type": "product",
                 "list_price": 20 + i, "is_published": True, "attribute_line_ids": [(0, 0, {
                     "attribute_id": sizes.id, "value_ids": [(6, 0, sizes.value_ids.ids)]})]}
                for i in range(size)])
            for value in templates.attribute_line_ids.product_template_value_ids:
                value.price_extra = {"S": -2.0, "L": 2.0}.get(value.name, 0.0)
            variants = templates.product_variant_ids
            products = variants.filtered(
                lambda v: v.product_template_attribute_value_ids.name == "M")
        else:
            variants = products = env["product.product"].create([
                {"name": "Bench Lamp %s-%s" % (size, i), "type": "product",
                 "list_price": 20 + i, "is_published": True} for i in range(size)])
        for variant in variants:
            env["stock.quant"]._update_available_quantity(variant, warehouse.lot_stock_id, 1e7)
        for n in range(__ORDERS__):
            order = env["sale.order"].create({
                "partner_id": user.partner_id.id, "website_id": website.id,
                "order_line": [(0, 0, {"product_id": p.id, "product_uom_qty": 1000})
                               for p in products]})
            order.action_confirm()
            for move in order.picking_ids.move_lines:
                move.quantity_done = move.product_uom_qty
            order.picking_ids._action_done()
        env.cr.commit()
    print("ORDERS", size, ",".join(str(i) for i in env["sale.order"].search(
        [("partner_id", "=", user.partner_id.id), ("state", "=", "sale")]).ids))
print("REASON", env.ref("website_sale_order_handling.return_reason_damaged").id)
"""


def build(conf, rebuild):
    if rebuild and db_exists():
        subprocess.run(
            [
                "dropdb",
                "-h",
                os.environ.get("PGHOST", "127.0.0.1"),
                "-U",
                os.environ.get("PGUSER", "wsoh"),
                DB,
            ],
            env=dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", "wsoh")),
            check=True,
        )
    if not db_exists():
        print("building database %s (a few minutes)..." % DB, flush=True)
        subprocess.run(
            flectra_cmd(conf, "-i", MODULE, "--without-demo=all", "--stop-after-init"),
            check=True,
            capture_output=True,
        )
    out = subprocess.run(
        ["flectra", "shell", "-c", conf, "-d", DB, "--no-http"],
        input=SEED.replace("__ORDERS__", str(ORDERS))
        .replace("__SIZES__", repr(SIZES))
        .replace("__VARIANTS__", repr(VARIANTS)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    orders = {
        int(size): [int(i) for i in ids.split(",")]
        for size, ids in re.findall(r"^ORDERS (\d+) (.*)$", out, re.M)
    }
    reason = int(re.search(r"^REASON (\d+)$", out, re.M).group(1))
    return orders, reason


class Client:
    _seq = [0]

    def __init__(self, base, size):
        self.base = base
        self.size = size
        self.session = requests.Session()
        page = self.session.get(base + "/web/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        login = "bench_portal_%s" % size
        self.session.post(
            base + "/web/login", data={"login": login, "password": login, "csrf_token": csrf}
        )

    def timed(self, method, url, **kwargs):
        self._seq[0] += 1
        self.tag = "r%s" % self._seq[0]
        url += "?_b=" + self.tag
        start = time.perf_counter()
        response = self.session.request(method, self.base + url, allow_redirects=False, **kwargs)
        elapsed = time.perf_counter() - start
        assert response.status_code in (200, 303, 302), (url, response.status_code)
        return elapsed, response

    def run_once(self, order_id, reason_id, timings):
        elapsed, _r = self.timed("GET", "/my/orders/%s" % order_id)
        timings["native GET /my/orders/<id>"].append((elapsed, self.tag))
        elapsed, form = self.timed("GET", "/my/orders/%s/return" % order_id)
        timings["return form GET"].append((elapsed, self.tag))
        assert "o_wsoh_return_form" in form.text
        data = {
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1),
            "form_token": re.search(r'name="form_token" value="([^"]+)"', form.text).group(1),
        }
        line_id = re.search(r'name="qty_(\d+)"', form.text).group(1)
        data["qty_%s" % line_id] = "1"
        data["reason_%s" % line_id] = str(reason_id)
        if VARIANTS:
            # Exchanged for the first size offered (its check reads stock and prices).
            offered = re.search(
                r'name="exchange_%s".*?<option value="(\d+)"' % line_id, form.text, re.S
            )
            assert offered, "the form offers no exchange"
            data["exchange_%s" % line_id] = offered.group(1)
        elapsed, posted = self.timed("POST", "/my/orders/%s/return" % order_id, data=data)
        assert posted.status_code in (302, 303), "the return was not accepted"
        timings["return form POST"].append((elapsed, self.tag))


def query_counts():
    """{tag: SQL queries} from the server's request log lines."""
    pattern = re.compile(
        r'werkzeug: \S+ - - \[[^\]]+\] "\w+ \S*[?&]_b=(\w+)\S* '
        r'HTTP/[\d.]+" \d+ \S+ (\d+) '
    )
    counts = {}
    with open(SERVER_LOG, errors="replace") as log:
        for line in log:
            match = pattern.search(line)
            if match:
                counts[match.group(1)] = int(match.group(2))
    return counts


def measure(base, orders, reason, clients, runs, size):
    timings = {key: [] for key in KEYS}
    lock = threading.Lock()

    def worker(index):
        client = Client(base, size)
        local = {key: [] for key in KEYS}
        for run in range(runs):
            order_id = orders[size][(index * runs + run) % len(orders[size])]
            client.run_once(order_id, reason, local)
        with lock:
            for key in KEYS:
                timings[key].extend(local[key])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


def summary(timings, counts):
    """{key: (median ms, median SQL queries)}."""
    out = {}
    for key, values in timings.items():
        queries = [counts[tag] for _elapsed, tag in values if tag in counts]
        out[key] = (
            statistics.median(e for e, _tag in values) * 1000,
            statistics.median(queries) if queries else float("nan"),
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args()
    addons_dir = tempfile.mkdtemp(prefix="wsoh_bench_addons_")
    os.symlink(ADDON, os.path.join(addons_dir, MODULE))
    port = free_port()
    conf = flectra_config(addons_dir, port)
    orders, reason = build(conf, args.rebuild)
    open(SERVER_LOG, "w").close()
    server = subprocess.Popen(
        flectra_cmd(conf, "--db-filter=^%s$" % DB),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = "http://127.0.0.1:%s" % port
    try:
        for _attempt in range(120):
            try:
                requests.get(base + "/web/login", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(1)
        # Warm-up: compile templates and assets once, outside the figures.
        for size in SIZES:
            measure(base, orders, reason, 1, 2, size)
        print(
            "Flectra %s, %d orders of each size (%s lines)%s, port %d"
            % (
                DB,
                ORDERS,
                " and ".join(map(str, SIZES)),
                ", every product in 3 sizes" if VARIANTS else "",
                port,
            )
        )
        for label, clients, runs in (
            ("sequential", 1, SEQUENTIAL_RUNS),
            ("%d concurrent clients" % CONCURRENT_CLIENTS, CONCURRENT_CLIENTS, CONCURRENT_RUNS),
        ):
            timings = {size: {key: [] for key in KEYS} for size in SIZES}
            # Interleaved: one pass of each size in turn, so noise hits both alike.
            for run in range(runs):
                for size in SIZES if run % 2 == 0 else SIZES[::-1]:
                    for key, values in measure(base, orders, reason, clients, 1, size).items():
                        timings[size][key].extend(values)
            time.sleep(1)  # let the server write its last request lines
            counts = query_counts()
            print("\n%s (medians, %d requests each)" % (label, clients * runs))
            print(
                "  %-30s %s"
                % ("", "".join("%33s" % ("%d lines: ms  ratio  SQL" % size) for size in SIZES))
            )
            results = {size: summary(timings[size], counts) for size in SIZES}
            for key in KEYS:
                cells = ""
                for size in SIZES:
                    ms, queries = results[size][key]
                    native = results[size]["native GET /my/orders/<id>"][0]
                    cells += "%17.1f %6.2fx %6.0f" % (ms, ms / native, queries)
                print("  %-30s %s" % (key, cells))
            big, native_big = SIZES[-1], results[SIZES[-1]]["native GET /my/orders/<id>"][0]
            print(
                "  return form GET at %d lines / native page at %d lines: %.2fx (goal 1.5x)"
                % (big, big, results[big]["return form GET"][0] / native_big)
            )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
