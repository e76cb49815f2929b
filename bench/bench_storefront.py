#!/usr/bin/env python3
"""What the add-on costs the storefront: stock Flectra against Flectra + add-on.

    python3 bench/bench_storefront.py [--runs N] [--rounds N] [--rebuild]

In one run it builds two databases from the same data: ``wsoh_bench_stock``
(website_sale, website_sale_stock, payment_transfer and the generic chart
of accounts that wire transfers need, no demo, seeded with
products, portal customers, salespeople and one delivered order each), then
``wsoh_bench_addon``, a copy of it (createdb -T) on which the add-on is
installed with its features on (round robin, abandoned-cart e-mails, online
returns). Both are served on loopback with the same options (threaded server,
no cron). The customer's path is timed on each, interleaved (A B, B A, ...):

    shop page, product page, add to cart (/shop/cart/update_json) twice: the
    first add creates the cart, the later one adds another product to it; cart page,
    checkout address, confirm order, payment page, wire transfer (transaction,
    transfer feedback, validate, confirmation page), /my/orders/<id> of the
    order just placed and of a delivered 3-line order.

once with 1 client (--runs paths per database, 48 by default), then with 4
concurrent clients per database (--rounds rounds, 12 by default). Each step's
row gives both sides' median and p95, the median ratio (add-on / stock) with
a 95% percentile bootstrap interval (each side's times resampled with
replacement, BOOTSTRAP resamples, fixed seed), and the SQL query count of
every request of the step on each side (one number when all are equal,
else min-max). The machine's load average is printed before, between and
after the two runs. SQL queries
per request are counted server-side: Flectra's request log line (werkzeug,
log level info) ends with the query count of the request's thread; each timed
request carries a ``_b`` tag in its query string to find its line.
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import flectra_env as fe  # noqa: E402

STOCK_DB = os.environ.get("WSOH_BENCH_STOCK_DB", "wsoh_bench_stock")
ADDON_DB = os.environ.get("WSOH_BENCH_ADDON_DB", "wsoh_bench_addon")
CLIENTS = 4
BOOTSTRAP = 10000  # resamples of the median ratio's interval
BOOTSTRAP_SEED = 20
STEPS = [
    ("shop", "GET /shop"),
    ("product", "GET /shop/<product slug>"),
    ("add_first", "POST /shop/cart/update_json (new cart)"),
    ("add_later", "POST /shop/cart/update_json (existing cart)"),
    ("cart", "GET /shop/cart"),
    ("checkout", "GET /shop/checkout"),
    ("confirm", "GET /shop/confirm_order (303)"),
    ("payment", "GET /shop/payment"),
    ("tx", "POST /shop/payment/transaction/"),
    ("feedback", "POST /payment/transfer/feedback (302)"),
    ("validate", "GET /shop/payment/validate (302)"),
    ("confirmation", "GET /shop/confirmation"),
    ("myorder", "GET /my/orders/<id> (just placed)"),
    ("delivered", "GET /my/orders/<id> (delivered, 3 lines)"),
]

SEED = r"""
env = env(context=dict(env.context, tracking_disable=True, mail_notrack=True))
website = env["website"].browse(1)
team = website.salesteam_id or env.ref("sales_team.team_sales_department")
website.salesteam_id = team
for i in range(2):
    env["res.users"].with_context(no_reset_password=True).create({
        "name": "Bench Salesman %s" % i, "login": "bench_sales_%s" % i,
        "email": "sales%s@example.com" % i, "sale_team_id": team.id,
        "groups_id": [(6, 0, [env.ref("sales_team.group_sale_salesman").id])]})
acquirer = env.ref("payment.payment_acquirer_transfer")
acquirer.write({"state": "enabled"})
env["payment.acquirer"]._create_missing_journal_for_acquirers()
assert acquirer.journal_id, "the wire transfer acquirer has no journal"
if "is_published" in acquirer._fields:
    acquirer.is_published = True
warehouse = env["stock.warehouse"].search([], limit=1)
products = env["product.product"].create([
    {"name": "Bench Lamp %s" % i, "type": "product", "list_price": 20 + i,
     "is_published": True} for i in range(12)])
for product in products:
    env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, 1e6)
belgium = env.ref("base.be")
for c in range(__CLIENTS__):
    user = env["res.users"].with_context(no_reset_password=True).create({
        "name": "Bench Customer %s" % c, "login": "bench_portal_%s" % c,
        "password": "bench_portal_%s" % c, "email": "customer%s@example.com" % c,
        "groups_id": [(6, 0, [env.ref("base.group_portal").id])]})
    user.partner_id.write({"street": "Rue du Banc %s" % c, "city": "Bruxelles", "zip": "1000",
                           "country_id": belgium.id, "phone": "+32 2 000 00 0%s" % c})
    order = env["sale.order"].create({
        "partner_id": user.partner_id.id, "website_id": website.id,
        "order_line": [(0, 0, {"product_id": p.id, "product_uom_qty": 2}) for p in products[:3]]})
    order.action_confirm()
    for move in order.picking_ids.move_lines:
        move.quantity_done = move.product_uom_qty
    order.picking_ids._action_done()
    print("DELIVERED", c, order.id)
