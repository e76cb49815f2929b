"""One ledger for every refund door: a unit or a cent never goes back twice,
whatever the sequence of doors (the Refund window, a return request, a retry,
a refund given up, a follow-up that failed)."""

from unittest.mock import patch

from flectra.exceptions import UserError, ValidationError
from flectra.tests import tagged
from flectra.tools import mute_logger

from .common import load_migration
from .refund_common import RefundCase
from .return_common import ReturnMixin


@tagged("post_install", "-at_install")
class TestRefundLedger(ReturnMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()

    def _lamps_and_setup(self):
        """Two lamps (50 each) and a setup service (10), paid and delivered:
        the money left never stops a second refund of a lamp by itself."""
        order, tx = self._paid_order(lines=[(self.product, 2), (self.service, 1)])
        self._deliver(order)
        lamp = order.order_line.filtered(lambda line: line.product_id == self.product)
        return order, tx, lamp

    def _received(self, order, quantity):
        request = self._submit(order, {self.product: quantity})
        request.action_approve()
        self._receive(request, {self.product: quantity})
        self.assertEqual(request.state, "received")
        return request

    def _ledger(self, order, line):
        return (
            order.sudo()
            .refund_ledger_ids._filter_holding()
            .filtered(lambda entry: entry.sale_line_id == line)
        )

    def test_each_refund_writes_its_lines_and_amounts(self):
        order, _tx, lamp = self._lamps_and_setup()
        self._engine_refund(
            order.with_user(self.refunder), line_quantities={lamp: 1}, reason="Dented"
        )
        self._engine_refund(order.with_user(self.refunder), amount=5.0, reason="Late delivery")
        entries = order.sudo().refund_ledger_ids
        self.assertEqual(
            sorted((e.kind, e.sale_line_id.id, e.quantity, e.amount) for e in entries),
            sorted([("product", lamp.id, 1.0, 50.0), ("amount", False, 0.0, 5.0)]),
        )
        self.assertEqual(self.env["sale.order.refund.line"]._get_left_quantities(order)[lamp], 1.0)

    def test_a_unit_refunded_in_the_window_is_not_refunded_again_by_a_return(self):
        order, tx, lamp = self._lamps_and_setup()
        # The salesperson refunds one lamp; the customer keeps it.
        self._engine_refund(
            order.with_user(self.refunder), line_quantities={lamp: 1}, reason="Dented"
        )
        info = {entry["line"]: entry for entry in order._get_return_lines_info()}[lamp]
        self.assertEqual((info["refunded"], info["returnable"]), (1.0, 1.0))
        with self.assertRaisesRegex(ValidationError, "at most 1"):
            self._submit(order, {self.product: 2})
        request = self._received(order, 1)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        self.assertEqual(tx.refunded_amount, 100.0, "each lamp once, the setup never")
        self.assertEqual(sum(self._ledger(order, lamp).mapped("quantity")), 2.0)
        info = {entry["line"]: entry for entry in order._get_return_lines_info()}[lamp]
        self.assertEqual(info["returnable"], 0.0)

    def test_a_return_received_after_the_window_refunded_its_lamp_pays_nothing_more(self):
        order, tx, lamp = self._lamps_and_setup()
        request = self._received(order, 1)
        # The salesperson refunds both lamps from the window before pressing the request's button.
        self._engine_refund(
            order.with_user(self.refunder), line_quantities={lamp: 2}, reason="Recall"
        )
        with self.assertRaisesRegex(UserError, "Nothing of .* is left to refund"):
            request.with_user(self.refunder).action_refund()
        self.assertEqual(tx.refunded_amount, 100.0)
        self.assertEqual(request.state, "received")

    def test_request_refunded_again_after_its_refund_was_cancelled_pays_once(self):
        order, tx, _lamp = self._lamps_and_setup()
        request = self._received(order, 1)
        Transaction = type(self.env["payment.transaction"])
        with patch.object(
            Transaction,
            "_test_send_refund",
            lambda refund: refund._set_refund_state("error", "Refused"),
        ):
            request.with_user(self.refunder).action_refund()
        refused = request.refund_transaction_ids
        self.assertEqual(refused.state, "error")
        refused.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refused.state, "cancel")
        self.assertEqual(tx.refunded_amount, 0.0)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded", "the refund given up does not hold it back")
        self.assertEqual(tx.refunded_amount, 50.0)
        self.assertEqual(request.line_ids.quantity_refunded, 1.0)

    def test_request_whose_follow_up_failed_is_settled_not_refunded_again(self):
        order, tx, _lamp = self._lamps_and_setup()
        request = self._received(order, 1)
        RefundEngine = type(self.env["sale.order.refund.engine"])
        with (
            patch.object(RefundEngine, "_follow_up", side_effect=RuntimeError("SMTP down")),
            mute_logger("flectra.addons.website_sale_order_handling.models.refund_engine"),
        ):
            request.with_user(self.refunder).action_refund()
        self.assertEqual(request.refund_transaction_ids.state, "done")
        self.assertEqual(request.state, "received", "the follow-up that marks it failed")
        # The salesperson presses Refund again: nothing is sent, the request says what happened.
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        self.assertEqual(len(request.refund_transaction_ids), 1)
        self.assertEqual(tx.refunded_amount, 50.0)
        self.assertIn("nothing was sent again", request.message_ids[:1].body)

    def test_refunds_of_the_previous_version_get_their_ledger_lines(self):
        """migrations/2.0.1.3.0/post-refund-ledger.py on this database's tables."""
        script = load_migration("2.0.1.3.0", "post-refund-ledger.py")
        order, _tx, lamp = self._lamps_and_setup()
        self._engine_refund(
            order.with_user(self.refunder), line_quantities={lamp: 1}, reason="Dented"
        )
        self._engine_refund(order.with_user(self.refunder), amount=5.0, reason="Late delivery")
        by_lines, by_amount = order.sudo().refund_transaction_ids.sorted("id")
        self.env["base"].flush()
        cr = self.env.cr
        # As 2.0.1.2.0 left them: quantities in a JSON column, no ledger.
        cr.execute("ALTER TABLE payment_transaction ADD COLUMN refund_line_quantities TEXT")
        cr.execute(
            "UPDATE payment_transaction SET refund_line_quantities = %s WHERE id = %s",
            ('{"%d": 1.0}' % lamp.id, by_lines.id),
        )
        cr.execute("DELETE FROM sale_order_refund_line WHERE order_id = %s", (order.id,))
        self.env.cache.invalidate()
        script.migrate(cr, "2.0.1.2.0")
        self.env.cache.invalidate()
        self.assertEqual(
            [(e.kind, e.quantity, e.amount) for e in by_lines.refund_ledger_ids],
            [("product", 1.0, 50.0)],
        )
        self.assertEqual(
            [(e.kind, e.amount) for e in by_amount.refund_ledger_ids], [("amount", 5.0)]
        )
        self.assertEqual(self.env["sale.order.refund.line"]._get_left_quantities(order)[lamp], 1.0)


