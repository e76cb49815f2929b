"""Refunds trust a captured payment only as Flectra's payment processing
captured it: nobody forges or changes one through the client or RPC, and a
payment changed anyway (by a script, in SQL) is refused by every refund door."""

import re

from flectra.exceptions import AccessError, UserError
from flectra.tests import HttpCase, new_test_user, tagged
from flectra.tools import config

from .common import load_migration
from .refund_common import RefundCase

CHANGED = "changed outside the payment processing"
NOT_CREATED = "the shop did not create this payment as it is"
LEFT_OUT = "was paid only by payments the shop did not create as they are"


def _post_migrate_2_0_1_3_0():
    return load_migration("2.0.1.3.0", "post-migrate.py")


@tagged("post_install", "-at_install")
class TestCapturedPaymentGuard(RefundCase):
    def _forged_payment_vals(self, order, **values):
        return dict(
            {
                "acquirer_id": self.acquirer_transfer.id,
                "amount": 5000.0,
                "currency_id": order.currency_id.id,
                "partner_id": order.partner_id.id,
                "reference": "FORGED-5000",
                "state": "done",
                "sale_order_ids": [(6, 0, order.ids)],
            },
            **values,
        )

    def test_a_salesman_can_neither_forge_nor_change_a_captured_payment(self):
        order, tx = self._paid_order(acquirer=self.acquirer_transfer)
        self.assertEqual(tx.amount, 50.0)
        Transaction = self.env["payment.transaction"].with_user(self.salesman)
        for state in ("pending", "authorized", "done", "error"):
            with self.assertRaises(AccessError, msg=state):
                Transaction.create(self._forged_payment_vals(order, state=state))
        # Nor with the payment processing's context key, which RPC could send.
        with self.assertRaises(AccessError):
            Transaction.with_context(website_sale_order_handling_payment_processing=True).create(
                self._forged_payment_vals(order)
            )
        other_order = self._create_web_order()
        other_partner = self.env["res.partner"].create({"name": "Another Customer"})
        other_currency = self.env["res.currency"].search([("id", "!=", tx.currency_id.id)], limit=1)
        as_salesman = tx.with_user(self.salesman)
        for vals in (
            {"amount": 500.0},
            {"state": "draft"},
            {"currency_id": other_currency.id},
            {"acquirer_id": self.acquirer_test.id},
            {"acquirer_reference": "another-one"},
            {"partner_id": other_partner.id},
            {"sale_order_ids": [(4, other_order.id)]},
            {"sale_order_ids": [(5, 0, 0)]},
        ):
            with self.assertRaises(AccessError, msg=vals):
                as_salesman.write(vals)
        # Nor from the orders' side.
        with self.assertRaises(AccessError):
            other_order.with_user(self.salesman).write({"transaction_ids": [(4, tx.id)]})
        with self.assertRaises(AccessError):
            order.with_user(self.salesman).write({"transaction_ids": [(5, 0, 0)]})
        self.assertEqual(
            (tx.amount, tx.state, tx.acquirer_id, tx.sale_order_ids),
            (50.0, "done", self.acquirer_transfer, order),
        )
        self.assertEqual(order.transaction_ids, tx)

        # The manager's Refund sends back what was paid, and only that.
        order.with_user(self.refunder).action_refund()
        to_pay = self.env["payment.transaction"].search(
            [
                ("is_refund", "=", True),
                ("state", "=", "pending"),
                ("refund_sale_order_id", "=", order.id),
            ]
        )
        self.assertEqual(to_pay.mapped("amount"), [-50.0])

    def test_a_salesmans_draft_is_captured_but_never_refunded(self):
        """Flectra's processing still captures a draft a salesman created (over
        RPC), but refunds never trust it: a salesman could drive a draft of
        any amount through Flectra's public processing methods
        (form_feedback, then a confirmation) and have a manager refund it."""
        order = self._create_web_order()
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", "")
        tx = (
            self.env["payment.transaction"]
            .with_user(self.salesman)
            .create(
                {
                    "acquirer_id": self.acquirer_transfer.id,
                    "amount": order.amount_total,
                    "currency_id": order.currency_id.id,
                    "partner_id": order.partner_id.id,
                    "sale_order_ids": [(6, 0, order.ids)],
                }
            )
        )
        self.assertEqual(tx.state, "draft")
        tx.with_user(self.salesman)._set_transaction_pending()
        self.assertEqual(tx.state, "pending")
        tx.with_user(self.salesman)._set_transaction_done()
        # Post-processing runs as the shop's cron or route does: in sudo.
        tx.sudo()._post_process_after_done()
        self.assertEqual((tx.state, order.state), ("done", "sale"))
        self.assertFalse(tx.sudo().capture_seal)
        with self.assertRaisesRegex(UserError, re.escape(tx.reference) + ".*" + NOT_CREATED):
            tx.with_user(self.refunder).action_refund()
        with self.assertRaisesRegex(UserError, LEFT_OUT + ".*" + re.escape(tx.reference)):
            order.with_user(self.refunder).action_refund()

    def test_a_forged_draft_of_another_amount_is_never_refunded(self):
        """The 5,000 forged beside a real payment of 50 never reaches Refunds to Pay."""
        order, real = self._paid_order()
        forged = (
            self.env["payment.transaction"]
            .with_user(self.salesman)
            .create(
                {
                    "acquirer_id": self.acquirer_transfer.id,
                    "amount": 5000.0,
                    "currency_id": order.currency_id.id,
                    "partner_id": order.partner_id.id,
                    "sale_order_ids": [(6, 0, order.ids)],
                }
            )
        )
        forged.sudo()._set_transaction_pending()
        forged.sudo()._set_transaction_done()
        self.assertEqual(forged.state, "done")
        # Left out: the order refunds what its real payment took, once, and
        # the Refund window names the payment left out.
        self.assertEqual(order.online_refundable_amount, 50.0)
        wizard = (
            self.env["sale.order.refund.wizard"]
            .with_user(self.refunder)
            .create({"order_id": order.id, "reason": "Check"})
        )
        self.assertIn("Left out: %s" % forged.reference, wizard.capability_note)
        order.with_user(self.refunder).action_refund()
        self.assertEqual(real.refunded_amount, 50.0)
        self.assertFalse(forged.refund_transaction_ids)
        with self.assertRaisesRegex(UserError, re.escape(forged.reference) + ".*" + NOT_CREATED):
            forged.with_user(self.refunder).action_refund()

    def _public_route_payment(self, order, amount, partner=None):
        """What Flectra's public /website_payment/transaction/v2/<amount>/... does
        for anyone: a wire transfer of any amount for any order, created in
        sudo, told pending by the transfer feedback, done once the order is
        locked (sale.order.action_done)."""
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "acquirer_id": self.acquirer_transfer.id,
                    "amount": amount,
                    "currency_id": order.currency_id.id,
                    "partner_id": (partner or order.partner_id).id,
                    "sale_order_ids": [(6, 0, order.ids)],
                }
            )
        )
        tx._set_transaction_pending()
        order.with_user(self.salesman).action_done()
        self.assertEqual(tx.state, "done")
        return tx

    def test_a_public_route_payment_of_more_than_the_order_is_never_trusted(self):
        order, real = self._paid_order()
        bogus = self._public_route_payment(order, 10100.0)
        self.assertFalse(bogus.sudo().origin_seal)
        self.assertFalse(bogus.sudo().capture_seal)
        self.assertEqual(order.online_refundable_amount, 50.0)
        # It blocks nothing: the order refunds its real payment, once.
        order.with_user(self.refunder).action_refund()
        self.assertEqual(real.refunded_amount, 50.0)
        self.assertFalse(bogus.refund_transaction_ids)
        with self.assertRaisesRegex(UserError, re.escape(bogus.reference) + ".*" + NOT_CREATED):
            bogus.with_user(self.refunder).action_refund()

    def test_a_public_route_payment_for_another_customer_is_never_trusted(self):
        """An order paid some other way (on invoice): a visitor creates a wire
        transfer of its exact total for themselves; a salesman locks the order."""
        order = self._create_web_order()
        order.action_confirm()
        visitor = self.env["res.partner"].create({"name": "Visitor", "email": "v@example.com"})
        bogus = self._public_route_payment(order, order.amount_total, partner=visitor)
        self.assertFalse(bogus.sudo().origin_seal)
        with self.assertRaisesRegex(UserError, LEFT_OUT + ".*" + re.escape(bogus.reference)):
            order.with_user(self.refunder).action_refund()
        self.assertFalse(bogus.refund_transaction_ids)

    def test_an_order_never_gets_back_more_than_it_cost(self):
        """A second payment of the order's price, from the public route: the
        order still gets back its price once, never twice."""
        order, real = self._paid_order()
        second = self._public_route_payment(order, 50.0)
        self.assertTrue(second.sudo().capture_seal, "asks no more than the order costs")
        self.assertEqual(order.online_refundable_amount, 50.0)
        self.assertEqual(second._get_order_refundable_amount(order), 0.0)
        order.with_user(self.refunder).action_refund()
        self.assertEqual(real.refunded_amount, 50.0)
        self.assertEqual(second.refunded_amount, 0.0)
        self.assertEqual(order.online_refundable_amount, 0.0)
        with self.assertRaisesRegex(UserError, "only 0.0 of this payment is that order's"):
            second.with_user(self.refunder).action_refund(10.0)

    def test_a_payment_changed_after_capture_is_refused_by_every_refund_door(self):
        order, tx = self._paid_order()
        # Changed afterwards by code running as superuser (a script, a server action).
        tx.write({"amount": 500.0})
        changed = re.escape(tx.reference) + ".*" + CHANGED
        refunder = self.refunder
        with self.assertRaisesRegex(UserError, changed):
            order.with_user(refunder).action_refund()
        with self.assertRaisesRegex(UserError, changed):
            order.with_user(refunder).action_open_refund_wizard()
        with self.assertRaisesRegex(UserError, changed):
            self._engine_refund(order.with_user(refunder), amount=10.0, reason="Gesture")
        with self.assertRaisesRegex(UserError, changed):
            tx.with_user(refunder).action_refund(10.0)
        with self.assertRaisesRegex(UserError, changed):
            self._engine_refund_lines(order, {order.order_line: 1})
        self.assertFalse(tx.refund_transaction_ids)
        # Back to what was captured, it is refunded as usual.
        tx.write({"amount": 50.0})
        order.with_user(refunder).action_refund()
        self.assertEqual(tx.refund_transaction_ids.mapped("state"), ["done"])

    def test_a_payment_without_a_seal_or_moved_to_another_order_is_not_refunded(self):
        order, tx = self._paid_order()
        other_order, other_tx = self._paid_order()
        self.env["base"].flush()
        # What the ORM cannot do, SQL can: the refund code notices all the same.
        self.env.cr.execute(
            "UPDATE payment_transaction SET capture_seal = NULL WHERE id = %s", [tx.id]
        )
        self.env.cr.execute(
            "INSERT INTO sale_order_transaction_rel (sale_order_id, transaction_id) "
            "VALUES (%s, %s)",
            [order.id, other_tx.id],
        )
        self.env.cache.invalidate()
        with self.assertRaisesRegex(UserError, re.escape(tx.reference) + ".*" + CHANGED):
            tx.with_user(self.refunder).action_refund()
        with self.assertRaisesRegex(UserError, re.escape(other_tx.reference) + ".*" + CHANGED):
            other_order.with_user(self.refunder).action_refund()
        self.assertFalse((tx | other_tx).refund_transaction_ids)

    def test_a_salesman_cannot_point_a_stripe_payment_at_another_card(self):
        acquirer, stub = self._stripe_with_stub()
        _order, tx = self._paid_order(acquirer=acquirer, stripe_payment_intent="pi_victim")
        for vals in (
            {"stripe_payment_intent": "pi_someone_else"},
            {"acquirer_reference": "ch_someone_else"},
        ):
            with self.assertRaises(AccessError, msg=vals):
                tx.with_user(self.salesman).write(vals)
        self.assertEqual(tx.stripe_payment_intent, "pi_victim")
        self.assertFalse(tx.acquirer_reference)
        self.assertFalse(stub.requests)

    def test_a_retry_never_sends_a_refund_to_a_changed_stripe_reference(self):
        acquirer, stub = self._stripe_with_stub()
        stub.mode = "error"
        order, tx = self._paid_order(acquirer=acquirer, stripe_payment_intent="pi_victim")
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        # Changed after the failed attempt, where no guard reaches (SQL).
        self.env["base"].flush()
        self.env.cr.execute(
            "UPDATE payment_transaction SET stripe_payment_intent = 'pi_someone_else' "
            "WHERE id = %s",
            [tx.id],
        )
        tx.invalidate_cache()
        stub.mode = "succeeded"
        with self.assertRaisesRegex(UserError, re.escape(tx.reference) + ".*" + CHANGED):
            refund.with_user(self.refunder).action_retry_refund()
        self.assertEqual(refund.state, "error")
        self.assertEqual(len(stub.requests), 1, "only the first attempt reached Stripe")
        self.assertEqual(stub.requests[0]["form"]["payment_intent"], "pi_victim")

    def test_the_upgrade_seals_the_payments_captured_before_it(self):
        order, tx = self._paid_order()
        refund = tx.action_refund(10.0)
        draft = self.env["payment.transaction"].create(
            {
                "acquirer_id": self.acquirer_transfer.id,
                "amount": 12.0,
                "currency_id": order.currency_id.id,
                "partner_id": order.partner_id.id,
            }
        )
        self.env["base"].flush()
        # As 2.0.1.2.0 left them: no seal anywhere.
        self.env.cr.execute("UPDATE payment_transaction SET capture_seal = NULL")
        self.env.cache.invalidate()
        with self.assertRaisesRegex(UserError, CHANGED):
            order.with_user(self.refunder).action_refund()
        _post_migrate_2_0_1_3_0().migrate(self.env.cr, "2.0.1.2.0")
        self.env.cache.invalidate()
        self.env.cr.execute(
            "SELECT id FROM payment_transaction WHERE capture_seal IS NOT NULL AND id IN %s",
            [(tx.id, refund.id, draft.id)],
        )
        self.assertEqual(self.env.cr.fetchall(), [(tx.id,)], "captured payments only")
        order.with_user(self.refunder).action_refund()
        self.assertEqual(tx.refund_transaction_ids.mapped("state"), ["done", "done"])


