"""Every refund door, pressed through the web client's routes on a committed
database served by Flectra's HTTP server (see real_server_common.py).

Refund steps commit in transactions of their own; only here do they meet a
request's transaction as they do in production.
"""

from unittest.mock import patch

from flectra.tests import new_test_user, tagged
from flectra.tools import mute_logger

from .real_server_common import RealServerCase

ENGINE_LOGGER = "flectra.addons.website_sale_order_handling.models.refund_engine"


def test_acquirer(env):
    """The Test acquirer with a journal, orders paid online not invoiced."""
    acquirer = env.ref("payment_test.payment_acquirer_test")
    if not acquirer.journal_id:
        acquirer.journal_id = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", acquirer.company_id.id)], limit=1
        )
    env["ir.config_parameter"].set_param("sale.automatic_invoice", "")
    return acquirer


class PaidOrderOnARealServer(RealServerCase):
    """A committed order, delivered and paid, and the admin logged in over HTTP."""

    def setUp(self):
        super().setUp()
        self.order_id, self.payment_id = self.commit(self._delivered_paid_order)
        self.login("admin", "admin")

    def _delivered_paid_order(self, env):
        """A web order of two lamps (40 each) and shipping (7), delivered and
        paid with the Test acquirer."""
        acquirer = test_acquirer(env)
        website = env["website"].browse(1)
        product = self.track(
            env["product.product"].create(
                {
                    "name": "Real Server Lamp %s" % self.marker,
                    "type": "product",
                    "list_price": 40.0,
                    "is_published": True,
                    "invoice_policy": "order",
                    "taxes_id": [(6, 0, [])],
                }
            )
        )
        warehouse = env["stock.warehouse"].search(
            [("company_id", "=", website.company_id.id)], limit=1
        )
        env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, 10.0)
        customer = self.track(
            env["res.partner"].create(
                {
                    "name": "Real Server Customer %s" % self.marker,
                    "email": "real.server.%s@example.com" % self.marker,
                }
            )
        )
        order = env["sale.order"].create(
            {
                "partner_id": customer.id,
                "website_id": website.id,
                "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 2})],
            }
        )
        carrier = self.track(
            env["delivery.carrier"].create(
                {
                    "name": "Real Server Courier %s" % self.marker,
                    "fixed_price": 7.0,
                    "product_id": self.track(
                        env["product.product"].create(
                            {
                                "name": "Real Server Shipping %s" % self.marker,
                                "type": "service",
                                "taxes_id": [(6, 0, [])],
                            }
                        )
                    ).id,
                }
            )
        )
        order.set_delivery_line(carrier, 7.0)
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
            [("source_transaction_id", "=", self.payment_id)], order="id"
        )
        returns = order.picking_ids.filtered(lambda p: p.location_id.usage == "customer")
        return {
            "refunds": [(refund.state, -refund.amount) for refund in refunds],
            "ledger": sorted(
                (entry.kind, entry.quantity, entry.amount)
                for entry in order.refund_ledger_ids._filter_holding()
            ),
            "returned": sum(returns.move_lines.mapped("product_uom_qty")),
            "return_states": returns.mapped("state"),
        }

    def _window(self, vals):
        wizard = self.call_kw(
            "sale.order.refund.wizard",
            "create",
            [dict({"reason": "Real server"}, **vals)],
            {"context": {"default_order_id": self.order_id}},
        )
        self.assertIsInstance(wizard, int, wizard)
        return self.call_button("sale.order.refund.wizard", "action_refund", [wizard])