env.cr.commit()
for p in products:
    print("PRODUCT", p.id, p.product_tmpl_id.id)
"""

FEATURES = r"""
website = env["website"].browse(1)
website.write({"order_assignment_mode": "round_robin", "send_abandoned_cart_email": True,
               "allow_online_returns": True, "return_window_days": 30})
env.cr.commit()
print("FEATURES", website.order_assignment_mode, website.send_abandoned_cart_email,
      website.allow_online_returns)
"""


def shell(bin_path, addons, db, code):
    cmd = fe.flectra_command(bin_path, addons, db, "--no-http", "--log-level=warn")
    cmd.insert(1, "shell")
    out = subprocess.run(cmd, input=code, capture_output=True, text=True, cwd="/tmp")
    if out.returncode != 0 or "Traceback" in out.stderr:
        raise SystemExit("flectra shell failed on %s:\n%s" % (db, out.stderr[-3000:]))
    return out.stdout


def build(bin_path, addons, rebuild):
    """Both databases, from one seeded stock database; returns the seed's ids."""
    info_path = os.path.join("/tmp", "%s.json" % ADDON_DB)
    if not rebuild and fe.database_exists(ADDON_DB) and os.path.exists(info_path):
        print("Reusing %s and %s (--rebuild starts afresh)." % (STOCK_DB, ADDON_DB), flush=True)
        with open(info_path) as handle:
            return json.load(handle)
    fe.drop_database(ADDON_DB)
    fe.drop_database(STOCK_DB)
    started = time.time()
    print(
        "Building %s: website_sale, website_sale_stock, payment_transfer ..." % STOCK_DB, flush=True
    )
    subprocess.run(
        fe.flectra_command(
            bin_path,
            addons,
            STOCK_DB,
            "-i",
            "website_sale,website_sale_stock,payment_transfer,l10n_generic_coa",
            "--without-demo=all",
            "--stop-after-init",
            "--max-cron-threads=0",
            "--http-port=%d" % fe.free_port(),
            "--log-level=warn",
        ),
        check=True,
        cwd="/tmp",
    )
    out = shell(bin_path, addons, STOCK_DB, SEED.replace("__CLIENTS__", str(CLIENTS)))
    products = [tuple(map(int, m)) for m in re.findall(r"^PRODUCT (\d+) (\d+)$", out, re.M)]
    delivered = {c: int(o) for c, o in re.findall(r"^DELIVERED (\d+) (\d+)$", out, re.M)}
    print("Copying it to %s and installing %s there ..." % (ADDON_DB, fe.MODULE), flush=True)
    fe.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (ADDON_DB, STOCK_DB))
    subprocess.run(
        fe.flectra_command(
            bin_path,
            addons,
            ADDON_DB,
            "-i",
            fe.MODULE,
            "--without-demo=all",
            "--stop-after-init",
            "--max-cron-threads=0",
            "--http-port=%d" % fe.free_port(),
            "--log-level=warn",
        ),
        check=True,
        cwd="/tmp",
    )
    print(shell(bin_path, addons, ADDON_DB, FEATURES).strip().splitlines()[-1], flush=True)
    info = {"products": products, "delivered": delivered}
    with open(info_path, "w") as handle:
        json.dump(info, handle)
    print("Built both in %.0f s." % (time.time() - started), flush=True)
    return info


