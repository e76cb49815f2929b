from datetime import datetime, timedelta

from flectra import fields
from flectra.tests import tagged

from .cart_recovery_common import CartRecoveryCase

MEASURES = [
    "email_count",
    "emailed_cart_count",
    "click_count",
    "recovered_count",
    "recovered_amount",
    "recovery_rate",
]


@tagged("post_install", "-at_install")
class TestCartRecoveryReport(CartRecoveryCase):
    """Two websites, two periods:

    * website 1, period 1: carts A, B, C, D e-mailed, A twice (the follow-up);
      A's link clicked twice (after its 2nd e-mail), B's once; A is paid (50);
    * website 1, period 2: cart E e-mailed, its customer comes back and buys
      a new cart of 100 in a currency worth half the company's (50);
    * website 2, period 2: carts F and G e-mailed, F clicked once.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Report = cls.env["website.cart.recovery.report"]
        cls.website2 = cls.env["website"].create({"name": "Second Recovery Shop"})
        cls.website2.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        cls.website2.abandoned_cart_email_start = cls.now - timedelta(days=10)
        cls.env["website.cart.reminder"].create({"website_id": cls.website.id, "delay_hours": 1.0})
        company_currency = cls.company.currency_id
        cls.foreign = (
            cls.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "in", ("EUR", "USD")), ("id", "!=", company_currency.id)], limit=1)
        )
        cls.foreign.active = True
        today = fields.Date.today()
        for currency, rate in ((company_currency, 1.0), (cls.foreign, 2.0)):
            existing = cls.env["res.currency.rate"].search(
                [
                    ("currency_id", "=", currency.id),
                    ("name", "=", today),
                    ("company_id", "in", (cls.company.id, False)),
                ]
            )
            existing.unlink()
            cls.env["res.currency.rate"].create(
                {
                    "currency_id": currency.id,
                    "name": today,
                    "rate": rate,
                    "company_id": cls.company.id,
                }
            )
        cls.foreign_pricelist = cls.env["product.pricelist"].create(
            {"name": "Foreign Prices", "currency_id": cls.foreign.id}
        )

    def _build(self, period1, period2):
        carts = {}
        for name, website in (
            ("A", self.website),
            ("B", self.website),
            ("C", self.website),
            ("D", self.website),
            ("E", self.website),
            ("F", self.website2),
            ("G", self.website2),
        ):
            carts[name] = self._abandoned_cart(
                partner=self._new_customer("Report Customer %s" % name), website_id=website.id
            )
        self._run_cron()
        carts["A"].cart_reminder_last_sent = fields.Datetime.now() - timedelta(hours=2)
        self._run_cron()
        self.assertEqual(
            [carts[name].cart_reminder_count for name in "ABCDEFG"], [2, 1, 1, 1, 1, 1, 1]
        )
        Events = self.env["website.cart.recovery.event"]
        for name in "AABF":
            Events._log_resume_click(carts[name].access_token)
            # A comes back a day later: a cart counts one click per hour.
            carts[name].cart_resume_click_last -= timedelta(days=1)
        carts["A"].action_confirm()
        carts["new E"] = self.env["sale.order"].create(
            {
                "partner_id": carts["E"].partner_id.id,
                "website_id": self.website.id,
                "pricelist_id": self.foreign_pricelist.id,
                "order_line": [
                    (
                        0,
                        0,
                        {"product_id": self.service.id, "product_uom_qty": 1, "price_unit": 100.0},
                    )
                ],
            }
        )
        carts["new E"].action_confirm()
        self.assertEqual(carts["new E"].cart_recovered_cart_id, carts["E"])
        self.assertEqual(carts["new E"].amount_total, 100.0)
        self.env["sale.order"].flush()
        for names, date in (("ABCD", period1), ("EFG", period2)):
            self.env.cr.execute(
                "UPDATE website_cart_recovery_event SET date = %s WHERE cart_id IN %s",
                (date, tuple(carts[name].id for name in names)),
            )
        self.env["website.cart.recovery.event"].invalidate_cache()
        return carts

    def _figures(self, website, date_from, date_to):
        figures = self.Report._get_recovery_figures(website, date_from, date_to)
        return [figures[name] for name in MEASURES]

    def test_figures_per_website_and_period(self):
        p1, p2 = datetime(2026, 1, 15, 10), datetime(2026, 3, 10, 10)
        self._build(p1, p2)
        w1, w2 = self.website, self.website2
        jan, feb, apr = datetime(2026, 1, 1), datetime(2026, 2, 1), datetime(2026, 4, 1)
        # e-mails, carts e-mailed, clicks, recovered, revenue, rate (%)
        self.assertEqual(self._figures(w1, jan, feb), [5, 4, 3, 1, 50.0, 25.0])
        self.assertEqual(self._figures(w1, feb, apr), [1, 1, 0, 1, 50.0, 100.0])
        self.assertEqual(self._figures(w2, jan, feb), [0, 0, 0, 0, 0.0, 0.0])
        self.assertEqual(self._figures(w2, feb, apr), [2, 2, 1, 0, 0.0, 0.0])
        # Both periods: the rate is the ratio of the sums (2 of 5 carts), not
        # the sum (125) nor the average (62.5) of the periods' rates.
        self.assertEqual(self._figures(w1, jan, apr), [6, 5, 3, 2, 100.0, 40.0])

    def test_pivot_and_graph_groups(self):
        self._build(datetime(2026, 1, 15, 10), datetime(2026, 3, 10, 10))
        domain = [("website_id", "=", self.website.id)]
        # The pivot asks each measure with its aggregate, the graph without.
        pivot_fields = [
            "emailed_cart_count:count_distinct",
            "click_count:sum",
            "recovered_count:sum",
            "recovered_amount:sum",
            "recovery_rate:sum",
        ]
        by_month = self.Report.read_group(domain, pivot_fields, ["date:month"], lazy=False)
        self.assertEqual(
            [
                (g["date:month"], g["emailed_cart_count"], g["recovered_count"], g["recovery_rate"])
                for g in by_month
            ],
            [("January 2026", 4, 1, 25.0), ("March 2026", 1, 1, 100.0)],
        )
        by_step = self.Report.read_group(domain, pivot_fields, ["step"], lazy=False)
        self.assertEqual(
            [
                (
                    g["step"],
                    g["emailed_cart_count"],
                    g["click_count"],
                    g["recovered_count"],
                    g["recovered_amount"],
                    g["recovery_rate"],
                )
                for g in by_step
            ],
            [(1, 5, 1, 1, 50.0, 20.0), (2, 1, 2, 1, 50.0, 100.0)],
        )
        graph = self.Report.with_context(fill_temporal=True).read_group(
            [], ["recovery_rate"], ["website_id"], lazy=False
        )
        rates = {g["website_id"][0]: g["recovery_rate"] for g in graph}
        self.assertEqual(rates, {self.website.id: 40.0, self.website2.id: 0.0})

    def test_cancelled_recovered_order_leaves_the_report(self):
        carts = self._build(datetime(2026, 1, 15, 10), datetime(2026, 3, 10, 10))
        carts["new E"].action_cancel()
        w1 = self.website
        self.assertEqual(
            self._figures(w1, datetime(2026, 2, 1), datetime(2026, 4, 1)), [1, 1, 0, 0, 0.0, 0.0]
        )

    def test_settings_line_shows_the_last_30_days(self):
        now = fields.Datetime.now()
        self._build(now - timedelta(days=40), now - timedelta(days=3))
        settings = self.env["res.config.settings"].create({"website_id": self.website.id})
        self.assertEqual(
            [
                settings.cart_recovery_emailed,
                settings.cart_recovery_clicks,
                settings.cart_recovery_recovered,
                settings.cart_recovery_revenue,
                settings.cart_recovery_rate,
            ],
            [1, 0, 1, 50.0, 100.0],
        )
        self.assertEqual(settings.cart_recovery_currency_id, self.company.currency_id)
        settings2 = self.env["res.config.settings"].create({"website_id": self.website2.id})
        self.assertEqual(
            [
                settings2.cart_recovery_emailed,
                settings2.cart_recovery_clicks,
                settings2.cart_recovery_recovered,
                settings2.cart_recovery_revenue,
                settings2.cart_recovery_rate,
            ],
            [2, 1, 0, 0.0, 0.0],
        )
        action = settings.action_open_cart_recovery_report()
        self.assertEqual(action["res_model"], "website.cart.recovery.report")
        self.assertEqual(action["context"]["search_default_website_id"], self.website.id)

    def test_report_menu_and_views(self):
        menu = self.env.ref("website_sale_order_handling.website_cart_recovery_report_menu")
        self.assertEqual(menu.parent_id, self.env.ref("website_sale.menu_reporting"))
        action = self.env.ref("website_sale_order_handling.website_cart_recovery_report_action")
        self.assertEqual(action.view_mode, "pivot,graph")
        for view_type in ("pivot", "graph", "search"):
            self.Report.fields_view_get(view_type=view_type)
        arch = self.env["res.config.settings"].fields_view_get(view_type="form")["arch"]
        for name in (
            "cart_recovery_window_days",
            "cart_recovery_emailed",
            "cart_recovery_clicks",
            "cart_recovery_recovered",
            "cart_recovery_revenue",
            "cart_recovery_rate",
            "action_open_cart_recovery_report",
        ):
            self.assertIn('name="%s"' % name, arch)
