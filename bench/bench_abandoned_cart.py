#!/usr/bin/env python3
"""Benchmark of the abandoned cart cron against the Odoo 16-18 peer design.

    tools/bench-db is not needed: run  python3 bench/bench_abandoned_cart.py
    (it builds the database wsoh_bench once with the add-on, without demo data,
    then bootstraps Flectra in-process with the Python of the flectra script).

For 5k and 20k draft carts over 2 websites (about 25% eligible), built in bulk
with SQL, it times (a) this add-on's cron and (b) one unbounded search per
website then template.send_mail + write of the sent flag per cart, in one
transaction. It prints time, SQL queries per e-mailed cart and peak Python
memory (tracemalloc), then EXPLAIN of the eligibility query on 200k carts.
"""

import os
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import flectra_env as fe  # noqa: E402

DB = os.environ.get("WSOH_BENCH_DB", "wsoh_bench")


def bootstrap():
    """Re-run this file under Flectra's Python with the database ready."""
    fe.reexec_bench_under_flectra(DB, __file__)


def build_carts(env, count):
    """``count`` draft carts over 2 websites, every 4th one eligible."""
    from datetime import timedelta

    from flectra import fields

    cr = env.cr
    now = fields.Datetime.now()
    websites = env["website"].search([], order="id")[:2]
    if len(websites) < 2:
        websites |= env["website"].create({"name": "Bench Outlet"})
    for website in websites:
        website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        website.abandoned_cart_email_start = now - timedelta(days=30)
    product = env["product.product"].search([("default_code", "=", "BENCH")], limit=1) or env[
        "product.product"
    ].create(
        {
            "name": "Bench Mug",
            "default_code": "BENCH",
            "list_price": 9.0,
            "is_published": True,
            "type": "consu",
        }
    )
    partner = env["res.partner"].create({"name": "Bench Buyer", "email": "bench@example.com"})
    seed = env["sale.order"].create(
        {
            "partner_id": partner.id,
            "website_id": websites[0].id,
            "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
        }
    )
    env["base"].flush()
    # Partners: one per cart, every 4th with an e-mail (the eligible ones).
    cr.execute(
        """
        INSERT INTO res_partner (name, email, email_normalized, active, type, is_company,
                                 display_name, lang, create_date, write_date)
        SELECT 'Bench ' || g, CASE WHEN g %% 4 = 0 THEN 'bench' || g || '@example.com' END,
               CASE WHEN g %% 4 = 0 THEN 'bench' || g || '@example.com' END,
               TRUE, 'contact', FALSE, 'Bench ' || g, 'en_US', now(), now()
          FROM generate_series(1, %s) g RETURNING id""",
        (count,),
    )
    partner_ids = [row[0] for row in cr.fetchall()]
    cr.execute(
        "UPDATE res_partner SET commercial_partner_id = id WHERE id IN %s", (tuple(partner_ids),)
    )
    cr.execute("""SELECT column_name FROM information_schema.columns
                   WHERE table_name = 'sale_order' AND column_name NOT IN
                   ('id', 'name', 'partner_id', 'partner_invoice_id', 'partner_shipping_id',
                    'website_id', 'cart_last_activity', 'access_token')""")
    columns = [row[0] for row in cr.fetchall()]
    cols = ", ".join('"%s"' % c for c in columns)
    cr.execute(
        """
        INSERT INTO sale_order (name, partner_id, partner_invoice_id, partner_shipping_id,
                                website_id, cart_last_activity, {cols})
        SELECT 'BENCH' || p.n, p.id, p.id, p.id,
               CASE WHEN p.n %% 2 = 0 THEN %s ELSE %s END,
               now() at time zone 'utc' - interval '3 hours' - (p.n || ' seconds')::interval,
               {seed_cols}
          FROM sale_order s,
               (SELECT id, row_number() OVER (ORDER BY id) AS n FROM res_partner WHERE id IN %s) p
         WHERE s.id = %s RETURNING id""".format(
            cols=cols, seed_cols=", ".join("s.%s" % c for c in ['"%s"' % c for c in columns])
        ),
        (websites[0].id, websites[1].id, tuple(partner_ids), seed.id),
    )
    order_ids = [row[0] for row in cr.fetchall()]
    cr.execute("""SELECT column_name FROM information_schema.columns
                   WHERE table_name = 'sale_order_line'
                     AND column_name NOT IN ('id', 'order_id', 'order_partner_id')""")
    lcols = ['"%s"' % row[0] for row in cr.fetchall()]
    cr.execute(
        """
        INSERT INTO sale_order_line (order_id, order_partner_id, {cols})
        SELECT o.id, o.partner_id, {lcols} FROM sale_order o, sale_order_line l
         WHERE o.id IN %s AND l.order_id = %s""".format(
            cols=", ".join(lcols), lcols=", ".join("l.%s" % c for c in lcols)
        ),
        (tuple(order_ids), seed.id),
    )
    seed.unlink()
    cr.execute("ANALYZE sale_order; ANALYZE sale_order_line; ANALYZE res_partner")
    return websites, order_ids


class QueryCounter:
    def __init__(self):
        from flectra.sql_db import Cursor

        self.cursor_class, self.count = Cursor, 0
        self.original = Cursor.execute

    def __enter__(self):
        counter = self

        def execute(cursor, *args, **kwargs):
            counter.count += 1
            return counter.original(cursor, *args, **kwargs)

        self.cursor_class.execute = execute
        return self

    def __exit__(self, *exc):
        self.cursor_class.execute = self.original


