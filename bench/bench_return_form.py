#!/usr/bin/env python3
"""Benchmark the online return form against the native order page.

Run with Flectra's interpreter from the add-on's root:

    /opt/flectra-venv/bin/python bench/bench_return_form.py [--rebuild]

It builds a database (``wsoh_bench_returns``; add-on installed, no demo),
seeds a portal customer with delivered orders, starts a Flectra server on a
free loopback port, then times, in the same run:

* GET  /my/orders/<id>          (native order page, the reference)
* GET  /my/orders/<id>/return   (the return form)
* POST /my/orders/<id>/return   (a valid submission, redirect not followed)

sequentially and with 4 concurrent clients, and prints medians and ratios.
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
DB = os.environ.get("WSOH_BENCH_DB", "wsoh_bench_returns")
ORDERS = 40
LINES_PER_ORDER = 3
SEQUENTIAL_RUNS = 40
CONCURRENT_CLIENTS = 4
CONCURRENT_RUNS = 15  # per client


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
        "workers = 0\nlog_level = warn\nlist_db = False\n"
        % (
            addons_dir, config["addons_path"],
            os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432"),
            os.environ.get("PGUSER", "wsoh"), os.environ.get("PGPASSWORD", "wsoh"),
            port, free_port(),
        )
    )
    conf.close()
    return conf.name


def flectra_cmd(conf, *args):
    return ["flectra", "-c", conf, "-d", DB, *args]


def db_exists():
    out = subprocess.run(
        ["psql", "-h", os.environ.get("PGHOST", "127.0.0.1"), "-p", os.environ.get("PGPORT", "5432"),
         "-U", os.environ.get("PGUSER", "wsoh"), "-d", "postgres", "-tAc",
         "SELECT 1 FROM pg_database WHERE datname = '%s'" % DB],
        env=dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", "wsoh")),
        capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() == "1"


SEED = r'''
env = env(context=dict(env.context, tracking_disable=True, mail_notrack=True))
website = env["website"].browse(1)
website.write({"allow_online_returns": True, "return_window_days": 30})
env["ir.config_parameter"].set_param(
    "website_sale_order_handling.return_max_requests_per_hour", 100000)
user = env["res.users"].search([("login", "=", "bench_portal")])
if not user:
    user = env["res.users"].with_context(no_reset_password=True).create({
        "name": "Bench Customer", "login": "bench_portal", "password": "bench_portal",
        "email": "bench@example.com", "groups_id": [(6, 0, [env.ref("base.group_portal").id])]})
    user.partner_id.country_id = env.ref("base.be")
    warehouse = env["stock.warehouse"].search([], limit=1)
    products = env["product.product"].create([
        {"name": "Bench Lamp %s" % i, "type": "product", "list_price": 20 + i,
         "is_published": True} for i in range(__LINES__)])
    for product in products:
        env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, 1e7)
    for n in range(__ORDERS__):
        order = env["sale.order"].create({
            "partner_id": user.partner_id.id, "website_id": website.id,
            "order_line": [(0, 0, {"product_id": p.id, "product_uom_qty": 1000}) for p in products]})
        order.action_confirm()
        for move in order.picking_ids.move_lines:
            move.quantity_done = move.product_uom_qty
        order.picking_ids._action_done()
    env.cr.commit()
print("ORDERS", ",".join(str(i) for i in env["sale.order"].search(
    [("partner_id", "=", user.partner_id.id), ("state", "=", "sale")]).ids))
print("REASON", env.ref("website_sale_order_handling.return_reason_damaged").id)
'''


def build(conf, rebuild):
    if rebuild and db_exists():
        subprocess.run(["dropdb", "-h", os.environ.get("PGHOST", "127.0.0.1"),
                        "-U", os.environ.get("PGUSER", "wsoh"), DB],
                       env=dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", "wsoh")),
                       check=True)
    if not db_exists():
        print("building database %s (a few minutes)..." % DB, flush=True)
        subprocess.run(flectra_cmd(conf, "-i", MODULE, "--without-demo=all", "--stop-after-init"),
                       check=True, capture_output=True)
    out = subprocess.run(
        ["flectra", "shell", "-c", conf, "-d", DB, "--no-http"],
        input=SEED.replace("__ORDERS__", str(ORDERS)).replace("__LINES__", str(LINES_PER_ORDER)),
        capture_output=True, text=True, check=True,
    ).stdout
    orders = [int(i) for i in re.search(r"^ORDERS (.*)$", out, re.M).group(1).split(",")]
    reason = int(re.search(r"^REASON (\d+)$", out, re.M).group(1))
    return orders, reason


class Client:
    def __init__(self, base):
        self.base = base
        self.session = requests.Session()
        page = self.session.get(base + "/web/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        self.session.post(base + "/web/login", data={
            "login": "bench_portal", "password": "bench_portal", "csrf_token": csrf})

    def timed(self, method, url, **kwargs):
        start = time.perf_counter()
        response = self.session.request(method, self.base + url, allow_redirects=False, **kwargs)
        elapsed = time.perf_counter() - start
        assert response.status_code in (200, 303, 302), (url, response.status_code)
        return elapsed, response

    def run_once(self, order_id, reason_id, timings):
        elapsed, _r = self.timed("GET", "/my/orders/%s" % order_id)
        timings["native GET /my/orders/<id>"].append(elapsed)
        elapsed, form = self.timed("GET", "/my/orders/%s/return" % order_id)
        timings["return form GET"].append(elapsed)
        assert "o_wsoh_return_form" in form.text
        data = {
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1),
            "form_token": re.search(r'name="form_token" value="([^"]+)"', form.text).group(1),
            "reason_id": str(reason_id),
        }
        line_id = re.search(r'name="qty_(\d+)"', form.text).group(1)
        data["qty_%s" % line_id] = "1"
        elapsed, posted = self.timed("POST", "/my/orders/%s/return" % order_id, data=data)
        assert posted.status_code in (302, 303), "the return was not accepted"
        timings["return form POST"].append(elapsed)


def measure(base, orders, reason, clients, runs):
    keys = ["native GET /my/orders/<id>", "return form GET", "return form POST"]
    timings = {key: [] for key in keys}
    lock = threading.Lock()

    def worker(index):
        client = Client(base)
        local = {key: [] for key in keys}
        for run in range(runs):
            order_id = orders[(index * runs + run) % len(orders)]
            client.run_once(order_id, reason, local)
        with lock:
            for key in keys:
                timings[key].extend(local[key])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {key: statistics.median(values) * 1000 for key, values in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args()
    addons_dir = tempfile.mkdtemp(prefix="wsoh_bench_addons_")
    os.symlink(ADDON, os.path.join(addons_dir, MODULE))
    port = free_port()
    conf = flectra_config(addons_dir, port)
    orders, reason = build(conf, args.rebuild)
    server = subprocess.Popen(flectra_cmd(conf, "--db-filter=^%s$" % DB),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%s" % port
    try:
        for _attempt in range(120):
            try:
                requests.get(base + "/web/login", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(1)
        # Warm-up: compile templates and assets once, outside the figures.
        measure(base, orders, reason, 1, 2)
        print("Flectra %s, %d orders x %d lines, port %d" % (DB, len(orders), LINES_PER_ORDER, port))
        for label, clients, runs in (
            ("sequential", 1, SEQUENTIAL_RUNS),
            ("%d concurrent clients" % CONCURRENT_CLIENTS, CONCURRENT_CLIENTS, CONCURRENT_RUNS),
        ):
            medians = measure(base, orders, reason, clients, runs)
            native = medians["native GET /my/orders/<id>"]
            print("\n%s (medians, %d requests each)" % (label, clients * runs))
            for key, value in medians.items():
                print("  %-30s %8.1f ms   ratio %.2fx" % (key, value, value / native))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