class Server:
    def __init__(self, bin_path, addons, db):
        self.db = db
        self.port = fe.free_port()
        self.log = os.path.join("/tmp", "%s-server.log" % db)
        cmd = fe.flectra_command(
            bin_path,
            addons,
            db,
            "--http-port=%d" % self.port,
            "--longpolling-port=%d" % fe.free_port(),
            "--workers=0",
            "--max-cron-threads=0",
            "--log-level=info",
            "--logfile=%s" % self.log,
        )
        open(self.log, "w").close()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp"
        )
        self.base = "http://127.0.0.1:%d" % self.port

    def wait(self, requests):
        for _attempt in range(180):
            try:
                requests.get(self.base + "/web/login", timeout=120)
                return
            except requests.RequestException:
                time.sleep(1)
        raise SystemExit("%s did not start: see %s" % (self.db, self.log))

    def query_counts(self):
        """{tag: query count} from the request log lines of tagged requests."""
        counts = {}
        pattern = re.compile(
            r'werkzeug: \S+ - - \[[^\]]+\] "\w+ \S*[?&]_b=([\w.-]+)\S* '
            r'HTTP/[\d.]+" \d+ \S+ (\d+) '
        )
        with open(self.log, errors="replace") as log:
            for line in log:
                match = pattern.search(line)
                if match:
                    counts[match.group(1)] = int(match.group(2))
        return counts

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Customer:
    """One browser: a logged-in portal customer walking the shop."""

    def __init__(self, requests, server, index, info):
        self.server, self.base, self.info = server, server.base, info
        self.index = index
        self.session = requests.Session()
        page = self.session.get(self.base + "/web/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        login = "bench_portal_%s" % index
        self.session.post(
            self.base + "/web/login",
            data={"login": login, "password": login, "csrf_token": csrf},
            allow_redirects=False,
        )
        self.seq = 0

    def call(self, step, method, url, record, expect=(200,), **kwargs):
        self.seq += 1
        tag = "%s.%s.%s" % (step, self.index, self.seq)
        url += ("&" if "?" in url else "?") + "_b=" + tag
        start = time.perf_counter()
        response = self.session.request(
            method, self.base + url, allow_redirects=False, timeout=300, **kwargs
        )
        elapsed = time.perf_counter() - start
        if response.status_code not in expect:
            raise AssertionError(
                "%s %s on %s answered %s" % (method, url, self.server.db, response.status_code)
            )
        if record is not None:
            record.append((step, tag, elapsed))
        return response

    def json(self, step, url, params, record):
        response = self.call(
            step, "POST", url, record, json={"jsonrpc": "2.0", "method": "call", "params": params}
        )
        body = response.json()
        if "error" in body:
            raise AssertionError("%s: %s" % (url, body["error"]))
        return body["result"]

    def path(self, number, record):
        """The whole purchase: one new order paid by wire transfer."""
        index = number % len(self.info["products"])  # the seed names them Bench Lamp <index>
        product_id, template_id = self.info["products"][index]
        self.call("shop", "GET", "/shop", record)
        self.call("product", "GET", "/shop/bench-lamp-%s-%s" % (index, template_id), record)
        self.json(
            "add_first", "/shop/cart/update_json", {"product_id": product_id, "add_qty": 1}, record
        )
        # A later add, to the cart the first one created: another product.
        other_id, _other_template = self.info["products"][(index + 1) % len(self.info["products"])]
        self.json(
            "add_later", "/shop/cart/update_json", {"product_id": other_id, "add_qty": 1}, record
        )
        cart = self.call("cart", "GET", "/shop/cart", record).text
        order_id = int(re.search(r'my_cart_quantity[^>]*data-order-id="(\d+)"', cart).group(1))
        self.call("checkout", "GET", "/shop/checkout", record)
        self.call("confirm", "GET", "/shop/confirm_order", record, expect=(302, 303))
        self.call("payment", "GET", "/shop/payment", record)
        form = self.json(
            "tx", "/shop/payment/transaction/", {"acquirer_id": self.info["acquirer"]}, record
        )
        fields = dict(re.findall(r'name="([^"]+)"\s+value="([^"]*)"', form))
        self.call(
            "feedback", "POST", "/payment/transfer/feedback", record, expect=(302, 303), data=fields
        )
        self.call("validate", "GET", "/shop/payment/validate", record, expect=(302, 303))
        self.call("confirmation", "GET", "/shop/confirmation", record)
        self.call("myorder", "GET", "/my/orders/%s" % order_id, record)
        self.call(
            "delivered", "GET", "/my/orders/%s" % self.info["delivered"][str(self.index)], record
        )


def run_round(customers, number, record):
    """Every customer walks the path once, at the same time."""
    errors = []

    def walk(customer, local):
        try:
            customer.path(number + customer.index, local)
        except Exception as exc:  # noqa: BLE001  (reported below, the run stops)
            errors.append(exc)

    locals_ = [[] for _c in customers]
    threads = [threading.Thread(target=walk, args=(c, loc)) for c, loc in zip(customers, locals_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for loc in locals_:
        record.extend(loc)


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def bootstrap_ratio(stock, addon, resamples=BOOTSTRAP, seed=BOOTSTRAP_SEED):
    """95% percentile bootstrap interval of median(addon) / median(stock).

    Each side's samples are drawn again with replacement, independently; the
    interval is the 2.5th and 97.5th percentiles of the resampled ratios.
    """
    rng = random.Random(seed)
    ratios = []
    for _n in range(resamples):
        a = [addon[rng.randrange(len(addon))] for _i in addon]
        s = [stock[rng.randrange(len(stock))] for _i in stock]
        ratios.append(statistics.median(a) / statistics.median(s))
    ratios.sort()
    low = ratios[int(0.025 * (resamples - 1))]
    high = ratios[int(round(0.975 * (resamples - 1)))]
    return low, high


def exact_count(values):
    """The step's query counts: one number if all are equal, else min-max."""
    if not values:
        return "?"
    low, high = min(values), max(values)
    return "%d" % low if low == high else "%d-%d" % (low, high)


def load_average(when):
    print("load average %s: %.2f %.2f %.2f" % ((when,) + os.getloadavg()), flush=True)


def report(title, records, servers):
    counts = {name: server.query_counts() for name, server in servers.items()}
    print("\n%s" % title)
    print(
        "%-44s %17s %17s %6s %15s %13s"
        % ("", "stock med / p95", "add-on med / p95", "ratio", "95% interval", "SQL st/add-on")
    )
    for step, label in STEPS:
        row, times, queries = {}, {}, {}
        for name in ("stock", "addon"):
            times[name] = [elapsed * 1000 for s, _tag, elapsed in records[name] if s == step]
            tags = [tag for s, tag, _elapsed in records[name] if s == step]
            q = [counts[name][tag] for tag in tags if tag in counts[name]]
            if len(q) != len(tags):
                q = []  # a request without its log line: say so, never guess
            row[name] = (statistics.median(times[name]), p95(times[name]))
            queries[name] = exact_count(q)
        ratio = row["addon"][0] / row["stock"][0]
        low, high = bootstrap_ratio(times["stock"], times["addon"])
        print(
            # Three decimals: whether the interval holds 1.0 shows.
            "%-44s %7.1f / %7.1f %7.1f / %7.1f %5.2fx  [%5.3f, %5.3f] %6s / %-6s"
            % (
                label,
                row["stock"][0],
                row["stock"][1],
                row["addon"][0],
                row["addon"][1],
                ratio,
                low,
                high,
                queries["stock"],
                queries["addon"],
            )
        )
    total = {name: sum(elapsed for _s, _t, elapsed in records[name]) for name in records}
    print(
        "%-44s %17.0f %17.0f %5.2fx   (ms, whole path, %d paths each)"
        % (
            "sum of all requests",
            total["stock"] * 1000,
            total["addon"] * 1000,
            total["addon"] / total["stock"],
            len(records["stock"]) // len(STEPS),
        ),
        flush=True,
    )


def main():
    import requests

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=48, help="paths per database, 1 client")
    parser.add_argument(
        "--rounds",
        type=int,
        default=12,
        help="rounds of %d concurrent paths per database" % CLIENTS,
    )
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    bin_path = fe.flectra_bin()
    fe.ensure_postgres()
    addons = "%s,%s" % (fe.module_addons_dir(), fe.default_addons_path(bin_path))
    info = build(bin_path, addons, args.rebuild)
    info["acquirer"] = int(
        fe.psql(
            "SELECT res_id FROM ir_model_data WHERE module = 'payment' "
            "AND name = 'payment_acquirer_transfer'",
            db=STOCK_DB,
        )
    )
    servers = {
        "stock": Server(bin_path, addons, STOCK_DB),
        "addon": Server(bin_path, addons, ADDON_DB),
    }
    try:
        for server in servers.values():
            server.wait(requests)
        customers = {
            name: [Customer(requests, server, i, info) for i in range(CLIENTS)]
            for name, server in servers.items()
        }
        # Warm-up, outside the figures: assets, templates, caches of both servers.
        for name in ("stock", "addon"):
            for _n in range(2):
                run_round(customers[name][:1], 0, [])
        print(
            "\nFlectra %s vs %s + %s; threaded server (--workers=0), no cron; "
            "times in ms" % (STOCK_DB, ADDON_DB, fe.MODULE),
            flush=True,
        )
        load_average("before the 1-client run")
        records = {"stock": [], "addon": []}
        for run in range(args.runs):
            order = ("stock", "addon") if run % 2 == 0 else ("addon", "stock")
            for name in order:
                run_round(customers[name][:1], run, records[name])
        report("1 client, %d paths per database, interleaved" % args.runs, records, servers)
        load_average("after the 1-client run")
        records = {"stock": [], "addon": []}
        for run in range(args.rounds):
            order = ("stock", "addon") if run % 2 == 0 else ("addon", "stock")
            for name in order:
                run_round(customers[name], run, records[name])
        report(
            "%d concurrent clients, %d rounds per database, interleaved" % (CLIENTS, args.rounds),
            records,
            servers,
        )
        load_average("after the 4-client run")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    if os.environ.get("WSOH_BENCH_INNER"):
        main()
    else:
        bin_path = fe.flectra_bin()
        python = fe.flectra_python(bin_path)
        os.execve(
            python, [python, __file__] + sys.argv[1:], dict(fe._pg_env(), WSOH_BENCH_INNER="1")
        )
