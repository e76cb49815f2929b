"""What the add-on's features cost the storefront, in SQL queries.

Each step is a real request to the shop's routes, counted on the test
cursor, which the server's request threads share in an HttpCase: once with
the add-on's features on (round robin, abandoned-cart e-mails, online
returns), once with them off (fixed salesperson, no e-mails, no returns).
Each step is warmed up first on a path of its own (caches, compiled
templates), then counted on a second, identical path. A feature that makes
a step cost more than ``BUDGET`` extra queries fails here, in CI, and not
only in the benchmark (issue 20).
"""

import logging
from unittest.mock import patch

from flectra.tests import tagged
from flectra.tests.common import new_test_user

from .common import OrderHandlingHttpCase

_logger = logging.getLogger(__name__)

BUDGET = 2
# The steps of the customer's path, in order.
STEPS = [
    ("add_first", "POST /shop/cart/update_json (new cart)"),
    ("add_later", "POST /shop/cart/update_json (existing cart)"),
    ("confirm", "GET /shop/confirm_order"),
    ("transaction", "POST /shop/payment/transaction/"),
    ("feedback", "POST /payment/transfer/feedback"),
    ("order_page", "GET /my/orders/<id> (just placed)"),
    ("delivered_page", "GET /my/orders/<id> (delivered, 3 lines)"),
]


@tagged("post_install", "-at_install")
class TestStorefrontQueries(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        env = self.env(context=dict(self.env.context, tracking_disable=True))
        self.website = env["website"].browse(1)
        warehouse = env["stock.warehouse"].search(
            [("company_id", "=", self.website.company_id.id)], limit=1
        )
        self.products = env["product.product"].create(
            [
                {
                    "name": "Query Lamp %s" % n,
                    "type": "product",
                    "list_price": 20.0 + n,
                    "is_published": True,
                    "taxes_id": [(6, 0, [])],
                }
                for n in range(3)
            ]
        )
        for product in self.products:
            env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, 1000)
        sellers = new_test_user(
            env, login="query_seller_a", groups="sales_team.group_sale_salesman"
        ) | new_test_user(env, login="query_seller_b", groups="sales_team.group_sale_salesman")
        team = env["crm.team"].create({"name": "Query Team", "member_ids": [(6, 0, sellers.ids)]})
        # The same team on both sides; with the features off, the fixed mode's
        # salesperson (so that both sides' orders show a salesperson).
        self.website.write({"salesteam_id": team.id, "salesperson_id": sellers[0].id})
        self.transfer = env.ref("payment.payment_acquirer_transfer")
        self.transfer.write({"state": "enabled", "website_id": False})
        self.customer = self._new_portal_customer("query_customer")
        self.partner = self.customer.partner_id
        self.delivered = env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "website_id": self.website.id,
                "order_line": [
                    (0, 0, {"product_id": product.id, "product_uom_qty": 2})
                    for product in self.products
                ],
            }
        )
        self.delivered.action_confirm()
        for move in self.delivered.picking_ids.move_lines:
            move.quantity_done = move.product_uom_qty
        self.delivered.picking_ids._action_done()

    def _set_features(self, on):
        if on:
            self.website.write(
                {
                    "order_assignment_mode": "round_robin",
                    "send_abandoned_cart_email": True,
                    "allow_online_returns": True,
                    "return_window_days": 30,
                }
            )
        else:
            self.website.write(
                {
                    "order_assignment_mode": "fixed",
                    "send_abandoned_cart_email": False,
                    "allow_online_returns": False,
                }
            )

    def _count(self, request):
        """The queries of ``request()``, a call to the server, on the test cursor."""
        self.env["base"].flush()
        self.env.cr.precommit.run()
        # As assertQueryCount: no random garbage collection of the bus or sessions.
        with patch("random.random", lambda: 1):
            before = self.cr.sql_log_count
            response = request()
            count = self.cr.sql_log_count - before
        self.assertLess(response.status_code, 400, response.url)
        return count

    def _path(self):
        """The customer's path, from a new cart to the delivered order's page:
        {step: queries}."""
        # A new session and no draft cart left: the first add makes a new cart.
        self.env["sale.order"].search(
            [("partner_id", "=", self.partner.id), ("state", "=", "draft")]
        ).action_cancel()
        self.authenticate("query_customer", "query_customer")
        self.url_open("/shop")
        counts = {}

        def add(product):
            return self.opener.post(
                "http://127.0.0.1:%s/shop/cart/update_json" % self._http_port(),
                json={
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {"product_id": product.id, "add_qty": 1},
                },
                timeout=30,
            )

        counts["add_first"] = self._count(lambda: add(self.products[0]))
        counts["add_later"] = self._count(lambda: add(self.products[1]))
        order = self._last_cart(self.partner)
        self.assertEqual(len(order.order_line), 2)
        self.url_open("/shop/checkout")
        counts["confirm"] = self._count(
            lambda: self.url_open("/shop/confirm_order", allow_redirects=False)
        )
        self.url_open("/shop/payment")
        counts["transaction"] = self._count(
            lambda: self.opener.post(
                "http://127.0.0.1:%s/shop/payment/transaction/" % self._http_port(),
                json={
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {"acquirer_id": self.transfer.id},
                },
                timeout=30,
            )
        )
        self.env.cache.invalidate()
        tx = order.transaction_ids.sorted("id")[-1:]
        self.assertTrue(tx)
        counts["feedback"] = self._count(
            lambda: self.url_open(
                "/payment/transfer/feedback",
                data={
                    "reference": tx.reference,
                    "amount": tx.amount,
                    "currency": tx.currency_id.name,
                },
                allow_redirects=False,
            )
        )
        self.url_open("/shop/payment/validate")
        self.env.cache.invalidate()
        self.assertEqual(order.state, "sent", "the order is placed")
        counts["order_page"] = self._count(lambda: self.url_open("/my/orders/%s" % order.id))
        counts["delivered_page"] = self._count(
            lambda: self.url_open("/my/orders/%s" % self.delivered.id)
        )
        return counts, order

    def _measure(self, on):
        self._set_features(on)
        self._path()  # warm-up: caches, compiled templates, the first cart
        counts, order = self._path()
        return counts, order

    def test_features_cost_the_storefront_at_most_two_queries_a_step(self):
        off, _order = self._measure(on=False)
        on, order = self._measure(on=True)
        self.env.cache.invalidate()
        # Round robin: the customer's payment marked the placed order, the cron
        # gives it its salesperson.
        self.assertFalse(order.user_id)
        self.assertTrue(order.assignment_pending)
        self.env.ref(
            "website_sale_order_handling.ir_cron_assign_placed_orders"
        ).method_direct_trigger()
        self.assertTrue(order.user_id, "round robin assigned the placed order")
        report = "\n".join(
            "  %-15s %-45s off %4d  on %4d  %+d"
            % (step, label, off[step], on[step], on[step] - off[step])
            for step, label in STEPS
        )
        _logger.info("Storefront SQL queries, features off and on:\n%s", report)
        over = [step for step, _label in STEPS if on[step] - off[step] > BUDGET]
        self.assertFalse(
            over,
            "more than %d queries over the same request with the features off:\n%s"
            % (BUDGET, report),
        )