@tagged("post_install", "-at_install")
class TestRefundDoorSequences(ReturnMixin, RefundCase):
    """Every order of the refund doors, on the Test acquirer and on the Stripe
    stub, with a refused attempt retried: each lamp and each cent goes back
    once, and what Stripe paid is what the ledger holds."""

    DOORS = ("window: a lamp", "window: an amount", "return", "payment button")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()

    def _door(self, name, order, tx, lamp):
        """Press one door as the refund manager; False when it refused."""
        user = self.refunder
        try:
            if name == "window: a lamp":
                self._engine_refund(
                    order.with_user(user), line_quantities={lamp: 1}, reason="Dented"
                )
            elif name == "window: an amount":
                self._engine_refund(order.with_user(user), amount=5.0, reason="Late delivery")
            elif name == "return":
                info = {e["line"]: e for e in order._get_return_lines_info()}[lamp]
                if not info["returnable"]:
                    return False
                request = self._submit(order, {self.product: info["returnable"]})
                request.action_approve()
                self._receive(request)
                request.with_user(user).action_refund()
            elif name == "payment button":
                tx.with_user(user).action_refund()
            elif name == "refund button":
                order.with_user(user).action_refund()
        except UserError:
            return False
        return True

    def _retry_failed(self, tx):
        for failed in tx.refund_transaction_ids.filtered(lambda r: r._is_failed_refund()):
            failed.with_user(self.refunder).action_retry_refund()

    def _check_once(self, order, tx, lamp, stub=None):
        holding = order.sudo().refund_ledger_ids._filter_holding()
        lamps = sum(holding.filtered(lambda e: e.sale_line_id == lamp).mapped("quantity"))
        self.assertLessEqual(lamps, 2.0, "a lamp refunded twice")
        self.assertLessEqual(tx.refunded_amount, order.amount_total, "a cent refunded twice")
        self.assertAlmostEqual(sum(holding.mapped("amount")), tx.refunded_amount, 2)
        if stub is not None:
            done = tx.refund_transaction_ids.filtered(lambda r: r.state == "done")
            paid = (
                sum(r["amount"] for r in stub.refunds if r["charge"] == tx.acquirer_reference)
                / 100.0
            )
            self.assertAlmostEqual(paid, -sum(done.mapped("amount")), 2, "Stripe paid it once")

    def _run_sequences(self, acquirer=None, stub=None):
        self.sequences_run = []
        sequences = [
            ("window: a lamp", "return", "window: an amount", "payment button"),
            ("return", "window: a lamp", "payment button", "window: an amount"),
            ("window: an amount", "payment button", "return", "window: a lamp"),
            ("payment button", "return", "window: a lamp", "window: an amount"),
            ("window: a lamp", "window: a lamp", "return", "return"),
        ]
        for sequence in sequences:
            for refused_first in (False, True):
                with self.subTest(sequence=sequence, refused_first=refused_first):
                    self.sequences_run.append(sequence)
                    order, tx = self._paid_order(
                        lines=[(self.product, 2), (self.service, 1)],
                        acquirer=acquirer,
                        **(
                            {"acquirer_reference": "ch_seq_%d" % len(self.sequences_run)}
                            if stub is not None
                            else {}
                        ),
                    )
                    self._deliver(order)
                    lamp = order.order_line.filtered(lambda ln: ln.product_id == self.product)
                    for index, door in enumerate(sequence):
                        refuse = refused_first and index == 0
                        if refuse:
                            if stub is not None:
                                stub.mode = "error"
                            patcher = (
                                patch.object(
                                    type(tx),
                                    "_test_send_refund",
                                    lambda r: r._set_refund_state("error", "Refused"),
                                )
                                if stub is None
                                else None
                            )
                            if patcher:
                                patcher.start()
                        self._door(door, order, tx, lamp)
                        if refuse:
                            if stub is not None:
                                stub.mode = "succeeded"
                            if patcher:
                                patcher.stop()
                            self._retry_failed(tx)
                        self._check_once(order, tx, lamp, stub)
                    # Whatever went before, the Refund button gives back exactly the rest.
                    self._door("refund button", order, tx, lamp)
                    self._check_once(order, tx, lamp, stub)
                    self.assertAlmostEqual(tx.refunded_amount, order.amount_total, 2)
                    self.assertEqual(order.online_refundable_amount, 0.0)

    def test_door_sequences_on_the_test_acquirer(self):
        self._run_sequences()

    def test_door_sequences_on_the_stripe_stub(self):
        acquirer, stub = self._stripe_with_stub()
        self._run_sequences(acquirer, stub)
