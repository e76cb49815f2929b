"""Return policy and quantity arithmetic of online returns."""

from datetime import timedelta

from flectra import fields
from flectra.tests import tagged

from .return_common import ReturnCase


@tagged("post_install", "-at_install")
class TestReturnPolicy(ReturnCase):
    def _returnable(self, order, product=None):
        info = order._get_return_lines_info()
        return {entry["line"].product_id: entry for entry in info}[product or self.product]

    def test_delivered_line_is_returnable_inside_the_window(self):
        order = self._delivered_order()
        entry = self._returnable(order)
        self.assertEqual(entry["delivered"], 5)
        self.assertEqual(entry["returnable"], 5)
        self.assertFalse(entry["refusal"])
        self.assertTrue(order._can_request_return())

    def _assert_button_follows_the_form(self, order, expected):
        """The order page's button (one query) says what the form's lines say."""
        order.invalidate_cache()
        form = any(entry["returnable"] > 0 for entry in order._get_return_lines_info())
        self.assertEqual(form, expected)
        self.assertEqual(order._can_request_return(), expected)

    def test_return_button_follows_the_return_form_rule(self):
        order = self._create_web_order(lines=[(self.product, 3), (self.service, 1)])
        order.action_confirm()
        self._assert_button_follows_the_form(order, False)  # nothing delivered
        self._deliver(order, {self.product: 1})
        self._assert_button_follows_the_form(order, True)  # one of three, backorder open
        self._deliver(order)
        first = self._submit(order, {self.product: 2})
        self._assert_button_follows_the_form(order, True)  # one left to ask for
        second = self._submit(order, {self.product: 1})
        self._assert_button_follows_the_form(order, False)  # all requested
        second.action_cancel()
        self._assert_button_follows_the_form(order, True)
        first.action_approve()
        self._receive(first)
        self._assert_button_follows_the_form(order, True)  # two came back, one left
        self.product.return_policy = "not_returnable"
        self._assert_button_follows_the_form(order, False)
        self.product.return_policy = "category"
        self.product.categ_id.return_policy = "not_returnable"
        self._assert_button_follows_the_form(order, False)
        self.product.categ_id.return_policy = "returnable"
        order.picking_ids.move_lines.write({"date": fields.Datetime.now() - timedelta(days=31)})
        self._assert_button_follows_the_form(order, False)  # out of the window
        self.website.return_window_days = 0
        self._assert_button_follows_the_form(order, True)

    def test_return_button_costs_one_query(self):
        """Moves, locations, categories, requests and the refund ledger: one query."""
        order = self._delivered_order()
        self.env["base"].flush()
        self.env.cache.invalidate()
        # What the order page reads anyway: the order, its website, its lines, their units.
        order.read(["state", "website_id", "order_line"])
        order.website_id.read(["allow_online_returns", "return_window_days"])
        order.order_line.read(["display_type", "product_uom"])
        order.order_line.product_uom.read()
        with self.assertQueryCount(1):
            self.assertTrue(order._can_request_return())

    def test_website_without_online_returns_refuses_them(self):
        order = self._delivered_order()
        self.website.allow_online_returns = False
        self.assertFalse(order._can_request_return())
        self.assertTrue(order._get_return_refusal_reason())

    def test_undelivered_order_offers_no_return(self):
        order = self._create_web_order(lines=[(self.product, 2)])
        order.action_confirm()
        self.assertFalse(order._get_return_lines_info())
        self.assertFalse(order._can_request_return())

    def test_window_counts_from_the_delivery_done_date(self):
        order = self._delivered_order()
        moves = order.picking_ids.move_lines
        moves.write({"date": fields.Datetime.now() - timedelta(days=29)})
        self.assertEqual(self._returnable(order)["returnable"], 5)
        moves.write({"date": fields.Datetime.now() - timedelta(days=31)})
        entry = self._returnable(order)
        self.assertEqual(entry["returnable"], 0)
        self.assertIn("return period", entry["refusal"])
        self.assertFalse(order._can_request_return())

    def test_zero_day_window_means_no_limit(self):
        order = self._delivered_order()
        order.picking_ids.move_lines.write({"date": fields.Datetime.now() - timedelta(days=3000)})
        self.website.return_window_days = 0
        self.assertEqual(self._returnable(order)["returnable"], 5)

    def test_product_policy_overrides_its_category(self):
        category = self.env["product.category"].create(
            {"name": "Final Sale", "return_policy": "not_returnable"}
        )
        template = self.product.product_tmpl_id
        template.categ_id = category
        self.assertTrue(template._get_return_refusal_reason())
        template.return_policy = "returnable"
        self.assertFalse(template._get_return_refusal_reason())
        category.return_policy = "returnable"
        template.return_policy = "not_returnable"
        self.assertTrue(template._get_return_refusal_reason())

    def test_services_are_never_returnable(self):
        self.service.return_policy = "returnable"
        self.assertIn("Services", self.service.product_tmpl_id._get_return_refusal_reason())

    def test_not_returnable_product_is_listed_disabled_with_its_reason(self):
        self.product.return_policy = "not_returnable"
        order = self._delivered_order()
        entry = self._returnable(order)
        self.assertEqual(entry["delivered"], 5)
        self.assertEqual(entry["returnable"], 0)
        self.assertEqual(entry["refusal"], "This product cannot be returned.")

    def test_reasons_are_global_or_of_the_website(self):
        other_website = self.env["website"].create({"name": "Other Shop"})
        own = self.env["sale.return.reason"].create(
            {"name": "Too big", "website_id": self.website.id}
        )
        other = self.env["sale.return.reason"].create(
            {"name": "Too small", "website_id": other_website.id}
        )
        reasons = self.env["sale.return.reason"]._get_for_website(self.website)
        self.assertIn(own, reasons)
        self.assertIn(self.reason, reasons)
        self.assertNotIn(other, reasons)

    def test_default_reasons_are_shipped(self):
        names = self.env["sale.return.reason"]._get_for_website(self.website).mapped("name")
        for name in (
            "Damaged or defective",
            "Wrong item received",
            "Not as described",
            "No longer needed",
            "Other",
        ):
            self.assertIn(name, names)

    def test_settings_edit_the_website_policy(self):
        settings = self.env["res.config.settings"].create(
            {"website_id": self.website.id, "allow_online_returns": False, "return_window_days": 14}
        )
        settings.execute()
        self.assertFalse(self.website.allow_online_returns)
        self.assertEqual(self.website.return_window_days, 14)