@tagged("post_install", "-at_install")
class TestRefundDoorsOnARealServer(PaidOrderOnARealServer):
    def test_window_by_lines_with_return_to_stock(self):
        wizard = self.call_kw(
            "sale.order.refund.wizard",
            "create",
            [{"reason": "Broken in transit", "restock": True, "include_delivery": False}],
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

    def test_window_by_amount(self):
        answer = self._window({"refund_mode": "amount", "amount": 15.0})
        self.assertEqual(answer["params"]["type"], "success", answer)
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 15.0)])
        self.assertEqual(state["ledger"], [("amount", 0.0, 15.0)])

    def test_window_with_shipping_only_then_the_rest(self):
        answer = self._window({"include_delivery": True, "line_ids": [(5, 0, 0)]})
        self.assertEqual(answer["params"]["type"], "success", answer)
        self.assertEqual(self.snapshot(self._order_state)["ledger"], [("shipping", 1.0, 7.0)])
        # The shipping is not offered again; what is left is the two lamps.
        answer = self.call_button("sale.order", "action_refund", [self.order_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 7.0), ("done", 80.0)])
        self.assertEqual(state["ledger"], [("product", 2.0, 80.0), ("shipping", 1.0, 7.0)])
        again = self.call_button("sale.order", "action_refund", [self.order_id])
        self.assertRefused(again, "already fully refunded")

    def test_full_refund(self):
        answer = self.call_button("sale.order", "action_refund", [self.order_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 87.0)])
        self.assertEqual(state["ledger"], [("product", 2.0, 80.0), ("shipping", 1.0, 7.0)])

    def test_full_refund_after_an_amount_adds_up_in_the_ledger(self):
        """The engine's reserve, provider call and follow-up, each committed on
        its own: the full refund gives back the rest, and its ledger says so."""
        answer = self._window({"refund_mode": "amount", "amount": 15.0})
        self.assertEqual(answer["params"]["type"], "success", answer)
        answer = self.call_button("sale.order", "action_refund", [self.order_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 15.0), ("done", 72.0)])
        self.assertEqual(
            state["ledger"],
            [
                ("amount", 0.0, -15.0),
                ("amount", 0.0, 15.0),
                ("product", 2.0, 80.0),
                ("shipping", 1.0, 7.0),
            ],
        )
        self.assertEqual(sum(entry[2] for entry in state["ledger"]), 87.0, "what was paid, once")


class RequestOnARealServer(PaidOrderOnARealServer):
    """The paid order and a return request of it (``_received_request``)."""

    def setUp(self):
        super().setUp()
        self.request_id = self.commit(self._received_request)

    def _request_state(self, env):
        request = env["sale.return.request"].browse(self.request_id)
        return request.state, [
            (r.state, -r.amount) for r in request.refund_transaction_ids.sorted("id")
        ]


@tagged("post_install", "-at_install")
class TestReturnRefundOnARealServer(RequestOnARealServer):
    """A return request's Refund pressed again after its refund failed: it
    refunds what the ledger says is left, once."""

    def _received_request(self, env):
        website = env["website"].browse(1)
        before = {
            "allow_online_returns": website.allow_online_returns,
            "return_window_days": website.return_window_days,
        }
        self.addCleanup(self.commit, lambda e: e["website"].browse(1).write(before))
        website.write({"allow_online_returns": True, "return_window_days": 30})
        order = env["sale.order"].browse(self.order_id)
        lamp = order.order_line.filtered(lambda line: line.product_id.type == "product")
        reason = env.ref("website_sale_order_handling.return_reason_damaged")
        request = (
            env["sale.return.request"]
            .sudo()
            ._create_from_portal(order, {lamp.id: {"quantity": 1, "reason": reason}})
        )
        request.action_approve()
        picking = request.picking_ids
        for move in picking.move_lines:
            move.quantity_done = move.product_uom_qty
        picking._action_done()
        self.assertEqual(request.state, "received")
        return request.id

    def test_refund_after_a_cancelled_refund(self):
        Transaction = self.registry["payment.transaction"]
        with patch.object(
            Transaction,
            "_test_send_refund",
            lambda refund: refund._set_refund_state("error", "Refused"),
        ):
            answer = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertEqual(answer["params"]["type"], "danger", answer)
        state, refunds = self.snapshot(self._request_state)
        self.assertEqual((state, refunds), ("received", [("error", 40.0)]))
        refund_id = self.snapshot(
            lambda env: env["sale.return.request"].browse(self.request_id).refund_transaction_ids.id
        )
        answer = self.call_button("payment.transaction", "action_cancel_refund", [refund_id])
        self.assertNotIn("error", answer or {}, answer)
        answer = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        self.assertEqual(
            self.snapshot(self._order_state)["refunds"], [("cancel", 40.0), ("done", 40.0)]
        )
        self.assertEqual(
            self.snapshot(self._request_state), ("refunded", [("cancel", 40.0), ("done", 40.0)])
        )

    def test_refund_after_a_failed_follow_up(self):
        RefundEngine = self.registry["sale.order.refund.engine"]
        with (
            patch.object(RefundEngine, "_follow_up", side_effect=RuntimeError("SMTP down")),
            mute_logger(ENGINE_LOGGER),
        ):
            answer = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        self.assertEqual(self.snapshot(self._request_state), ("received", [("done", 40.0)]))
        answer = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertNotIn("error", answer, answer)
        self.assertEqual(self.snapshot(self._request_state), ("refunded", [("done", 40.0)]))
        self.assertEqual(self.snapshot(self._order_state)["refunds"], [("done", 40.0)])


