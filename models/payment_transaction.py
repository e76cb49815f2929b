import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

import requests
from werkzeug import urls

from flectra import _, api, fields, models
from flectra.exceptions import AccessError, UserError
from flectra.tools import consteq, float_repr, float_round
from flectra.tools.misc import hmac, split_every

from .refund_engine import (
    REFUND_INTERRUPTED_AFTER,
    REFUND_RESERVING_STATES,
    as_refund_engine,
    is_refund_engine,
)

_logger = logging.getLogger(__name__)

# Fields that make a transaction a refund, or tie it to what it refunds.
REFUND_ONLY_FIELDS = frozenset(
    {
        "is_refund",
        "source_transaction_id",
        "refund_sale_order_id",
        "refund_idempotency_key",
        "refund_move_ids",
        "refund_ledger_ids",
        "refund_first_id",
    }
)
# Fields of a refund transaction that say how much goes where, and whether it went.
REFUND_TRUSTED_FIELDS = REFUND_ONLY_FIELDS | {
    "amount",
    "state",
    "acquirer_id",
    "currency_id",
    "acquirer_reference",
    "reference",
    "partner_id",
    "refund_customer_notified",
}
# Flectra's payment processing (its _set_transaction_* methods) is what may
# change a captured payment; its mark, like the refund engine's, is a context
# value no RPC client can send.
_PAYMENT_PROCESSING = object()
_PAYMENT_PROCESSING_KEY = "website_sale_order_handling_payment_processing"
# A payment is captured once pending: the customer paid, or said they would.
CAPTURED_STATES = ("pending", "authorized", "done")
# The states whose values the capture seal vouches for.
SEALED_STATES = ("authorized", "done")
# What refunds trust of a captured payment: how much, to whom, through which
# provider and provider reference, for which orders.
CAPTURE_TRUSTED_FIELDS = frozenset(
    {
        "state",
        "amount",
        "currency_id",
        "acquirer_id",
        "acquirer_reference",
        "stripe_payment_intent",
        "partner_id",
        "sale_order_ids",
    }
)
CAPTURE_SEAL_SCOPE = "website_sale_order_handling.capture_seal"
ORIGIN_SEAL_SCOPE = "website_sale_order_handling.origin_seal"
# Stripe forgets an idempotency key after 24 hours; past this age a retry first
# asks Stripe for the refunds already made.
STRIPE_IDEMPOTENCY_WINDOW = timedelta(hours=23)


def as_payment_processing(records):
    """``records`` with the right to write a captured payment."""
    return records.with_context(**{_PAYMENT_PROCESSING_KEY: _PAYMENT_PROCESSING})


# Flectra's processing steps run inside ``payment_processing()``: a mark of
# this thread, so that they call super() on their own recordset (every
# add-on's override below ours sees the same records and context).
_processing = threading.local()


@contextmanager
def payment_processing():
    """Mark this thread as running Flectra's payment processing until the
    block ends (an RPC call cannot open such a block)."""
    depth = getattr(_processing, "depth", 0)
    _processing.depth = depth + 1
    try:
        yield
    finally:
        _processing.depth = depth


