"""Returns Analysis: returned quantities by product and reason."""

from lxml import etree

from flectra.tests import new_test_user, tagged
from flectra.tools.safe_eval import safe_eval

from .return_common import ReturnCase


@tagged("post_install", "-at_install")
class TestReturnReport(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Report = cls.env["sale.return.report"]
        cls.wrong_item = cls.env.ref("website_sale_order_handling.return_reason_wrong_item")
        cls.chair = cls.env["product.product"].create(
            {"name": "Report Chair", "type": "consu", "taxes_id": [(6, 0, [])]}
        )
        # Sold by the dozen, counted by the unit: the report is in the product's unit.
        cls.screws = cls.env["product.product"].create(
            {"name": "Report Screws", "type": "consu", "taxes_id": [(6, 0, [])]}
        )

    def setUp(self):
        super().setUp()
        order = self._create_web_order(lines=[(self.product, 5), (self.chair, 2), (self.screws, 2)])
        order.order_line.filtered(
            lambda ln: ln.product_id == self.screws
        ).product_uom = self.env.ref("uom.product_uom_dozen")
        order.action_confirm()
        self._deliver(order)
        self.order = order
        # Received: 2 lamps damaged, 1 chair wrong, all back.
        self.received = self._submit(
            order,
            {
                self.product: {"quantity": 2, "reason": self.reason},
                self.chair: {"quantity": 1, "reason": self.wrong_item},
            },
        )
        self.received.action_approve()
        self._receive(self.received)
        # Requested: 1 lamp and 1 dozen screws, damaged, nothing back yet.
        self.requested = self._submit(order, {self.product: 1, self.screws: 1})
        # Rejected: 1 lamp, wrong item; cancelled: 1 chair, damaged.
        self.rejected = self._submit(
            order, {self.product: {"quantity": 1, "reason": self.wrong_item}}
        )
        self.rejected.action_reject("Not ours")
        self.cancelled = self._submit(order, {self.chair: 1})
        self.cancelled.action_cancel()
        # The report is an SQL view: it reads what is in the database.
        self.env["base"].flush()

    def _figures(self, domain=None):
        """{(product, reason): (requested, received)} of this test's order."""
        groups = self.Report.read_group(
            [("order_id", "=", self.order.id)] + (domain or []),
            ["product_qty", "qty_received"],
            ["product_id", "reason_id"],
            lazy=False,
        )
        return {
            (
                self.env["product.product"].browse(g["product_id"][0]).name,
                self.env["sale.return.reason"].browse(g["reason_id"][0]).name,
            ): (g["product_qty"], g["qty_received"])
            for g in groups
        }

    def _default_filter_domain(self):
        """The domain of the filter the menu's action opens with."""
        action = self.env.ref("website_sale_order_handling.sale_return_report_action")
        context = safe_eval(action.context)
        names = [
            key[len("search_default_") :] for key in context if key.startswith("search_default_")
        ]
        arch = etree.fromstring(
            self.Report.fields_view_get(action.search_view_id.id, "search")["arch"]
        )
        domain = []
        for name in names:
            domain += safe_eval(arch.xpath("//filter[@name='%s']" % name)[0].get("domain"))
        return domain

    def test_quantities_by_product_and_reason_leave_out_rejected_and_cancelled(self):
        damaged, wrong = self.reason.name, self.wrong_item.name
        self.assertEqual(
            self._figures(self._default_filter_domain()),
            {
                ("Test Storable Lamp", damaged): (3.0, 2.0),
                ("Report Chair", wrong): (1.0, 1.0),
                ("Report Screws", damaged): (12.0, 0.0),
            },
        )

    def test_rejected_and_cancelled_requests_are_rows_of_their_own_state(self):
        figures = self._figures()
        self.assertEqual(figures[("Test Storable Lamp", self.wrong_item.name)], (1.0, 0.0))
        self.assertEqual(figures[("Report Chair", self.reason.name)], (1.0, 0.0))
        states = {
            g["state"]: g["product_qty"]
            for g in self.Report.read_group(
                [("order_id", "=", self.order.id)], ["product_qty"], ["state"]
            )
        }
        self.assertEqual(
            states, {"received": 3.0, "requested": 13.0, "rejected": 1.0, "cancelled": 1.0}
        )

    def test_refunded_quantity_is_in_the_products_unit(self):
        screws_line = self.requested.line_ids.filtered(lambda ln: ln.product_id == self.screws)
        screws_line.sudo().quantity_refunded = 0.5
        self.env["base"].flush()
        row = self.Report.search(
            [("request_id", "=", self.requested.id), ("product_id", "=", self.screws.id)]
        )
        self.assertEqual(row.qty_refunded, 6.0)
        self.assertEqual(row.reason_id, self.reason)
        self.assertEqual(row.website_id, self.website)

    def test_salesman_sees_the_rows_of_his_own_orders_only(self):
        seller = new_test_user(self.env, "report_seller", groups="sales_team.group_sale_salesman")
        other = new_test_user(
            self.env, "report_other_seller", groups="sales_team.group_sale_salesman"
        )
        self.order.user_id = seller
        self.env["base"].flush()
        rows = self.Report.with_user(seller).search([("order_id", "=", self.order.id)])
        self.assertEqual(len(rows), 6)
        self.assertFalse(self.Report.with_user(other).search([("order_id", "=", self.order.id)]))
        portal = new_test_user(self.env, "report_portal", groups="base.group_portal")
        self.assertFalse(
            self.Report.with_user(portal).check_access_rights("read", raise_exception=False)
        )