@tagged("post_install", "-at_install")
class TestExchangeRefundOnARealServer(RequestOnARealServer):
    """An exchange's money on committed data: the order's own refunds leave
    out the variant the customer keeps, and the request refunds its price
    difference once, through the web client's routes."""

    def _received_request(self, env):
        # The lamp's product (40) gets sizes M and S (30): the lamp comes
        # back for an S, 10 to give back.
        order = env["sale.order"].browse(self.order_id)
        lamp = order.order_line.filtered(lambda line: line.product_id.type == "product")
        attribute = self.track(
            env["product.attribute"].create(
                {
                    "name": "Real Server Size %s" % self.marker,
                    "value_ids": [(0, 0, {"name": "M"}), (0, 0, {"name": "S"})],
                }
            )
        )
        template = lamp.product_id.product_tmpl_id
        template.write(
            {
                "attribute_line_ids": [
                    (
                        0,
                        0,
                        {
                            "attribute_id": attribute.id,
                            "value_ids": [(6, 0, attribute.value_ids.ids)],
                        },
                    )
                ]
            }
        )
        values = template.attribute_line_ids.product_template_value_ids
        values.filtered(lambda value: value.name == "S").price_extra = -10.0
        # The lamp ordered is archived for two new variants (it is on an order).
        small = self.track(
            template.product_variant_ids.filtered(
                lambda variant: variant.product_template_attribute_value_ids.name == "S"
            )
        )
        self.assertEqual(len(small), 1)
        env["stock.quant"]._update_available_quantity(small, order.warehouse_id.lot_stock_id, 5.0)
        website = env["website"].browse(1)
        before = {
            "allow_online_returns": website.allow_online_returns,
            "return_window_days": website.return_window_days,
            "return_exchange_shipping": website.return_exchange_shipping,
        }
        self.addCleanup(self.commit, lambda e: e["website"].browse(1).write(before))
        website.write(
            {
                "allow_online_returns": True,
                "return_window_days": 30,
                "return_exchange_shipping": "received",
            }
        )
        reason = env.ref("website_sale_order_handling.return_reason_damaged")
        request = (
            env["sale.return.request"]
            .sudo()
            ._create_from_portal(
                order, {lamp.id: {"quantity": 1, "reason": reason, "exchange": small}}
            )
        )
        request.action_approve()
        self.assertEqual(len(request.exchange_picking_ids), 1)
        return request.id

    def _receive(self, env):
        request = env["sale.return.request"].browse(self.request_id)
        picking = request.picking_ids
        for move in picking.move_lines:
            move.quantity_done = move.product_uom_qty
        picking._action_done()
        return request.state

    def test_order_refunds_leave_the_variant_kept_and_the_request_its_difference(self):
        # Before the parcel arrives: everything left is the other lamp and
        # the shipping, 47; nothing more, not even by amount.
        answer = self.call_button("sale.order", "action_refund", [self.order_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        self.assertRefused(
            self._window({"refund_mode": "amount", "amount": 1.0}), "took in exchange"
        )
        self.assertEqual(self.commit(self._receive), "received")
        answer = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertEqual(answer["params"]["type"], "success", answer)
        self.assertEqual(self.snapshot(self._request_state), ("refunded", [("done", 10.0)]))
        state = self.snapshot(self._order_state)
        self.assertEqual(state["refunds"], [("done", 47.0), ("done", 10.0)])
        self.assertEqual(
            state["ledger"],
            [
                ("exchange", 0.0, 10.0),
                ("exchange", 1.0, 0.0),
                ("product", 1.0, 40.0),
                ("shipping", 1.0, 7.0),
            ],
        )
        again = self.call_button("sale.return.request", "action_refund", [self.request_id])
        self.assertRefused(again)


@tagged("post_install", "-at_install")
class TestPaymentButtonsOfAnotherSalesmansOrderOnARealServer(RealServerCase):
    """A refund user limited to their own documents presses the payment
    buttons of another salesman's order, and of a payment of no order."""

    def setUp(self):
        super().setUp()
        self.records = self.commit(self._others_payment_with_refunds)
        self.login("own_%s" % self.marker, "own-%s" % self.marker)

    def _others_payment_with_refunds(self, env):
        own = self.track(
            new_test_user(
                env,
                login="own_%s" % self.marker,
                password="own-%s" % self.marker,
                groups="sales_team.group_sale_salesman,"
                "website_sale_order_handling.group_order_refund",
            )
        )
        other = self.track(
            new_test_user(
                env,
                login="other_%s" % self.marker,
                groups="sales_team.group_sale_salesman",
            )
        )
        self.assertFalse(own.has_group("sales_team.group_sale_salesman_all_leads"))
        acquirer = env.ref("payment_test.payment_acquirer_test")
        if not acquirer.journal_id:
            acquirer.journal_id = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", acquirer.company_id.id)], limit=1
            )
        customer = self.track(
            env["res.partner"].create(
                {
                    "name": "Real Server Customer %s" % self.marker,
                    "email": "real.server.%s@example.com" % self.marker,
                }
            )
        )
        service = self.track(
            env["product.product"].create(
                {
                    "name": "Real Server Service %s" % self.marker,
                    "type": "service",
                    "list_price": 80.0,
                    "taxes_id": [(6, 0, [])],
                }
            )
        )
        order = self.track(
            env["sale.order"].create(
                {
                    "partner_id": customer.id,
                    "user_id": other.id,
                    "order_line": [(0, 0, {"product_id": service.id, "product_uom_qty": 1})],
                }
            )
        )
        payment = self.track(order._create_payment_transaction({"acquirer_id": acquirer.id}))
        orderless = self.track(
            env["payment.transaction"].create(
                {
                    "acquirer_id": acquirer.id,
                    "amount": 30.0,
                    "partner_id": customer.id,
                    "currency_id": acquirer.company_id.currency_id.id,
                    "reference": "RS-NO-ORDER-%s" % self.marker,
                }
            )
        )
        self.assertEqual((payment.state, orderless.state), ("done", "done"))
        failed = self.track(env["sale.order.refund.engine"]._reserve_payment_refund(payment, 10.0))
        failed._set_refund_state("error", "The acquirer did not answer.")
        pending = self.track(env["sale.order.refund.engine"]._reserve_payment_refund(payment, 5.0))
        pending._set_refund_state("pending")
        return {
            "payment": payment.id,
            "orderless": orderless.id,
            "failed": failed.id,
            "pending": pending.id,
        }

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
                error.get("data", {}).get("name"),
                "flectra.exceptions.AccessError",
                "%s of %s: %s" % (method, name, error),
            )
        self.assertEqual(self.snapshot(self._refunds), before, "nothing was refunded or changed")


