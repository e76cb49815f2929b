"""Every refund door, pressed through the web client's routes on a committed
database served by Flectra's HTTP server (see real_server_common.py).

Refund steps commit in transactions of their own; only here do they meet a
request's transaction as they do in production.
"""
from flectra.tests import new_test_user, tagged

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


@tagged("post_install", "-at_install")
class TestPaymentButtonsOfAnotherSalesmansOrderOnARealServer(RealServerCase):
    """A refund user limited to their own documents presses the payment
    buttons of another salesman's order, and of a payment of no order."""

    def setUp(self):
        super().setUp()
        self.records = self.commit(self._others_payment_with_refunds)
        self.login("own_%s" % self.marker, "own-%s" % self.marker)

    def _others_payment_with_refunds(self, env):
        own = self.track(new_test_user(
            env, login="own_%s" % self.marker, password="own-%s" % self.marker,
            groups="sales_team.group_sale_salesman,"
                   "website_sale_order_handling.group_order_refund",
        ))
        other = self.track(new_test_user(
            env, login="other_%s" % self.marker, groups="sales_team.group_sale_salesman",
        ))
        self.assertFalse(own.has_group("sales_team.group_sale_salesman_all_leads"))
        acquirer = env.ref("payment_test.payment_acquirer_test")
        if not acquirer.journal_id:
            acquirer.journal_id = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", acquirer.company_id.id)], limit=1)
        customer = self.track(env["res.partner"].create({
            "name": "Real Server Customer %s" % self.marker,
            "email": "real.server.%s@example.com" % self.marker,
        }))
        service = self.track(env["product.product"].create({
            "name": "Real Server Service %s" % self.marker, "type": "service",
            "list_price": 80.0, "taxes_id": [(6, 0, [])],
        }))
        order = self.track(env["sale.order"].create({
            "partner_id": customer.id, "user_id": other.id,
            "order_line": [(0, 0, {"product_id": service.id, "product_uom_qty": 1})],
        }))
        payment = self.track(order._create_payment_transaction({"acquirer_id": acquirer.id}))
        orderless = self.track(env["payment.transaction"].create({
            "acquirer_id": acquirer.id, "amount": 30.0, "partner_id": customer.id,
            "currency_id": acquirer.company_id.currency_id.id,
            "reference": "RS-NO-ORDER-%s" % self.marker,
        }))
        self.assertEqual((payment.state, orderless.state), ("done", "done"))
        failed = self.track(payment._reserve_refund(10.0))
        failed._set_refund_state("error", "The acquirer did not answer.")
        pending = self.track(payment._reserve_refund(5.0))
        pending._set_refund_state("pending")
        return {"payment": payment.id, "orderless": orderless.id,
                "failed": failed.id, "pending": pending.id}

    def _refunds(self, env):
        env.cr.execute(
            "SELECT id, state, amount FROM payment_transaction "
            "WHERE source_transaction_id IN %s ORDER BY id",
            [(self.records["payment"], self.records["orderless"])],
        )
        return env.cr.fetchall()

    def test_own_documents_user_cannot_press_the_payment_buttons(self):
        before = self.snapshot(self._refunds)
        self.assertEqual([state for _id, state, _amount in before], ["error", "pending"])
        for method, name in (
            ("action_refund", "payment"),
            ("action_refund", "orderless"),
            ("action_retry_refund", "failed"),
            ("action_cancel_refund", "failed"),
            ("action_mark_refund_paid", "pending"),
        ):
            answer = self.call_button("payment.transaction", method, [self.records[name]])
            error = self.assertRefused(answer)
            self.assertEqual(
                error.get("data", {}).get("name"), "flectra.exceptions.AccessError",
                "%s of %s: %s" % (method, name, error),
            )
        self.assertEqual(self.snapshot(self._refunds), before, "nothing was refunded or changed")