def design_a(env, websites):
    return env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(
        websites, auto_commit=True
    )


def design_b(env, websites):
    """Odoo 16-18: one unbounded search per website, then send_mail + write per cart."""
    sent = 0
    for website in websites:
        carts = env["sale.order"].search(
            [
                ("is_abandoned_cart", "=", True),
                ("cart_recovery_email_sent", "=", False),
                ("website_id", "=", website.id),
                ("partner_id.email", "!=", False),
                ("cart_last_activity", ">=", website.abandoned_cart_email_start),
            ]
        )
        # The same template as (a): the add-on's, which the website now keeps
        # apart from website_sale's manual recovery template.
        template = website.cart_reminder_mail_template_id
        for cart in carts:
            template.send_mail(cart.id)
            cart.write({"cart_recovery_email_sent": True})
            sent += 1
    return sent


def measure(registry, design, count):
    import flectra

    with flectra.api.Environment.manage(), registry.cursor() as cr:
        env = flectra.api.Environment(cr, flectra.SUPERUSER_ID, {})
        websites, order_ids = build_carts(env, count)
        cr.commit()
        website_ids = websites.ids
    with flectra.api.Environment.manage(), registry.cursor() as cr:
        env = flectra.api.Environment(cr, flectra.SUPERUSER_ID, {})
        websites = env["website"].browse(website_ids)
        tracemalloc.start()
        with QueryCounter() as counter:
            started = time.perf_counter()
            sent = design(env, websites)
            env["base"].flush()
            elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        cr.commit()
    cleanup(registry, order_ids)
    return {"sent": sent, "time": elapsed, "queries": counter.count / max(sent, 1), "peak": peak}


def cleanup(registry, order_ids):
    with registry.cursor() as cr:
        ids = tuple(order_ids)
        cr.execute("DELETE FROM mail_message WHERE model = 'sale.order' AND res_id IN %s", (ids,))
        cr.execute("SELECT partner_id FROM sale_order WHERE id IN %s", (ids,))
        partners = tuple(row[0] for row in cr.fetchall())
        cr.execute("DELETE FROM sale_order WHERE id IN %s", (ids,))
        cr.execute("DELETE FROM res_partner WHERE id IN %s", (partners,))


def explain(registry, count=200000):
    """EXPLAIN of the two queries of one cron batch on ``count`` carts: the
    window walked along a partial index, then the eligibility check of its ids."""
    import flectra
    from flectra import fields

    with flectra.api.Environment.manage(), registry.cursor() as cr:
        env = flectra.api.Environment(cr, flectra.SUPERUSER_ID, {})
        websites, _order_ids = build_carts(env, count)
        cr.execute("ANALYZE sale_order")
        website = websites[0]
        mailer = env["website.abandoned.cart.mailer"]
        step = mailer._get_steps(website)[0]
        original = cr.execute
        captured = []

        def capture(query, params=None, log_exceptions=True):
            if "FROM sale_order so" in query:
                captured.append((query, params))
            return original(query, params, log_exceptions)

        cr.execute = capture
        window = mailer._select_cart_window(
            website,
            step,
            "cart_last_activity",
            fields.Datetime.now(),
            (website.abandoned_cart_email_start, 0),
            200,
        )
        mailer._select_abandoned_carts(website, step, [row[0] for row in window])
        cr.execute = original
        plans = []
        for title, (query, params) in zip(("window", "eligibility"), captured):
            cr.execute("EXPLAIN " + query, params)
            plans.append("-- %s query\n%s" % (title, "\n".join(row[0] for row in cr.fetchall())))
        cr.rollback()
    return "\n\n".join(plans)


def main():
    import flectra
    from flectra.tools import config

    config.parse_config(
        [
            "--addons-path",
            os.environ["WSOH_BENCH_ADDONS"],
            "-d",
            DB,
            "--log-level=warn",
            "--db_host",
            os.environ["PGHOST"],
            "--db_port",
            os.environ["PGPORT"],
            "--db_user",
            os.environ["PGUSER"],
            "--db_password",
            os.environ["PGPASSWORD"],
        ]
    )
    registry = flectra.registry(DB)
    results = {}
    for count in (5000, 20000):
        for name, design in (("a", design_a), ("b", design_b)):
            results[name, count] = res = measure(registry, design, count)
            print(
                "%-28s %6d carts: %5d e-mailed  %8.2f s  %5.2f queries/cart  peak %7.1f MB"
                % (
                    "(a) this cron" if name == "a" else "(b) Odoo 16-18 peer design",
                    count,
                    res["sent"],
                    res["time"],
                    res["queries"],
                    res["peak"] / 1e6,
                ),
                flush=True,
            )
    print(
        "speed-up (b)/(a) at 5k: %.1fx, at 20k: %.1fx"
        % (
            results["b", 5000]["time"] / results["a", 5000]["time"],
            results["b", 20000]["time"] / results["a", 20000]["time"],
        )
    )
    print(
        "(a) peak memory 20k / 5k: %.2f"
        % (results["a", 20000]["peak"] / results["a", 5000]["peak"])
    )
    print("\nEXPLAIN of the eligibility query on 200k carts:")
    print(explain(registry))


if __name__ == "__main__":
    if os.environ.get("WSOH_BENCH_INNER"):
        main()
    else:
        bootstrap()