@tagged("post_install", "-at_install")
class TestCapturedPaymentGuardRpc(HttpCase):
    """The same forgery as JSON-RPC calls of a salesman's browser session."""

    def setUp(self):
        super().setUp()
        new_test_user(
            self.env,
            login="rpc_capture_salesman",
            password="rpc_capture_salesman",
            groups="sales_team.group_sale_salesman_all_leads",
        )
        transfer = self.env.ref("payment.payment_acquirer_transfer")
        if not transfer.journal_id:
            transfer.journal_id = self.env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", self.env.company.id)], limit=1
            )
        service = self.env["product.product"].create(
            {
                "name": "RPC Service",
                "type": "service",
                "list_price": 50.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        partner = self.env["res.partner"].create({"name": "RPC Customer"})
        self.order = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [(0, 0, {"product_id": service.id, "product_uom_qty": 1})],
            }
        )
        self.payment = self.order._create_payment_transaction({"acquirer_id": transfer.id})
        self.payment._set_transaction_done()
        self.authenticate("rpc_capture_salesman", "rpc_capture_salesman")

    def _call_kw(self, model, method, args, kwargs=None):
        response = self.opener.post(
            "http://127.0.0.1:%s/web/dataset/call_kw/%s/%s" % (config["http_port"], model, method),
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {
                    "model": model,
                    "method": method,
                    "args": args,
                    "kwargs": kwargs or {},
                },
            },
            timeout=30,
        )
        response.raise_for_status()
        self.env.cache.invalidate()
        return response.json()

    def _assert_refused(self, response):
        self.assertIn("error", response, response)
        self.assertEqual(
            response["error"]["data"]["name"], "flectra.exceptions.AccessError", response
        )

    def test_rpc_cannot_forge_or_raise_a_captured_payment(self):
        forged = {
            "acquirer_id": self.payment.acquirer_id.id,
            "amount": 5000.0,
            "currency_id": self.payment.currency_id.id,
            "partner_id": self.order.partner_id.id,
            "reference": "RPC-FORGED-5000",
            "state": "done",
            "sale_order_ids": [(6, 0, self.order.ids)],
        }
        self._assert_refused(self._call_kw("payment.transaction", "create", [forged]))
        self._assert_refused(
            self._call_kw(
                "payment.transaction",
                "create",
                [forged],
                {"context": {"website_sale_order_handling_payment_processing": True}},
            )
        )
        self._assert_refused(
            self._call_kw("payment.transaction", "write", [self.payment.ids, {"amount": 500.0}])
        )
        self._assert_refused(
            self._call_kw(
                "payment.transaction", "write", [self.payment.ids, {"acquirer_reference": "x"}]
            )
        )
        self.assertEqual(self.order.transaction_ids, self.payment)
        self.assertEqual((self.payment.amount, self.payment.state), (50.0, "done"))
