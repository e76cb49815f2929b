"""Every refund door, pressed through the web client's routes on a committed
database served by Flectra's HTTP server (see real_server_common.py).

Refund steps commit in transactions of their own; only here do they meet a
request's transaction as they do in production.
"""
from flectra.tests import tagged

from .real_server_common import RealServerCase


@tagged("post_install", "-at_install")
class TestRefundDoorsOnARealServer(RealServerCase):
    def setUp(self):
        super().setUp()
        self.order_id, self.payment_id = self.commit(self._delivered_paid_order)
        self.login("admin", "admin")

    def _delivered_paid_order(self, env):
        """A web order of two lamps, delivered and paid with the Test acquirer."""
        acquirer = env.ref("payment_test.payment_acquirer_test")
        if not acquirer.journal_id:
            acquirer.journal_id = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", acquirer.company_id.id)], limit=1)
        env["ir.config_parameter"].set_param("sale.automatic_invoice", "")
        website = env["website"].browse(1)
        product = self.track(env["product.product"].create({
            "name": "Real Server Lamp %s" % self.marker, "type": "product", "list_price": 40.0,
            "is_published": True, "invoice_policy": "order", "taxes_id": [(6, 0, [])],
        }))
        warehouse = env["stock.warehouse"].search(
            [("company_id", "=", website.company_id.id)], limit=1)
        env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, 10.0)
        customer = self.track(env["res.partner"].create({
            "name": "Real Server Customer %s" % self.marker,
            "email": "real.server.%s@example.com" % self.marker,
        }))
        order = env["sale.order"].create({
            "partner_id": customer.id, "website_id": website.id,
            "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 2})],
        })
        payment = order._create_payment_transaction({"acquirer_id": acquirer.id})
        payment._set_transaction_done()
        payment._post_process_after_done()
        self.assertEqual(order.state, "sale")
        picking = order.picking_ids
        for move in picking.move_lines:
            move.quantity_done = move.product_uom_qty
        picking._action_done()
        self.assertEqual(picking.state, "done")
        return order.id, payment.id

    def _order_state(self, env):
        order = env["sale.order"].browse(self.order_id)
        refunds = env["payment.transaction"].search(
            [("source_transaction_id", "=", self.payment_id)])
        returns = order.picking_ids.filtered(lambda p: p.location_id.usage == "customer")
        return {
            "refunds": [(refund.state, -refund.amount) for refund in refunds],
            "returned": sum(returns.move_lines.mapped("product_uom_qty")),
            "return_states": returns.mapped("state"),
        }

    def test_window_by_lines_with_return_to_stock(self):
        wizard = self.call_kw(
            "sale.order.refund.wizard", "create",
            [{"reason": "Broken in transit", "restock": True}],
            {"context": {"default_order_id": self.order_id}},
        )
        self.assertIsInstance(wizard, int, wizard)
        answer = self.call_button("sale.order.refund.wizard", "action_refund", [wizard])
        self.assertNotIn("error", answer, answer)
        self.assertEqual(answer["params"]["type"], "success", answer)
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 80.0)])
        self.assertEqual(state["returned"], 2.0, "the return transfer of both lamps exists")
        self.assertIn("Return transfer created", answer["params"]["message"])
