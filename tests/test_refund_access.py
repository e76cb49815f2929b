"""Refund rights follow the orders a user may see: a refund user limited to
their own documents refunds nothing of another salesman's order, through any
door, and no payment that belongs to no order."""

from flectra.exceptions import AccessError
from flectra.tests import new_test_user, tagged

from .refund_common import RefundCase
from .return_common import ReturnMixin

WIZARD = "sale.order.refund.wizard"


class _RolledBack(Exception):
    """Ends a door's savepoint: every door is pressed on the same data."""


@tagged("post_install", "-at_install")
class TestRefundAccessOwnDocuments(ReturnMixin, RefundCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()
        cls.own_refunder = new_test_user(
            cls.env,
            login="own_refunder",
            name="Olga Own Documents",
            groups="sales_team.group_sale_salesman,website_sale_order_handling.group_order_refund",
        )
        cls.other_seller = new_test_user(
            cls.env,
            login="other_seller",
            name="Otto Other Seller",
            groups="sales_team.group_sale_salesman",
        )

    def _paid_order_of(self, user, acquirer=None, lines=None):
        order = self._create_web_order(lines=lines or [(self.product, 2)], user_id=user.id)
        tx = self._pay(order, acquirer)
        self.assertEqual(order.state, "sale")
        return order, tx

    def _others_order_with_every_door(self):
        """Another salesman's paid order, with a received return, a failed
        refund and a pending one; and a payment of no order."""
        order, tx = self._paid_order_of(self.other_seller)
        self._deliver(order)
        request = self._submit(order, {self.product: 1})
        request.action_approve()
        self._receive(request)
        self.assertEqual(request.state, "received")
        failed = self._engine_reserve_payment_refund(tx, 10.0)
        failed._set_refund_state("error", "The acquirer did not answer.")
        _other, transfer_tx = self._paid_order_of(
            self.other_seller, self.acquirer_transfer, lines=[(self.service, 1)]
        )
        pending = transfer_tx.action_refund(5.0)
        self.assertEqual(pending.state, "pending")
        orderless = self.env["payment.transaction"].create(
            {
                "acquirer_id": self.acquirer_test.id,
                "amount": 30.0,
                "currency_id": self.company.currency_id.id,
                "partner_id": self.customer.id,
                "reference": "INVOICE-PAYMENT-OF-NO-ORDER",
            }
        )
        self.assertEqual(orderless.state, "done")
        self.assertFalse(orderless.sale_order_ids)
        return order, tx, request, failed, pending, orderless

    def _refund_snapshot(self):
        """Every refund and credit note, and every return request's state."""
        self.env["base"].flush()
        cr = self.env.cr
        cr.execute("SELECT id, state, amount FROM payment_transaction WHERE is_refund ORDER BY id")
        refunds = cr.fetchall()
        cr.execute("SELECT id, state FROM account_move WHERE move_type = 'out_refund' ORDER BY id")
        credit_notes = cr.fetchall()
        cr.execute("SELECT id, state FROM sale_return_request ORDER BY id")
        return refunds, credit_notes, cr.fetchall()

    def _doors_left_open(self, doors):
        """Press each door (name, function) on the same data, each in a
        savepoint; the doors that did not refuse with an AccessError, or that
        changed a refund, a credit note or a request before refusing."""
        left_open = []
        for name, press in doors:
            before = self._refund_snapshot()
            try:
                with self.env.cr.savepoint():
                    try:
                        result = press()
                    except AccessError:
                        self.env.cache.invalidate()
                        if self._refund_snapshot() != before:
                            left_open.append("%s: refused, after changing refunds" % name)
                        raise _RolledBack() from None
                    left_open.append("%s: let through (%r)" % (name, result))
                    raise _RolledBack()
            except _RolledBack:
                continue
            except Exception as error:  # noqa: BLE001 -- each door's outcome is reported
                left_open.append("%s: %s: %s" % (name, type(error).__name__, error))
            finally:
                self.env.cache.invalidate()
        return left_open

    def test_every_refund_door_refuses_another_salesmans_order(self):
        order, tx, request, failed, pending, orderless = self._others_order_with_every_door()
        user = self.own_refunder
        # A window the manager opened on that order, pressed by the other user.
        managers_wizard = (
            self.env[WIZARD]
            .with_user(self.refunder)
            .with_context(default_order_id=order.id)
            .create({"reason": "Opened by the manager"})
        )
        # A request this user is responsible for, of an order they may not see.
        assigned = self._submit(order, {self.product: 1})
        assigned.write({"user_id": user.id})
        assigned.action_approve()
        self._receive(assigned)
        self.assertEqual(assigned.state, "received")
        self.assertTrue(assigned.with_user(user).read(["name"]), "the request is theirs")
        Wizard = self.env[WIZARD].with_user(user)
        doors = [
            ("order: Refund", lambda: order.with_user(user).action_refund()),
            ("order: Retry Refund", lambda: order.with_user(user).action_retry_refund()),
            ("order: Refund window", lambda: order.with_user(user).action_open_refund_wizard()),
            (
                "order: refund chosen",
                lambda: self._engine_refund(order.with_user(user), reason="Mine?"),
            ),
            (
                "window: default values",
                lambda: Wizard.with_context(default_order_id=order.id).default_get(
                    ["order_id", "line_ids", "include_delivery"]
                ),
            ),
            ("window: create", lambda: Wizard.create({"order_id": order.id, "reason": "Mine?"}).id),
            ("window: Refund", lambda: managers_wizard.with_user(user).action_refund()),
            ("request: Refund", lambda: request.with_user(user).action_refund()),
            ("request: Retry Refund", lambda: request.with_user(user).action_retry_refund()),
            ("assigned request: Refund", lambda: assigned.with_user(user).action_refund()),
            ("payment: Refund", lambda: tx.with_user(user).action_refund()),
            ("payment: Refund an amount", lambda: tx.with_user(user).action_refund(1.0)),
            ("refund: Retry", lambda: failed.with_user(user).action_retry_refund()),
            ("refund: Cancel", lambda: failed.with_user(user).action_cancel_refund()),
            ("refund: Mark as Paid", lambda: pending.with_user(user).action_mark_refund_paid()),
            ("payment of no order: Refund", lambda: orderless.with_user(user).action_refund()),
        ]
        self.assertEqual(self._doors_left_open(doors), [])
        self.assertEqual(failed.state, "error")
        self.assertEqual(pending.state, "pending")
        self.assertEqual(request.state, "received")

    def test_a_payment_of_no_order_is_refunded_by_superuser_code_only(self):
        orderless = self.env["payment.transaction"].create(
            {
                "acquirer_id": self.acquirer_test.id,
                "amount": 30.0,
                "currency_id": self.company.currency_id.id,
                "partner_id": self.customer.id,
                "reference": "INVOICE-PAYMENT-OF-NO-ORDER-2",
            }
        )
        with self.assertRaisesRegex(AccessError, "belongs to no order"):
            orderless.with_user(self.refunder).action_refund()
        self.assertFalse(orderless.refund_transaction_ids)
        # Code running as superuser (a script, the engine's own tests) still can.
        self.assertEqual(orderless.action_refund(30.0).state, "done")

    def test_own_orders_are_still_refunded_by_their_salesman(self):
        order, tx = self._paid_order_of(self.own_refunder)
        order.with_user(self.own_refunder).action_refund()
        self.assertEqual(tx.refund_transaction_ids.mapped("state"), ["done"])
        self.assertEqual(order.online_refundable_amount, 0.0)
