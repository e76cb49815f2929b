"""The Website > Orders queues show the right orders; To Confirm confirms in bulk."""

from datetime import timedelta

from lxml import etree

from flectra import fields
from flectra.tests import tagged
from flectra.tests.common import new_test_user
from flectra.tools import file_open
from flectra.tools.safe_eval import safe_eval

from .common import OrderHandlingCase


@tagged("post_install", "-at_install")
class TestOrderQueues(OrderHandlingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.transfer = cls.env.ref("payment.payment_acquirer_transfer")
        cls.pay_in_store = cls.env.ref("website_sale_order_handling.payment_acquirer_pay_in_store")
        cls.test_acquirer = cls.env.ref("payment_test.payment_acquirer_test")
        (cls.transfer | cls.pay_in_store | cls.test_acquirer).write({"state": "test"})
        cls.salesman = new_test_user(
            cls.env, login="queue_salesman", groups="sales_team.group_sale_salesman_all_leads"
        )
        now = fields.Datetime.now()
        cls.wire_old = cls._checked_out(cls.transfer, now - timedelta(days=3))
        cls.wire_new = cls._checked_out(cls.transfer, now - timedelta(hours=2))
        cls.in_store = cls._checked_out(cls.pay_in_store, now - timedelta(days=1))
        cls.card_pending = cls._checked_out(cls.test_acquirer, now - timedelta(days=2))
        cls.cart = cls._create_web_order(date_order=now - timedelta(days=2))
        # Abandoned is measured from the last change of the cart.
        cls.cart.cart_last_activity = now - timedelta(days=2)
        cls.backend_quote = cls.env["sale.order"].create(
            {"partner_id": cls.customer.id, "order_line": [(0, 0, {"product_id": cls.product.id})]}
        )
        cls.backend_quote._create_payment_transaction(
            {"acquirer_id": cls.transfer.id}
        )._set_transaction_pending()

    @classmethod
    def _checked_out(cls, acquirer, date_order):
        """A web order whose customer checked out with `acquirer`, payment pending."""
        order = cls._create_web_order(date_order=date_order)
        order._create_payment_transaction({"acquirer_id": acquirer.id})._set_transaction_pending()
        return order

    def _action_records(self, xmlid):
        """The orders a user sees when opening a menu's action, default filters included."""
        action = self.env.ref(xmlid)
        context = safe_eval(action.context or "{}")
        domain = safe_eval(action.domain or "[]")
        search_view = self.env["sale.order"].fields_view_get(action.search_view_id.id, "search")
        arch = etree.fromstring(search_view["arch"])
        for key in context:
            if key.startswith("search_default_") and context[key]:
                node = arch.find(".//filter[@name='%s']" % key[len("search_default_") :])
                domain += safe_eval(node.get("domain", "[]"), {"context_today": fields.Date.today})
        return self.env["sale.order"].search(domain)

    def test_to_confirm_lists_offline_payments_oldest_first(self):
        records = self._action_records("website_sale_order_handling.sale_order_action_to_confirm")
        ours = records.filtered(lambda o: o in (self.wire_old | self.wire_new | self.in_store))
        self.assertEqual(ours, self.wire_old | self.in_store | self.wire_new)
        self.assertNotIn(self.card_pending, records, "a pending card payment is not offline")
        self.assertNotIn(self.cart, records)
        self.assertNotIn(self.backend_quote, records, "not a web order")
        view = self.env.ref("website_sale_order_handling.sale_order_view_tree_to_confirm")
        self.assertEqual(
            etree.fromstring(view.read_combined()["arch"]).get("default_order"), "date_order asc"
        )
        ordered = self.env["sale.order"].search([("id", "in", ours.ids)], order="date_order asc")
        self.assertEqual(list(ordered), [self.wire_old, self.in_store, self.wire_new])

    def test_confirming_several_orders_reserves_each(self):
        orders = (self.wire_old | self.in_store).with_user(self.salesman)
        result = orders.action_confirm_web_orders()
        self.assertEqual(set(orders.mapped("state")), {"sale"})
        for order in orders:
            self.assertEqual(order.picking_ids.state, "assigned", order.name)
        self.assertEqual(result["params"]["type"], "success")
        self.assertIn(self.wire_old.name, result["params"]["message"])
        to_confirm = self._action_records(
            "website_sale_order_handling.sale_order_action_to_confirm"
        )
        self.assertNotIn(self.wire_old, to_confirm)
        self.assertIn(self.wire_new, to_confirm)

    def test_bulk_confirm_skips_confirmed_and_cancelled_orders_and_says_so(self):
        self.wire_old.action_confirm()
        self.in_store.action_cancel()
        result = (
            (self.wire_old | self.in_store | self.wire_new)
            .with_user(self.salesman)
            .action_confirm_web_orders()
        )
        self.assertEqual(self.wire_new.state, "sale")
        self.assertEqual(self.in_store.state, "cancel", "a cancelled order is not revived")
        message = result["params"]["message"]
        self.assertIn("Skipped", message)
        self.assertIn(self.wire_old.name, message)
        self.assertIn(self.in_store.name, message)
        self.assertEqual(result["params"]["type"], "warning")

    def test_awaiting_flags_are_searched_as_they_read(self):
        """Not stored: computed when read, searched through the pending offline
        payments. Each search, either way, finds what reading says."""
        self.wire_old.action_confirm()
        orders = (
            self.wire_old
            | self.wire_new
            | self.in_store
            | self.card_pending
            | self.cart
            | self.backend_quote
        )
        self.assertEqual(orders.filtered("awaiting_payment"), self.wire_old)
        self.assertEqual(
            orders.filtered("awaiting_offline_payment"),
            self.wire_old | self.wire_new | self.in_store | self.backend_quote,
        )
        Orders = self.env["sale.order"].with_user(self.salesman)
        for field in ("awaiting_offline_payment", "awaiting_payment"):
            flagged = orders.filtered(field)
            mine = [("id", "in", orders.ids)]
            self.assertEqual(Orders.search(mine + [(field, "=", True)]), flagged, field)
            self.assertEqual(Orders.search(mine + [(field, "!=", False)]), flagged, field)
            self.assertEqual(Orders.search(mine + [(field, "=", False)]), orders - flagged, field)
            self.assertEqual(Orders.search(mine + [(field, "!=", True)]), orders - flagged, field)
        self.wire_new.transaction_ids._set_transaction_done()
        self.assertNotIn(self.wire_new, Orders.search([("awaiting_offline_payment", "=", True)]))

    def test_confirmed_but_unpaid_orders_carry_the_awaiting_payment_marker(self):
        self.wire_old.action_confirm()
        self.assertTrue(self.wire_old.awaiting_payment)
        self.assertEqual(self.wire_old.ecommerce_status, "order")
        self.assertNotIn(
            self.wire_old, self._action_records("website_sale.action_unpaid_orders_ecommerce")
        )
        self.wire_old.transaction_ids._set_transaction_done()
        self.assertFalse(self.wire_old.awaiting_payment)
        # The order form shows it as a ribbon, beside the returns' button.
        arch = self.env["sale.order"].fields_view_get(view_type="form")["arch"]
        self.assertIn('title="Awaiting payment"', arch)
        self.assertIn('name="action_view_return_requests"', arch)

    def test_ecommerce_status_follows_the_order(self):
        self.assertEqual(self.cart.ecommerce_status, "quotation")
        self.assertEqual(self.wire_new.ecommerce_status, "sent")
        self.wire_new.action_confirm()
        self.assertEqual(self.wire_new.ecommerce_status, "order")
        self.assertFalse(self.backend_quote.ecommerce_status, "only web orders have one")
        found = self.env["sale.order"].search([("ecommerce_status", "=", "sent")])
        self.assertIn(self.wire_old, found)
        self.assertNotIn(self.wire_new, found)

    def test_native_queues_still_show_the_right_orders(self):
        self.wire_new.action_confirm()
        orders = self._action_records("website_sale.action_orders_ecommerce")
        self.assertIn(self.wire_new, orders)
        self.assertNotIn(self.wire_old, orders, "a quotation is not an order yet")
        unpaid = self._action_records("website_sale.action_unpaid_orders_ecommerce")
        self.assertIn(self.wire_old, unpaid)
        self.assertNotIn(self.wire_new, unpaid)
        self.assertNotIn(self.backend_quote, unpaid)
        abandoned = self._action_records("website_sale.action_view_abandoned_tree")
        self.assertIn(self.cart, abandoned)
        self.assertNotIn(self.wire_old, abandoned)

    def test_status_column_shows_in_website_lists_only(self):
        Order = self.env["sale.order"]
        status = './/field[@name="ecommerce_status"]'
        for xmlid in (
            "website_sale.action_orders_ecommerce",
            "website_sale.action_unpaid_orders_ecommerce",
            "website_sale.action_view_unpaid_quotation_tree",
            "website_sale_order_handling.sale_order_action_to_confirm",
        ):
            views = {mode: view_id for view_id, mode in self.env.ref(xmlid).views}
            arch = etree.fromstring(Order.fields_view_get(views["tree"], "tree")["arch"])
            self.assertIsNotNone(arch.find(status), "%s shows the eCommerce status" % xmlid)
        for xmlid in ("sale.view_quotation_tree", "sale.view_order_tree"):
            arch = etree.fromstring(Order.fields_view_get(self.env.ref(xmlid).id, "tree")["arch"])
            self.assertIsNone(arch.find(status), "the Sales app's %s stays as it is" % xmlid)

    def test_website_sale_actions_keep_their_own_context(self):
        """Only a list view is added to website_sale's actions: their context,
        as website_sale's own file defines it, is left alone."""
        with file_open("website_sale/views/sale_order_views.xml", "rb") as source:
            upstream = etree.parse(source)
        for name in (
            "action_orders_ecommerce",
            "action_unpaid_orders_ecommerce",
            "action_view_unpaid_quotation_tree",
        ):
            field = upstream.find('.//record[@id="%s"]/field[@name="context"]' % name)
            expected = safe_eval(field.get("eval") or field.text)
            action = self.env.ref("website_sale.%s" % name)
            self.assertEqual(safe_eval(action.context), expected, name)