@tagged("post_install", "-at_install")
class TestReturnQuantities(ReturnCase):
    def _returnable_qty(self, order):
        return order.order_line.filtered(
            lambda ln: ln.product_id == self.product
        )._get_returnable_qty()

    def test_partial_delivery_limits_the_returnable_quantity(self):
        order = self._create_web_order(lines=[(self.product, 5)])
        order.action_confirm()
        self._deliver(order, {self.product: 2})
        self.assertEqual(self._returnable_qty(order), 2)
        self._deliver(order)  # the backorder: 3 more
        self.assertEqual(self._returnable_qty(order), 5)

    def test_open_request_holds_its_quantity(self):
        order = self._delivered_order()
        self._submit(order, {self.product: 2})
        self.assertEqual(self._returnable_qty(order), 3)

    def test_rejected_request_gives_its_quantity_back(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 2})
        request.action_reject("Used product")
        self.assertEqual(self._returnable_qty(order), 5)

    def test_approved_and_received_returns_count_once(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 2})
        request.action_approve()
        self.assertEqual(self._returnable_qty(order), 3)
        self._receive(request)
        self.assertEqual(self._returnable_qty(order), 3)
        self._submit(order, {self.product: 1}, token="a" * 32)
        self.assertEqual(self._returnable_qty(order), 2)

    def test_return_made_in_the_backend_counts_as_returned(self):
        order = self._delivered_order()
        picking = order.picking_ids
        wizard = (
            self.env["stock.return.picking"]
            .with_context(active_id=picking.id, active_model="stock.picking")
            .create({"picking_id": picking.id})
        )
        wizard._onchange_picking_id()
        wizard.product_return_moves.quantity = 4
        wizard._create_returns()
        self.assertEqual(self._returnable_qty(order), 1)

    def test_deliveries_out_of_the_window_limit_the_returnable_quantity(self):
        order = self._create_web_order(lines=[(self.product, 5)])
        order.action_confirm()
        old = self._deliver(order, {self.product: 3})
        old.move_lines.write({"date": fields.Datetime.now() - timedelta(days=40)})
        self._deliver(order)  # 2 more, today
        since = order._get_return_window_start()
        line = order.order_line
        self.assertEqual(line._get_returnable_qty(since=since), 2)
        self.assertEqual(line._get_returnable_qty(), 5)

    def test_lines_info_query_count_does_not_grow_with_the_lines(self):
        """The order page and the return form read the quantities of all lines in
        a fixed number of queries, not a few per line (issue 13)."""
        products = self.env["product.product"].create(
            [{"name": "Return Lamp %s" % i, "type": "product", "list_price": 10} for i in range(8)]
        )
        for product in products:
            self.env["stock.quant"]._update_available_quantity(
                product, self.warehouse.lot_stock_id, 10.0
            )
        counts = []
        for lines in (products[:2], products):
            order = self._delivered_order(lines=[(product, 2) for product in lines])
            # An open request on every line: the requested quantities are read too.
            self._submit(order, {product: 1 for product in lines})
            order.invalidate_cache()
            self.env["sale.order.line"].invalidate_cache()
            before = self.cr.sql_log_count
            info = order._get_return_lines_info()
            counts.append(self.cr.sql_log_count - before)
            self.assertEqual([entry["returnable"] for entry in info], [1.0] * len(lines))
        self.assertEqual(counts[0], counts[1], "queries for 2 lines, then for 8 lines")