def is_payment_processing(env):
    return (
        env.context.get(_PAYMENT_PROCESSING_KEY) is _PAYMENT_PROCESSING
        or getattr(_processing, "depth", 0) > 0
    )


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    is_refund = fields.Boolean(
        "Refund",
        readonly=True,
        index=True,
        copy=False,
        help="Money sent back to the customer; never treated as a payment of an order.",
    )
    source_transaction_id = fields.Many2one(
        "payment.transaction",
        "Refunded Payment",
        readonly=True,
        index=True,
        ondelete="restrict",
        copy=False,
    )
    refund_transaction_ids = fields.One2many(
        "payment.transaction",
        "source_transaction_id",
        "Refunds",
        readonly=True,
    )
    refund_move_ids = fields.Many2many(
        "account.move",
        "payment_transaction_refund_move_rel",
        "transaction_id",
        "move_id",
        string="Credit Notes",
        readonly=True,
        copy=False,
        help="Posted once the acquirer accepts the refund, and reconciled with its payment.",
    )
    refund_idempotency_key = fields.Char(
        readonly=True,
        copy=False,
        help="Sent with every attempt of this refund, so the acquirer never refunds it twice.",
    )
    refund_ledger_ids = fields.One2many(
        "sale.order.refund.line",
        "refund_id",
        readonly=True,
        copy=False,
        help="What this refund gives back per order line, shipping and amount: what "
        "every refund door reads to know what is left to refund.",
    )
    refund_first_id = fields.Many2one(
        "payment.transaction",
        "Refunded Together With",
        readonly=True,
        index=True,
        ondelete="set null",
        copy=False,
        help="A refund split over several payments: the first refund of the split, "
        "which keeps the ledger lines of them all.",
    )
    refund_split_ids = fields.One2many(
        "payment.transaction",
        "refund_first_id",
        "Rest of the Split",
        readonly=True,
    )
    refund_customer_notified = fields.Boolean(
        readonly=True,
        copy=False,
        help="The credit note was posted and the customer told once the acquirer accepted.",
    )
    refund_sale_order_id = fields.Many2one(
        "sale.order",
        "Refunded Order",
        readonly=True,
        index=True,
        ondelete="restrict",
        copy=False,
        help="The order whose share of the payment this refund gives back.",
    )
    refund_order_ids = fields.Many2many(
        "sale.order",
        string="Refunded Orders",
        compute="_compute_refund_order_ids",
    )
    capture_seal = fields.Char(
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Signs the payment's values as the payment processing captured them: "
        "refunds refuse a payment whose values no longer match.",
    )
    origin_seal = fields.Char(
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Signs the payment's values as trusted code created it (the shop, in "
        "sudo): only such a payment is sealed when it is captured.",
    )
    refunded_amount = fields.Monetary(
        compute="_compute_refunded_amount",
        currency_field="currency_id",
        help="Refunds done, pending or failed without being cancelled.",
    )
    refundable_amount = fields.Monetary(
        compute="_compute_refunded_amount",
        currency_field="currency_id",
    )

    @api.depends("refund_sale_order_id", "source_transaction_id.sale_order_ids")
    def _compute_refund_order_ids(self):
        for tx in self:
            tx.refund_order_ids = tx._get_refunded_orders()

    def _get_refunded_orders(self):
        """The order this refund gives money back for (older refunds: every
        order of the refunded payment)."""
        self.ensure_one()
        return self.refund_sale_order_id or self.source_transaction_id.sale_order_ids

    @api.depends("amount", "state", "refund_transaction_ids.state", "refund_transaction_ids.amount")
    def _compute_refunded_amount(self):
        for tx in self:
            if tx.is_refund:
                tx.refunded_amount = tx.refundable_amount = 0.0
                continue
            tx.refunded_amount = -sum(tx._get_reserving_refunds().mapped("amount"))
            captured = tx.amount if tx.state == "done" else 0.0
            tx.refundable_amount = max(tx.currency_id.round(captured - tx.refunded_amount), 0.0)

    # ------------------------------------------------------------------
    # Only the refund code writes what refunds trust
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        if not is_refund_engine(self.env) and any(
            vals.get(field) for vals in vals_list for field in REFUND_ONLY_FIELDS
        ):
            raise AccessError(
                _("Refunds are made with the Refund button of an order, a return or a payment.")
            )
        if any("capture_seal" in vals or "origin_seal" in vals for vals in vals_list):
            self._check_may_seal()
        if not self._may_write_captures() and any(
            vals.get("state") not in (None, False, "draft") for vals in vals_list
        ):
            raise AccessError(
                _("A payment is created as a draft: only the payment processing captures it.")
            )
        records = super().create(vals_list)
        if self._may_seal_origin():
            # Created by trusted code (the shop's checkout runs in sudo): a
            # payment a user created over RPC, and drove through Flectra's
            # public processing methods, is never trusted by refunds.
            records._seal_origin()
            # Captured at creation (the test acquirer does).
            records._seal_capture()
        return records

    def write(self, vals):
        if "capture_seal" in vals or "origin_seal" in vals:
            self._check_may_seal()
        if not self._may_write_captures():
            self._check_captures_unchanged(vals)
        if not is_refund_engine(self.env):
            forbidden = REFUND_ONLY_FIELDS.intersection(vals)
            if not forbidden and REFUND_TRUSTED_FIELDS.intersection(vals):
                if self.sudo().filtered("is_refund"):
                    forbidden = REFUND_TRUSTED_FIELDS.intersection(vals)
            if forbidden:
                raise AccessError(
                    _("Only the refund buttons change a refund (%s).", ", ".join(sorted(forbidden)))
                )
        if "state" in vals:
            # These follow a refund's state without depending on it (else every
            # payment's state change would look them up, at each checkout):
            # their cached values are dropped here instead.
            self.env["sale.order.refund.line"].invalidate_cache(["refund_state"])
            self.env["sale.return.request"].invalidate_cache(["has_failed_refund"])
        return super().write(vals)

    def init(self):
        res = super().init()
        # The order queues search the orders of pending offline payments
        # (sale.order._get_awaiting_payment_domain): few among all payments.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS payment_transaction_wsoh_pending_index
                ON payment_transaction (acquirer_id) WHERE state = 'pending'
            """
        )
        return res

    # ------------------------------------------------------------------
    # Captured payments: changed by the payment processing only, sealed for refunds
    # ------------------------------------------------------------------

    def _may_write_captures(self):
        """Trusted code, and accountants, who answer for the money anyway (as
        Flectra's own accounting tests do, writing a provider's answer by
        hand). What they write by hand is not sealed: refunds never use it."""
        return (
            self.env.su
            or is_payment_processing(self.env)
            or is_refund_engine(self.env)
            or self.env.user.has_group("account.group_account_user")
        )

    def _may_seal_origin(self):
        return self.env.su or is_payment_processing(self.env) or is_refund_engine(self.env)

    def _check_may_seal(self):
        if not (is_payment_processing(self.env) or is_refund_engine(self.env)):
            raise AccessError(_("Only the payment processing seals a captured payment."))

    def _check_captures_unchanged(self, vals):
        """Refuse, to users, a state set outside the payment processing, and a
        change of what refunds trust on a captured payment."""
        if "state" in vals:
            raise AccessError(_("A payment's state is set by the payment processing only."))
        changed = CAPTURE_TRUSTED_FIELDS.intersection(vals)
        if not changed:
            return
        captured = self.sudo().filtered(lambda tx: tx.state in CAPTURED_STATES)
        if captured:
            raise AccessError(
                _(
                    "%(payments)s: a captured payment cannot be changed (%(fields)s).",
                    payments=", ".join(captured.mapped("reference")),
                    fields=", ".join(sorted(changed)),
                )
            )

    @api.model
    def _check_order_links_unchanged(self, orders, commands):
        """Refuse, to users, linking a captured payment to orders or unlinking
        it, from the orders' side (``commands``: their ``transaction_ids``)."""
        if self._may_write_captures():
            return
        current = orders.sudo().transaction_ids
        if isinstance(commands, models.BaseModel):
            commands = [(6, 0, commands.ids)]
        elif commands and all(isinstance(command, int) for command in commands):
            commands = [(6, 0, commands)]
        touched = self.browse()
        for command in commands or []:
            if command[0] in (2, 3, 4):
                touched |= self.browse(command[1])
            elif command[0] == 5:
                touched |= current
            elif command[0] == 6:
                new = self.browse(command[2])
                touched |= (current - new) | (new - current)
        captured = touched.sudo().exists().filtered(lambda tx: tx.state in CAPTURED_STATES)
        if captured:
            raise AccessError(
                _(
                    "%s: a captured payment's orders cannot be changed.",
                    ", ".join(captured.mapped("reference")),
                )
            )

    # The provider's answer is recorded by Flectra's processing, which may write
    # a provider reference on an authorized payment before capturing it
    # (Authorize.net's Capture button, pressed by a salesman): processing too.
    # Refunds still trust only what their seals vouch for.
    @api.model
    def form_feedback(self, data, acquirer_name):
        with payment_processing():
            return super().form_feedback(data, acquirer_name)

    def s2s_do_transaction(self, **kwargs):
        with payment_processing():
            return super().s2s_do_transaction(**kwargs)

    def s2s_capture_transaction(self, **kwargs):
        with payment_processing():
            return super().s2s_capture_transaction(**kwargs)

    def s2s_void_transaction(self, **kwargs):
        with payment_processing():
            return super().s2s_void_transaction(**kwargs)

    def _set_transaction_pending(self):
        with payment_processing():
            return super()._set_transaction_pending()

    def _set_transaction_authorized(self):
        reaching = self.filtered(lambda tx: tx.state != "authorized")
        with payment_processing():
            res = super()._set_transaction_authorized()
        # Only those it moved: an earlier capture keeps the seal it got then.
        reaching.filtered(lambda tx: tx.state == "authorized")._seal_capture()
        return res

    def _set_transaction_done(self):
        reaching = self.filtered(lambda tx: tx.state != "done")
        with payment_processing():
            res = super()._set_transaction_done()
        reaching.filtered(lambda tx: tx.state == "done")._seal_capture()
        return res

    def _set_transaction_cancel(self):
        with payment_processing():
            return super()._set_transaction_cancel()

    def _set_transaction_error(self, msg):
        with payment_processing():
            return super()._set_transaction_error(msg)

    def _get_capture_seal(self):
        """The HMAC, with the database secret, of what refunds trust of this payment."""
        self.ensure_one()
        tx = self.sudo()
        currency = tx.currency_id
        intent = tx["stripe_payment_intent"] if "stripe_payment_intent" in tx._fields else False
        return hmac(
            tx.env,
            CAPTURE_SEAL_SCOPE,
            (
                tx.id,
                float_repr(currency.round(tx.amount), currency.decimal_places),
                currency.id,
                tx.acquirer_id.id,
                tx.acquirer_reference or "",
                # Sealed alike before and after payment_stripe is installed.
                intent or "",
                tx.partner_id.id,
                sorted(tx.sale_order_ids.ids),
            ),
        )

    def _get_origin_seal(self):
        """The HMAC of what this payment was created with: its amount, currency,
        acquirer, customer and orders."""
        self.ensure_one()
        tx = self.sudo()
        currency = tx.currency_id
        return hmac(
            tx.env,
            ORIGIN_SEAL_SCOPE,
            (
                tx.id,
                float_repr(currency.round(tx.amount), currency.decimal_places),
                currency.id,
                tx.acquirer_id.id,
                tx.partner_id.id,
                sorted(tx.sale_order_ids.ids),
            ),
        )

    def _seal_origin(self, as_they_stand=False):
        """Seal what trusted code created these payments with, when a payment
        matches its orders (Flectra's public payment route creates, in sudo, a
        payment of any amount, for any customer, for any order).
        ``as_they_stand``: the install and the upgrade seal the payments made
        before, whatever their orders became since."""
        for tx in self.sudo().filtered(lambda t: not t.is_refund):
            if not as_they_stand and not tx._matches_its_orders():
                _logger.info(
                    "Payment %s does not match its orders (amount, currency or customer): "
                    "refunds leave it out",
                    tx.reference,
                )
                continue
            as_payment_processing(tx).write({"origin_seal": tx._get_origin_seal()})

    def _matches_its_orders(self):
        """Of its orders' customer, in their currency, and asking no more than
        they cost (a payment of no order, an invoice's, is not the shop's to
        judge)."""
        self.ensure_one()
        orders = self.sale_order_ids
        if not orders:
            return True
        if orders.currency_id != self.currency_id:
            return False
        if orders.partner_id.commercial_partner_id != self.partner_id.commercial_partner_id:
            return False
        total = sum(orders.mapped("amount_total"))
        return self.currency_id.compare_amounts(self.amount, total) <= 0

    def _is_refund_source(self):
        """A captured payment refunds may use: captured as trusted code created
        it (sealed), or at least created so (its seal is then checked, and a
        payment changed since is refused loudly). A payment a user created by
        hand, or one that does not match its orders, is left out."""
        self.ensure_one()
        tx = self.sudo()
        return (
            tx.state == "done"
            and not tx.is_refund
            and bool(tx.capture_seal or tx._has_trusted_origin())
        )

    def _has_trusted_origin(self):
        self.ensure_one()
        tx = self.sudo()
        return bool(tx.origin_seal) and consteq(tx.origin_seal, tx._get_origin_seal())

    def _seal_capture(self):
        """Seal the payments of these that are captured, if trusted code created
        them as they are (refunds are not sealed: only the refund code writes
        them). Unsealed, a payment is never refunded by the add-on."""
        for tx in self.sudo().filtered(lambda t: t.state in SEALED_STATES and not t.is_refund):
            if not tx._has_trusted_origin():
                _logger.warning(
                    "Payment %s was captured, but not as trusted code created it: "
                    "it is not sealed, refunds will refuse it",
                    tx.reference,
                )
                continue
            as_payment_processing(tx).write({"capture_seal": tx._get_capture_seal()})

    @api.model
    def _seal_existing_captures(self):
        """Seal the captured payments that have no seal yet (the add-on's
        install, the upgrade to 2.0.1.3.0): taken as they stand. Returns how many."""
        unsealed = self.sudo().search([("is_refund", "=", False), ("origin_seal", "=", False)])
        for batch in split_every(1000, unsealed.ids, self.sudo().browse):
            batch._seal_origin(as_they_stand=True)
            batch.flush()
            batch.invalidate_cache()
        captured = self.sudo().search(
            [
                ("state", "in", SEALED_STATES),
                ("is_refund", "=", False),
                ("capture_seal", "=", False),
            ]
        )
        for batch in split_every(1000, captured.ids, self.sudo().browse):
            batch._seal_capture()
            batch.flush()
            batch.invalidate_cache()
        return len(captured)

    def _check_capture_seal(self):
        """Refunds use a captured payment's values only as the payment processing
        captured them: a payment changed since (by a script, in SQL) is refused."""
        for tx in self.sudo().filtered(lambda t: t.state in SEALED_STATES and not t.is_refund):
            if not tx.capture_seal and not tx._has_trusted_origin():
                raise UserError(
                    _(
                        "%s cannot be refunded here: the shop did not create this payment as it "
                        "is (made by hand, or not matching its orders' amount or customer). "
                        "Check it against the acquirer's records and refund the customer there.",
                        tx.reference,
                    )
                )
            if not (tx.capture_seal and consteq(tx.capture_seal, tx._get_capture_seal())):
                raise UserError(
                    _(
                        "%s cannot be refunded here: its amount, currency, acquirer, provider "
                        "reference, customer or orders were changed outside the payment "
                        "processing after it was captured. Check it against the acquirer's "
                        "records.",
                        tx.reference,
                    )
                )

    # ------------------------------------------------------------------
    # Shares of a payment that paid several orders
    # ------------------------------------------------------------------

    def _get_order_shares(self):
        """{(payment id, order id): part of that payment that paid that order}.

        A payment may pay several orders (``sale_order_ids``). Payments are
        taken oldest first (by id) and each pays its orders in the order they
        were created (by id): an order takes what it still owes (its total,
        minus what older payments paid of it), never more. What a payment took
        beyond its orders' totals is no order's: an order never gets back more
        than it cost, whatever payments were linked to it (Flectra's public
        payment route links a payment of any amount to an order). Computed over
        every captured payment that shares an order with these, so that the
        shares of one payment and of one order always add up.
        """
        payments = self.filtered(lambda tx: tx._is_refund_source())
        orders = payments.sale_order_ids
        while True:
            linked = orders.transaction_ids.filtered(lambda tx: tx._is_refund_source())
            if linked <= payments:
                break
            payments |= linked
            orders |= linked.sale_order_ids
        owed = {order.id: order.amount_total for order in orders}
        shares = {}
        for payment in payments.sorted("id"):
            currency = payment.currency_id
            left = payment.amount
            for order in payment.sale_order_ids.sorted("id"):
                part = max(currency.round(min(owed[order.id], left)), 0.0)
                shares[payment.id, order.id] = part
                owed[order.id] -= part
                left -= part
        return shares

    def _get_order_refundable_amount(self, order, exclude=None):
        """What ``order`` may still get back from this payment: its own share,
        minus its refunds, and never more than the payment has left.
        ``exclude``: a refund not to count (the one being retried)."""
        self.ensure_one()
        if self.is_refund or self.state != "done" or order not in self.sale_order_ids:
            return 0.0
        share = self._get_order_shares().get((self.id, order.id), 0.0)
        own = self._get_reserving_refunds(exclude).filtered(
            lambda r: r.refund_sale_order_id == order
        )
        left = self.currency_id.round(share + sum(own.mapped("amount")))
        return max(min(left, self._get_payment_left(exclude)), 0.0)

    def _get_reserving_refunds(self, exclude=None):
        """This payment's refunds that hold back its money, but ``exclude``."""
        return self.refund_transaction_ids.filtered(
            lambda r: r.state in REFUND_RESERVING_STATES and r != exclude
        )

    def _get_payment_left(self, exclude=None):
        """What this payment has left to refund, not counting the refund ``exclude``."""
        self.ensure_one()
        reserved = self._get_reserving_refunds(exclude)
        return self.currency_id.round(self.amount + sum(reserved.mapped("amount")))

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_refund(self, amount_to_refund=None):
        """Refund this payment (all of what is left when no amount is given).

        Returns the refund transaction, in the state the acquirer answered.
        """
        self.ensure_one()
        result = self.env["sale.order.refund.engine"]._refund(self, amount=amount_to_refund)
        return self.sudo().browse(result["refund_ids"])

    def action_retry_refund(self):
        """Send a failed refund again, with its own idempotency key."""
        self.env["sale.order.refund.engine"]._refund(self, retry=True)
        return True

    def action_cancel_refund(self):
        """Give up a failed refund: it no longer holds back the payment's money.

        A refund the provider made after all is recorded instead, and the user
        told; for the others, only safe once the acquirer's dashboard shows it
        never happened.
        """
        engine = self.env["sale.order.refund.engine"]
        made = engine._cancel_refunds(self)
        return engine._cancel_notification(made) if made else True

    def action_mark_refund_paid(self):
        """Accounting has paid a pending refund (bank transfer, cash, Stripe dashboard)."""
        return self.env["sale.order.refund.engine"]._mark_refunds_paid(self)

    # ------------------------------------------------------------------
    # Refund hooks of the engine (models/refund_engine.py), per provider
    # ------------------------------------------------------------------
    def _is_failed_refund(self):
        """In error, or a draft whose attempt was interrupted (no answer recorded)."""
        self.ensure_one()
        if not self.is_refund:
            return False
        if self.state == "draft":
            return self.write_date < fields.Datetime.now() - REFUND_INTERRUPTED_AFTER
        return self.state == "error"

    def _check_refundable_by_provider(self):
        """Provider-specific checks, run before anything is created or sent."""
        self.ensure_one()
        if self.provider == "stripe" and not (
            self["stripe_payment_intent"] or self.acquirer_reference
        ):
            raise UserError(
                _(
                    "%s has no Stripe payment reference: refund it from Stripe's dashboard.",
                    self.reference,
                )
            )

    def _find_refund_at_provider(self):
        """What the provider answers about this refund (``_<provider>_find_refund``),
        or None: it never got it, or the acquirer has no outside provider to
        ask (test acquirer, wire transfer). A UserError when it cannot be asked."""
        self.ensure_one()
        method = getattr(self, "_%s_find_refund" % self.provider, None)
        if not method:
            return None
        try:
            return method()
        except (requests.exceptions.RequestException, ValueError) as err:
            _logger.warning(
                "Refund %s: cannot ask %s about it: %s", self.reference, self.provider, err
            )
            raise UserError(
                _(
                    "Could not ask %(acquirer)s whether refund %(ref)s was made (%(error)s): "
                    "it is not cancelled. Try again later.",
                    acquirer=self.acquirer_id.name,
                    ref=self.reference,
                    error=err.__class__.__name__,
                )
            ) from None

    def _apply_refund_answer(self, answer):
        """Record the provider's answer about this refund
        (``_<provider>_apply_refund_answer``)."""
        self.ensure_one()
        getattr(self, "_%s_apply_refund_answer" % self.provider)(answer)

    def _send_refund(self):
        """Hand the refund to its acquirer: ``_<provider>_send_refund`` sets its state."""
        self.ensure_one()
        method = getattr(self, "_%s_send_refund" % self.provider, None)
        if not method:
            raise UserError(self.acquirer_id._get_refund_unsupported_message())
        method()

    def test_create(self, values):
        # payment_test marks every new transaction done at once; a refund
        # must start as draft so that its acceptance is handled like any other.
        if values.get("is_refund"):
            return {}
        return super().test_create(values)

    def _test_send_refund(self):
        # The test acquirer refunds at once (its create() may already have set done).
        self._set_refund_state("done")

    def _transfer_send_refund(self):
        # Accounting pays it by hand and then marks it done ("Refunds to Pay").
        self._set_refund_state("pending")

    def _stripe_send_refund(self):
        # Only Stripe transactions get here, so payment_stripe is installed;
        # the add-on itself does not depend on it.
        from flectra.addons.payment_stripe.models.payment import INT_CURRENCIES

        acquirer = self.acquirer_id
        source = self.source_transaction_id
        if self.create_date < fields.Datetime.now() - STRIPE_IDEMPOTENCY_WINDOW:
            # Stripe may have forgotten our key: a refund it made for an
            # earlier attempt is found by its reference, never made again.
            try:
                made = self._stripe_find_refund()
            except (requests.exceptions.RequestException, ValueError) as err:
                _logger.warning("Stripe refund %s: cannot list refunds: %s", self.reference, err)
                self._set_refund_state(
                    "error",
                    _(
                        "Could not ask Stripe whether this refund was already made (%s): "
                        "nothing was sent. Retry it later.",
                        err.__class__.__name__,
                    ),
                )
                return
            if made:
                self._stripe_apply_refund_answer(made)
                return
        amount = -self.amount
        if self.currency_id.name not in INT_CURRENCIES:
            amount = float_round(amount * 100, 2)
        data = {"amount": int(amount), "metadata[reference]": self.reference}
        if source["stripe_payment_intent"]:
            data["payment_intent"] = source["stripe_payment_intent"]
        else:
            data["charge"] = source.acquirer_reference
        headers = dict(
            self._stripe_refund_headers(),
            **{
                "Idempotency-Key": self.refund_idempotency_key,
            },
        )
        url = urls.url_join(acquirer._stripe_refund_api_url(), "refunds")
        try:
            response = requests.post(
                url, data=data, headers=headers, timeout=acquirer._stripe_refund_timeout()
            )
        except requests.exceptions.RequestException as err:
            _logger.warning("Stripe refund %s: no answer: %s", self.reference, err)
            self._set_refund_state(
                "error",
                _(
                    "Stripe did not answer (%s). The refund may or may not have been made: "
                    "retry it, Stripe recognises the same refund and never makes it twice.",
                    err.__class__.__name__,
                ),
            )
            return
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not response.ok or "error" in answer:
            message = answer.get("error", {}).get("message") or response.reason
            self._set_refund_state("error", _("Stripe refused the refund: %s", message))
            return
        self._stripe_apply_refund_answer(answer)

    def _stripe_refund_headers(self):
        return {
            "Authorization": "Bearer %s" % self.acquirer_id.sudo()["stripe_secret_key"],
            "Stripe-Version": "2019-05-16",
        }

    def _stripe_find_refund(self):
        """The refund Stripe made for this one (its metadata reference), or None."""
        source = self.source_transaction_id
        params = {"limit": 100}
        if source["stripe_payment_intent"]:
            params["payment_intent"] = source["stripe_payment_intent"]
        elif source.acquirer_reference:
            params["charge"] = source.acquirer_reference
        else:
            # Without a Stripe reference nothing was ever sent for it.
            return None
        url = urls.url_join(self.acquirer_id._stripe_refund_api_url(), "refunds")
        for _page in range(50):
            response = requests.get(
                url,
                params=params,
                headers=self._stripe_refund_headers(),
                timeout=self.acquirer_id._stripe_refund_timeout(),
            )
            response.raise_for_status()
            answer = response.json()
            for refund in answer.get("data") or []:
                if (refund.get("metadata") or {}).get("reference") == self.reference:
                    return refund
            if not answer.get("has_more") or not answer.get("data"):
                return None
            params["starting_after"] = answer["data"][-1]["id"]
        raise ValueError("too many refunds to list")

    def _stripe_apply_refund_answer(self, answer):
        as_refund_engine(self).acquirer_reference = answer.get("id")
        status = answer.get("status")
        if status == "succeeded":
            self._set_refund_state("done")
        elif status in ("pending", "requires_action"):
            self._set_refund_state("pending")
        else:
            self._set_refund_state(
                "error",
                _(
                    "Stripe answered that the refund %(status)s: %(reason)s",
                    status=status or _("has an unknown status"),
                    reason=answer.get("failure_reason") or _("no reason given"),
                ),
            )

    def _set_refund_state(self, state, message=""):
        """Record the acquirer's answer; the engine's ``_follow_up`` does what it implies.

        Flectra's ``_set_transaction_*`` are not used: the sale module hooks
        them to confirm and invoice orders, which a refund must never do.
        """
        self.ensure_one()
        as_refund_engine(self).write(
            {
                "state": state,
                "state_message": message,
                "date": fields.Datetime.now(),
                "is_processed": False,
            }
        )

    # ------------------------------------------------------------------
    # Refunds are not sale payments
    # ------------------------------------------------------------------

    def _reconcile_after_transaction_done(self):
        # A refund gets its outbound payment first; then every transaction goes
        # through super(), where payment skips those with a payment already and
        # sale finds no order to confirm or invoice on a refund.
        self.env["sale.order.refund.engine"]._post_outbound_payments(self.filtered("is_refund"))
        return super()._reconcile_after_transaction_done()

    def _cron_post_process_after_done(self):
        if self:
            return super()._cron_post_process_after_done()
        # Flectra's cron finishes done transactions; a pending refund whose
        # follow-up failed (credit note, e-mail) is finished the same way.
        now = fields.Datetime.now()
        pending = self.search(
            [
                ("is_refund", "=", True),
                ("state", "=", "pending"),
                ("is_processed", "=", False),
                ("date", "<=", now - timedelta(minutes=10)),
                ("date", ">=", now - timedelta(days=4)),
            ]
        )
        res = super()._cron_post_process_after_done()
        if pending:
            # Through the whole chain, as the done transactions just went.
            pending._cron_post_process_after_done()
        return res

    def _post_process_after_done(self):
        # A refund's follow-up first; then every transaction goes through
        # super(), which finds no order to confirm or invoice on a refund.
        self.env["sale.order.refund.engine"]._follow_up(self.filtered("is_refund"))
        return super()._post_process_after_done()

    def _create_payment(self, add_payment_vals=None):
        # A refund's outbound payment exists once the money has left, never
        # for a refund still pending or failed (core would make one for any).
        if self.is_refund and self.state != "done":
            return self.env["account.payment"]
        return super()._create_payment(add_payment_vals or {})
