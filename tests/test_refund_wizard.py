"""The order's Refund wizard: chosen quantities or an amount, shipping in or
out, a reason, the acquirer's capability, restocking, and two at once."""

import unittest
from unittest.mock import patch

from flectra.exceptions import AccessError, UserError
from flectra.tests import Form, tagged

from .refund_common import CommittedRefundCase, RefundCase
from .return_common import ReturnMixin

WIZARD = "sale.order.refund.wizard"


@tagged("post_install", "-at_install")
class TestRefundWizard(ReturnMixin, RefundCase):
    def _form(self, order, user=None):
        """The wizard as the Refund button opens it, seen through its form view."""
        action = order.with_user(user or self.refunder).action_open_refund_wizard()
        self.assertEqual(action["res_model"], WIZARD)
        return Form(
            self.env[WIZARD].with_user(user or self.refunder).with_context(**action["context"])
        )

    def _line_of(self, form, product):
        for index in range(len(form.line_ids)):
            with form.line_ids.edit(index) as line:
                if line.sale_line_id.product_id == product:
                    return index
        raise AssertionError("no wizard line for %s" % product.display_name)

    def _lines(self, form):
        """[(product name, left to refund, quantity to refund)] shown in the wizard."""
        lines = []
        for index in range(len(form.line_ids)):
            with form.line_ids.edit(index) as line:
                lines.append((line.sale_line_id.product_id.name, line.qty_left, line.quantity))
        return sorted(lines)

    def _set_qty(self, form, product, qty):
        with form.line_ids.edit(self._line_of(form, product)) as line:
            line.quantity = qty

    def _confirm(self, form, reason="Customer changed their mind"):
        form.reason = reason
        wizard = form.save()
        return wizard.action_refund()

    def _credit_lines(self, refund):
        return sorted(
            (line.product_id.name, line.quantity)
            for line in refund.refund_move_ids.invoice_line_ids
        )

    def test_partial_refund_by_lines_credits_exactly_the_chosen_quantities(self):
        self._set_taxes(self.product, 21.0)
        order, tx = self._paid_order(lines=[(self.product, 3), (self.service, 1)], invoiced=True)
        self.assertEqual(order.amount_total, 191.5)  # 3 x 60.50 + 10
        form = self._form(order)
        # Prefilled with everything left, the whole amount shown before acting.
        self.assertEqual(form.refund_mode, "lines")
        self.assertEqual(
            self._lines(form),
            [("Test Setup Service", 1.0, 1.0), ("Test Storable Lamp", 3.0, 3.0)],
        )
        self.assertEqual(form.amount_to_refund, 191.5)
        self._set_qty(form, self.product, 1)
        self._set_qty(form, self.service, 0)
        self.assertEqual(form.amount_to_refund, 60.5, "taxes included")
        messages = order.message_ids

        notification = self._confirm(form, reason="Lamp arrived scratched")

        self.assertEqual(notification["params"]["title"], "Refunded")
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -60.5)
        self.assertEqual(self._credit_lines(refund), [("Test Storable Lamp", 1.0)])
        self.assertEqual(refund.refund_move_ids.state, "posted")
        self.assertEqual(refund.refund_move_ids.amount_total, 60.5)
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")
        self.assertNotIn("scratched", refund.refund_move_ids.ref or "", "never on the credit note")
        self.assertEqual(order.online_refundable_amount, 131.0)
        # The reason is an internal note; the customer gets the refund e-mail only.
        new = order.message_ids - messages
        note = new.filtered(lambda m: "Lamp arrived scratched" in (m.body or ""))
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
        self.assertEqual(note.author_id, self.refunder.partner_id)
        self.assertIn(refund.reference, note.body)
        mail = new.filtered(lambda m: self.customer in m.partner_ids)
        self.assertEqual(len(mail), 1)
        self.assertIn("60.50", mail.body)
        self.assertNotIn("scratched", mail.body)

        # What is left per line is prefilled next time, and never more is taken.
        form = self._form(order)
        self.assertEqual(form.amount_to_refund, 131.0)
        with form.line_ids.edit(self._line_of(form, self.product)) as line:
            self.assertEqual(line.qty_left, 2.0)
            line.quantity = 3
        with self.assertRaisesRegex(UserError, "only 2.0 of it is left"):
            self._confirm(form)
        self.assertEqual(len(tx.refund_transaction_ids), 1)

    def test_refund_by_amount_gives_money_back_without_credit_note(self):
        order, tx = self._paid_order(lines=[(self.product, 2)], invoiced=True)
        form = self._form(order)
        form.refund_mode = "amount"
        form.amount = 1000.0
        self.assertEqual(form.amount_to_refund, 100.0, "capped by what is left")
        self.assertTrue(form.warning)
        form.amount = 15.0
        self.assertEqual(form.amount_to_refund, 15.0)
        self.assertFalse(form.warning)
        self._confirm(form, reason="Late delivery")

        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -15.0)
        self.assertFalse(refund.refund_move_ids, "an amount is not products: no credit note")
        self.assertFalse(order.invoice_ids.filtered(lambda m: m.move_type == "out_refund"))
        self.assertEqual(refund.payment_id.amount, 15.0)
        self.assertEqual(order.online_refundable_amount, 85.0)
        self.assertTrue(order.message_ids.filtered(lambda m: "Late delivery" in (m.body or "")))

        # Never more than paid minus refunded, even typed past the wizard's cap.
        form = self._form(order)
        self.assertEqual(form.amount_to_refund, 85.0, "lines are still all there, but capped")
        form.refund_mode = "amount"
        form.amount = 85.01
        with self.assertRaisesRegex(UserError, "left to refund"):
            self._confirm(form)
        self.assertEqual(len(tx.refund_transaction_ids), 1)

    def _order_with_shipping(self):
        if "is_delivery" not in self.env["sale.order.line"]._fields:
            raise unittest.SkipTest("delivery is not installed")
        shipping = self.env["product.product"].create(
            {
                "name": "Test Shipping",
                "type": "service",
                "list_price": 0.0,
                "taxes_id": [(6, 0, [])],
                "invoice_policy": "order",
            }
        )
        carrier = self.env["delivery.carrier"].create(
            {
                "name": "Test Carrier",
                "product_id": shipping.id,
                "delivery_type": "fixed",
                "fixed_price": 7.0,
            }
        )
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", "True")
        order = self._create_web_order(lines=[(self.product, 2)])
        order.set_delivery_line(carrier, 7.0)
        self.assertEqual(order.amount_total, 107.0)
        tx = self._pay(order)
        self.assertEqual(order.state, "sale")
        return order, tx, shipping

    def test_shipping_line_left_out_then_refunded_on_its_own(self):
        order, tx, _shipping = self._order_with_shipping()
        form = self._form(order)
        self.assertTrue(form.has_delivery_line)
        self.assertTrue(form.include_delivery, "everything left is prefilled, shipping too")
        self.assertEqual(form.delivery_amount, 7.0)
        self.assertEqual(len(form.line_ids), 1, "shipping is a checkbox, not a line")
        self.assertEqual(form.amount_to_refund, 107.0)
        form.include_delivery = False
        self._set_qty(form, self.product, 1)
        self.assertEqual(form.amount_to_refund, 50.0)
        self._confirm(form)
        first = tx.refund_transaction_ids
        self.assertEqual(first.amount, -50.0)
        self.assertEqual(self._credit_lines(first), [("Test Storable Lamp", 1.0)])

        form = self._form(order)
        self.assertTrue(form.include_delivery)
        self._set_qty(form, self.product, 0)
        self.assertEqual(form.amount_to_refund, 7.0)
        self._confirm(form)
        second = tx.refund_transaction_ids - first
        self.assertEqual(second.amount, -7.0)
        self.assertEqual(self._credit_lines(second), [("Test Shipping", 1.0)])
        self.assertEqual(second.refund_move_ids.payment_state, "paid")

        # Shipping is refunded: only the last lamp is left, and it is offered.
        form = self._form(order)
        self.assertFalse(form.has_delivery_line)
        self.assertEqual(form.amount_to_refund, 50.0)

    def test_shipping_line_included_with_the_products(self):
        order, tx, _shipping = self._order_with_shipping()
        form = self._form(order)
        self._set_qty(form, self.product, 1)
        self.assertEqual(form.amount_to_refund, 57.0)
        self._confirm(form)
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.amount, -57.0)
        self.assertEqual(
            self._credit_lines(refund), [("Test Shipping", 1.0), ("Test Storable Lamp", 1.0)]
        )

    def test_full_only_acquirer_refunds_everything_left_and_says_why(self):
        acquirer = self.env["payment.acquirer"].create(
            {
                "name": "All Or Nothing Pay",
                "provider": "manual",
                "state": "enabled",
                "journal_id": self.bank_journal.id,
            }
        )
        order, tx = self._paid_order(
            lines=[(self.product, 2), (self.service, 1)], invoiced=True, acquirer=acquirer
        )
        # As a provider module declaring full-only support (and its sender) would.
        support = dict(acquirer._get_refund_support(), manual="full_only")
        Transaction = type(self.env["payment.transaction"])
        with (
            patch.object(type(acquirer), "_get_refund_support", lambda self: support),
            patch.object(
                Transaction,
                "_manual_send_refund",
                create=True,
                new=lambda self: self._set_refund_state("done"),
            ),
        ):
            acquirer.invalidate_cache()
            form = self._form(order)
            self.assertTrue(form.full_only)
            self.assertIn("All Or Nothing Pay", form.capability_note)
            self.assertEqual(form.amount_to_refund, 110.0)
            # The only choice is everything left: nothing else can be picked.
            with self.assertRaises(AssertionError):
                form.refund_mode = "amount"
            with self.assertRaises(AssertionError):
                with form.line_ids.edit(0) as line:
                    line.quantity = 0
            self._confirm(form)
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -110.0)
        self.assertEqual(refund.refund_move_ids.amount_total, 110.0)
        self.assertEqual(order.online_refundable_amount, 0.0)

    def test_unsupported_acquirer_is_named_and_nothing_changes(self):
        manual = self.env["payment.acquirer"].create(
            {
                "name": "Cash on Delivery",
                "provider": "manual",
                "state": "enabled",
                "journal_id": self.bank_journal.id,
            }
        )
        order, tx = self._paid_order(invoiced=True, acquirer=manual)
        messages = len(order.message_ids)
        with self.assertRaisesRegex(UserError, "Cash on Delivery cannot refund"):
            order.with_user(self.refunder).action_open_refund_wizard()
        # A wizard made anyway (RPC) is refused by the refund engine.
        wizard = (
            self.env[WIZARD]
            .with_user(self.refunder)
            .with_context(default_order_id=order.id)
            .create({"reason": "Try anyway"})
        )
        self.assertIn("Cash on Delivery", wizard.capability_note)
        with self.assertRaisesRegex(UserError, "Cash on Delivery cannot refund"):
            wizard.action_refund()
        self.assertFalse(tx.refund_transaction_ids)
        self.assertEqual(order.invoice_ids.move_type, "out_invoice", "no credit note")
        self.assertEqual(len(order.message_ids), messages)

    def test_only_the_refund_group_uses_the_wizard(self):
        order, tx = self._paid_order()
        with self.assertRaises(AccessError):
            order.with_user(self.salesman).action_open_refund_wizard()
        with self.assertRaises(AccessError):
            self.env[WIZARD].with_user(self.salesman).create(
                {"order_id": order.id, "reason": "Not mine to refund"}
            )
        wizard = (
            self.env[WIZARD]
            .with_user(self.refunder)
            .with_context(default_order_id=order.id)
            .create({"reason": "Mine"})
        )
        self.assertTrue(wizard.line_ids)
        # Even a wizard made by someone else: the refund itself checks the right.
        with self.assertRaises(AccessError):
            wizard.with_user(self.salesman).action_refund()
        self.assertFalse(tx.refund_transaction_ids)

    def test_a_reason_is_required(self):
        order, tx = self._paid_order()
        form = self._form(order)
        with self.assertRaises(AssertionError):
            form.save()  # required field left empty
        with self.assertRaisesRegex(UserError, "why"):
            self._engine_refund(order.with_user(self.refunder), reason="   ")
        self.assertFalse(tx.refund_transaction_ids)

    def test_restock_returns_the_delivered_refunded_products(self):
        order, tx = self._paid_order(lines=[(self.product, 3), (self.service, 1)])
        delivery = self._deliver(order, {self.product: 2}, backorder=True)
        lamp = order.order_line.filtered(lambda ln: ln.product_id == self.product)
        self.assertEqual(lamp.qty_delivered, 2.0)
        form = self._form(order)
        self.assertTrue(form.can_restock)
        self._set_qty(form, self.product, 3)
        form.restock = True
        notification = self._confirm(form)

        self.assertEqual(tx.refund_transaction_ids.amount, -160.0)
        returns = self.env["stock.picking"].search(
            [("move_lines.origin_returned_move_id.picking_id", "=", delivery.id)]
        )
        self.assertEqual(len(returns), 1)
        self.assertIn(returns.name, notification["params"]["message"])
        self.assertEqual(returns.move_lines.origin_returned_move_id.picking_id, delivery)
        self.assertEqual(
            returns.move_lines.mapped(lambda m: (m.product_id, m.product_uom_qty)),
            [(self.product, 2.0)],
            "only what was delivered, not the backorder",
        )
        self.assertEqual(lamp._get_return_returned_qty(), 2.0)

    def test_no_restock_without_the_box_or_without_a_delivery(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        form = self._form(order)
        self.assertFalse(form.can_restock, "nothing delivered yet")
        self._set_qty(form, self.product, 1)
        self._confirm(form)
        lamp = order.order_line
        self.assertFalse(
            self.env["sale.order.refund.engine"]._return_refunded_lines(order, {lamp.id: 1.0}),
            "nothing delivered to take back",
        )
        self._deliver(order)
        form = self._form(order)
        self.assertTrue(form.can_restock)
        self.assertFalse(form.restock, "unticked unless asked")
        self._confirm(form)
        self.assertEqual(len(tx.refund_transaction_ids), 2)
        self.assertFalse(order.picking_ids.move_lines.filtered("origin_returned_move_id"))

    def test_failed_refund_is_retried_not_doubled(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        Transaction = type(self.env["payment.transaction"])
        with patch.object(
            Transaction,
            "_test_send_refund",
            lambda self: self._set_refund_state("error", "Acquirer down"),
        ):
            form = self._form(order)
            self._set_qty(form, self.product, 1)
            notification = self._confirm(form)
        self.assertEqual(notification["params"]["title"], "Refund failed")
        failed = tx.refund_transaction_ids
        self.assertEqual(failed.state, "error")
        self.assertTrue(order.has_failed_refund)
        form = self._form(order)
        self.assertEqual(form.amount_to_refund, 50.0, "the failed refund holds its amount")
        with self.assertRaisesRegex(UserError, "Retry Refund"):
            self._confirm(form)
        order.with_user(self.refunder).action_retry_refund()
        self.assertEqual(tx.refund_transaction_ids, failed, "the same refund, sent again")
        self.assertEqual(failed.state, "done")
        self.assertEqual(order.online_refundable_amount, 50.0)


@tagged("post_install", "-at_install")
class TestRefundWizardConcurrency(CommittedRefundCase):
    def test_two_wizards_confirmed_at_once_make_one_refund(self):
        def create(env):
            admin = self._admin(env)
            self.user_id = admin.id
            journal = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", admin.company_id.id)], limit=1
            )
            acquirer = self._commit_record(
                env,
                "payment.acquirer",
                {
                    "name": "Wizard Concurrency Transfer",
                    "provider": "transfer",
                    "state": "enabled",
                    "journal_id": journal.id,
                    "company_id": admin.company_id.id,
                },
            )
            product = self._commit_record(
                env,
                "product.product",
                {
                    "name": "Wizard Concurrency Service",
                    "type": "service",
                    "list_price": 10.0,
                    "taxes_id": [(6, 0, [])],
                },
            )
            partner = self._commit_record(env, "res.partner", {"name": "Wizard Customer"})
            order = self._commit_record(
                env,
                "sale.order",
                {
                    "partner_id": partner.id,
                    "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 4})],
                },
            )
            tx = self._commit_payment(env, acquirer, 40.0, order)
            return tx.id, order.id

        tx_id, order_id = self.run_worker(create)

        def confirm(reason):
            def work(env):
                wizard = (
                    env[WIZARD].with_context(default_order_id=order_id).create({"reason": reason})
                )
                return wizard.action_refund()["params"]["title"]

            return work

        # The first wizard holds the payment's lock while it checks and reserves.
        reached, release = self._hold_in("_check_refundable", "sale.order.refund.engine")
        first, first_outcome = self.start_worker(confirm("First clerk"), self.user_id)
        self.assertTrue(reached.wait(60))
        with self.assertRaisesRegex(UserError, "being processed"):
            self.run_worker(confirm("Second clerk"), self.user_id)
        release.set()
        first.join(60)
        self.assertEqual(first_outcome.get("result"), "Refund pending", first_outcome.get("error"))

        def committed(env):
            env.cr.execute(
                "SELECT amount, state FROM payment_transaction WHERE source_transaction_id = %s",
                [tx_id],
            )
            return env.cr.fetchall()

        self.assertEqual(self.run_worker(committed), [(-40.0, "pending")])
        # Once it is through, the same wizard again finds nothing left.
        with self.assertRaises(UserError):
            self.run_worker(confirm("Third clerk"), self.user_id)
        self.assertEqual(self.run_worker(committed), [(-40.0, "pending")])