@tagged("post_install", "-at_install")
class TestSplitRefundOnARealServer(RealServerCase):
    """Two lamps paid 60 + 40 (the second payment also paid another order):
    their refund splits over both payments. The part the acquirer refused is
    cancelled through the web client: the part that went through still holds
    the lamps, each step committed on its own."""

    def setUp(self):
        super().setUp()
        self.records = self.commit(self._lamps_paid_twice)
        self.login("admin", "admin")

    def _lamps_paid_twice(self, env):
        acquirer = test_acquirer(env)
        website = env["website"].browse(1)
        customer = self.track(
            env["res.partner"].create({"name": "Split Customer %s" % self.marker})
        )
        lamp, setup = (
            self.track(
                env["product.product"].create(
                    {
                        "name": "%s %s" % (name, self.marker),
                        "type": kind,
                        "list_price": price,
                        "taxes_id": [(6, 0, [])],
                    }
                )
            )
            for name, kind, price in (
                ("Split Lamp", "consu", 50.0),
                ("Split Setup", "service", 10.0),
            )
        )
        orders = env["sale.order"].create(
            [
                {
                    "partner_id": customer.id,
                    "website_id": website.id,
                    "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": qty})],
                }
                for product, qty in ((lamp, 2), (setup, 3))
            ]
        )
        payments = env["payment.transaction"]
        for paid, amount in ((orders[0], 60.0), (orders, 70.0)):
            payment = env["payment.transaction"].create(
                {
                    "acquirer_id": acquirer.id,
                    "amount": amount,
                    "currency_id": orders[0].currency_id.id,
                    "partner_id": customer.id,
                    "sale_order_ids": [(6, 0, paid.ids)],
                }
            )
            payment._set_transaction_done()
            payment._post_process_after_done()
            payments |= payment
        orders.filtered(lambda order: order.state == "draft").action_confirm()
        return {"order": orders[0].id, "first": payments[0].id, "second": payments[1].id}

    def _state(self, env):
        order = env["sale.order"].browse(self.records["order"])
        refunds = env["payment.transaction"].search(
            [("source_transaction_id", "in", (self.records["first"], self.records["second"]))],
            order="id",
        )
        return {
            "refunds": [(r.source_transaction_id.id, r.state, -r.amount) for r in refunds],
            "left": {
                line.id: qty
                for line, qty in env["sale.order.refund.line"]._get_left_quantities(order).items()
            },
            "refundable": order.online_refundable_amount,
        }

    def test_cancelling_the_refused_part_keeps_the_lamps_refunded(self):
        first = self.records["first"]

        def acquirer_answer(refund):
            if refund.source_transaction_id.id == first:
                refund._set_refund_state("error", "Card expired")
            else:
                refund._set_refund_state("done")

        wizard = self.call_kw(
            "sale.order.refund.wizard",
            "create",
            [{"reason": "Recall", "include_delivery": False}],
            {"context": {"default_order_id": self.records["order"]}},
        )
        self.assertIsInstance(wizard, int, wizard)
        with patch.object(
            self.registry["payment.transaction"], "_test_send_refund", acquirer_answer
        ):
            answer = self.call_button("sale.order.refund.wizard", "action_refund", [wizard])
        self.assertNotIn("error", answer, answer)
        state = self.snapshot(self._state)
        self.assertEqual(
            state["refunds"],
            [(first, "error", 60.0), (self.records["second"], "done", 40.0)],
        )
        refused = self.snapshot(
            lambda env: (
                env["payment.transaction"].search([("source_transaction_id", "=", first)]).id
            )
        )
        answer = self.call_button("payment.transaction", "action_cancel_refund", [refused])
        self.assertNotIn("error", answer or {}, answer)
        state = self.snapshot(self._state)
        self.assertEqual(
            state["refunds"],
            [(first, "cancel", 60.0), (self.records["second"], "done", 40.0)],
        )
        self.assertEqual(state["left"], {}, "the part that went through holds both lamps")
        self.assertEqual(state["refundable"], 60.0, "the cancelled part's money")
