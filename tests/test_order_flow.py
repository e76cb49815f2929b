"""The web order's statuses, driven through the shop as a customer drives them."""

from flectra.tests import tagged
from flectra.tests.common import new_test_user

from .common import OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestWebOrderStatuses(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self.website = self.env["website"].browse(1)
        warehouse = self.env["stock.warehouse"].search(
            [("company_id", "=", self.website.company_id.id)], limit=1
        )
        self.product = self.env["product.product"].create(
            {
                "name": "Flow Lamp",
                "type": "product",
                "list_price": 40.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
            }
        )
        self.env["stock.quant"]._update_available_quantity(self.product, warehouse.lot_stock_id, 10)
        self.transfer = self.env.ref("payment.payment_acquirer_transfer")
        self.transfer.write({"state": "enabled", "website_id": False})
        self.customer = self._new_portal_customer("flow_customer")
        self.salesman = new_test_user(
            self.env, login="flow_salesman", groups="sales_team.group_sale_salesman_all_leads"
        )
        self.authenticate("flow_customer", "flow_customer")

    def _reserved_qty(self, order):
        return sum(order.picking_ids.move_lines.mapped("reserved_availability"))

    def test_adding_to_cart_creates_a_quotation_of_the_website(self):
        self._add_to_cart(self.product, 2)
        order = self._last_cart(self.customer.partner_id)
        self.assertEqual(order.state, "draft")
        self.assertEqual(order.website_id, self.website)
        self.assertEqual(order.ecommerce_status, "quotation")
        self.assertEqual(order.order_line.product_uom_qty, 2)

    def test_wire_transfer_checkout_leaves_quotation_sent_without_delivery(self):
        self._add_to_cart(self.product, 2)
        order = self._last_cart(self.customer.partner_id)
        self._checkout_with(order, self.transfer)
        order.invalidate_cache()
        self.assertEqual(order.transaction_ids.state, "pending")
        self.assertEqual(order.state, "sent")
        self.assertEqual(order.ecommerce_status, "sent")
        self.assertFalse(order.picking_ids, "no delivery before someone confirms")
        self.assertEqual(self.product.outgoing_qty, 0, "nothing reserved")
        self.assertTrue(order.awaiting_offline_payment)

    def test_received_payment_confirms_and_reserves(self):
        self._add_to_cart(self.product, 2)
        order = self._last_cart(self.customer.partner_id)
        self._checkout_with(order, self.transfer)
        tx = order.transaction_ids
        # The money arrives: the acquirer marks the transaction done and
        # Flectra's post-processing confirms the order.
        tx._set_transaction_done()
        tx._post_process_after_done()
        order.invalidate_cache()
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.ecommerce_status, "order")
        self.assertEqual(len(order.picking_ids), 1)
        self.assertEqual(order.picking_ids.state, "assigned")
        self.assertEqual(self._reserved_qty(order), 2)
        self.assertFalse(order.awaiting_payment)

    def test_salesperson_confirms_wire_transfer_quotation_and_stock_is_reserved(self):
        self._add_to_cart(self.product, 3)
        order = self._last_cart(self.customer.partner_id)
        self._checkout_with(order, self.transfer)
        order.with_user(self.salesman).action_confirm()
        order.invalidate_cache()
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.picking_ids.state, "assigned")
        self.assertEqual(self._reserved_qty(order), 3)
        # Still unpaid: the marker keeps it from looking paid.
        self.assertTrue(order.awaiting_payment)
        self.assertIn(order, self.env["sale.order"].search([("awaiting_payment", "=", True)]))


@tagged("post_install", "-at_install")
class TestPayInStore(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self.website = self.env["website"].browse(1)
        self.pay_in_store = self.env.ref(
            "website_sale_order_handling.payment_acquirer_pay_in_store"
        )
        self.product = self.env["product.product"].create(
            {
                "name": "Store Kettle",
                "type": "consu",
                "list_price": 25.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
            }
        )
        self.customer = self._new_portal_customer("store_customer")

    def test_pay_in_store_is_shipped_disabled_and_offline(self):
        self.assertEqual(self.pay_in_store.state, "disabled")
        self.assertEqual(self.pay_in_store.provider, "transfer")
        self.assertTrue(self.pay_in_store.is_offline_payment)
        self.assertTrue(self.pay_in_store.journal_id, "enabling it needs no extra setup")

    def test_pay_in_store_is_offered_only_on_the_website_that_enables_it(self):
        other_website = self.env["website"].create({"name": "Other Shop"})
        self.pay_in_store.write({"state": "enabled", "website_id": other_website.id})
        self.authenticate("store_customer", "store_customer")
        self._add_to_cart(self.product)
        self.url_open("/shop/confirm_order")
        self.assertNotIn("Pay in store", self.url_open("/shop/payment").text)
        self.pay_in_store.website_id = self.website
        self.assertIn("Pay in store", self.url_open("/shop/payment").text)

    def test_pay_in_store_checkout_waits_and_tells_customer_to_pay_at_pickup(self):
        self.pay_in_store.write({"state": "enabled", "website_id": self.website.id})
        self.authenticate("store_customer", "store_customer")
        self._add_to_cart(self.product, 2)
        order = self._last_cart(self.customer.partner_id)
        confirmation = self._checkout_with(order, self.pay_in_store)
        order.invalidate_cache()
        self.assertEqual(order.state, "sent")
        self.assertFalse(order.picking_ids)
        self.assertTrue(order.awaiting_offline_payment)
        self.assertIn("pay when you pick it up", confirmation.text)
