"""How money goes back to customers: the whole refund engine, behind every door.

The doors are thin: the order's Refund button (everything left) and its
Refund window (lines, an amount, shipping, Return to Stock), a return
request's Refund, and the buttons of the payments and refunds themselves
(refund, retry, cancel, mark paid). Each calls one entry point, ``_refund``
(``_cancel_refunds`` and ``_mark_refunds_paid`` for a refund already made),
and the flow is the same for all:

1. **Check** the user's right to refund and read access to the order, before
   anything is read as superuser (``_check_access``).
2. **Reserve** (``_reserve_*``), in a transaction of its own, committed before
   any provider is called: lock the payments, check what the refund ledger
   (sale.order.refund.line) says is left, draft the credit note, and create
   the draft refunds with their idempotency keys and ledger lines. A unit or
   a cent the ledger holds is never reserved twice, whatever the door.
3. **Call the provider and record its answer** (``_send_refunds``), one
   transaction per refund: the provider's hook on the refund
   (``payment.transaction._<provider>_send_refund``) sets its state.
4. **Credit note, payment, notify** (``_follow_up``), in another transaction:
   post the credit note once the provider accepted, the outbound payment once
   done, tell the order, the customer and the return requests. If it fails,
   the money moved and its record stays: the payment post-processing cron
   runs it again.
5. **Restock** (``_restock``), in a transaction of its own too, as it must see
   the refunds just committed: return transfers for what was given back.

Steps 2 to 5 commit on their own (``own_transaction``): a refund must outlive
the request that made it. The request's own transaction holds no lock they
need, and reads nothing they wrote: they hand back plain data (ids, dicts).
"""

import hashlib
import logging
from contextlib import contextmanager
from datetime import timedelta

import psycopg2

from flectra import _, api, fields, models
from flectra.exceptions import AccessError, UserError
from flectra.tools import float_compare, mute_logger, plaintext2html

_logger = logging.getLogger(__name__)

# Refund states that hold back money of their source payment. An error holds it
# too: after a timeout nobody knows whether the provider refunded, so only a
# retry (same idempotency key) or an explicit cancel may release it.
REFUND_RESERVING_STATES = ("draft", "pending", "done", "error")
# A refund left in draft this long had its attempt interrupted (the server died
# while the provider was called): it may be retried, with the same key.
REFUND_INTERRUPTED_AFTER = timedelta(minutes=10)

# What refunds trust is written by this engine only, whatever the user's
# rights (Flectra lets every salesman write payment transactions). Its mark is
# a context value that no RPC client can send: JSON has no such object.
_REFUND_ENGINE = object()
_REFUND_ENGINE_KEY = "website_sale_order_handling_refund_engine"


def as_refund_engine(records):
    """``records`` with the right to write what refunds trust."""
    return records.with_context(**{_REFUND_ENGINE_KEY: _REFUND_ENGINE})


def is_refund_engine(env):
    return env.context.get(_REFUND_ENGINE_KEY) is _REFUND_ENGINE


@contextmanager
def own_transaction(env):
    """An environment like ``env`` on a database transaction of its own,
    committed when the block ends (rolled back if it raises).

    Whatever the caller's transaction changed is flushed first; records of the
    new environment must not leave the block (hand back ids or dicts). In test
    mode the registry's cursor is a TestCursor over the test's transaction, so
    tests see the same data.
    """
    env["base"].flush()
    # The cache is shared with the caller's environment: read afresh inside,
    # and outside again after, as the caller's snapshot may be older.
    env.cache.invalidate()
    try:
        with env.registry.cursor() as cr:
            yield api.Environment(cr, env.uid, env.context, su=env.su)
    finally:
        env.cache.invalidate()


class RefundEngine(models.AbstractModel):
    _name = "sale.order.refund.engine"
    _description = "Refund Engine"

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------

    @api.model
    def _refund(
        self, source, line_quantities=None, amount=None, reason=None, restock=False, retry=False
    ):
        """Give money back for ``source``, through every step of the flow.

        ``source``: a sale.order (everything left, or ``line_quantities``
        {sale.order.line: quantity}, or ``amount`` without credit note), a
        sale.return.request (its received quantities), a captured payment
        (``amount``, or all of it that is left) or failed refunds to send
        again. ``retry``: the Retry Refund button, which alone sends a failed
        refund of an order or request again. ``reason``: an internal note on
        the order. ``restock``: return transfers for the refunded products.

        Returns ``{"refund_ids", "answers": [{reference, state, message}],
        "transfers": [names]}``, plain data: the refunds were committed by
        younger transactions than the caller's.
        """
        self._check_access(source)
        if reason is not None and not reason.strip():
            raise UserError(_("Write why this order is refunded (internal note)."))
        engine = self.sudo().with_company(self._get_company(source))
        line_qty_by_id = None
        if line_quantities is not None:
            line_qty_by_id = {line.id: qty for line, qty in line_quantities.items()}
        with own_transaction(engine.env) as env:
            refund_ids = (
                engine.with_env(env)
                ._reserve(source.with_env(env), line_qty_by_id, amount, reason, retry)
                .ids
            )
        answers = engine._send_refunds(refund_ids)
        transfers = []
        order = source if source._name == "sale.order" else None
        if (
            restock
            and order
            and answers
            and all(answer["state"] in ("pending", "done") for answer in answers)
        ):
            with own_transaction(engine.env) as env:
                transfers = engine.with_env(env)._restock(order.with_env(env), refund_ids)
        return {"refund_ids": refund_ids, "answers": answers, "transfers": transfers}

    @api.model
    def _cancel_refunds(self, refunds):
        """Give up failed refunds: they no longer hold back their payment's money.

        A refund that may have reached its provider is looked up there first:
        one the provider made is recorded, never cancelled (else the next
        refund would pay twice). Returns the answers of those made.
        """
        self._check_access(refunds)
        made = []
        for refund_id in refunds.ids:
            with own_transaction(self.sudo().env) as env:
                refund = env["payment.transaction"].browse(refund_id)
                answer = self.with_env(env)._cancel_refund(refund)
            if answer["state"] != "cancel":
                made.append(answer)
                self.sudo()._follow_up_in_own_transaction(refund_id)
        return made

    @api.model
    def _mark_refunds_paid(self, refunds):
        """Accounting paid these pending refunds by hand (bank, cash, dashboard)."""
        user = self.env.user
        if not (
            user.has_group("account.group_account_invoice")
            or user.has_group("website_sale_order_handling.group_order_refund")
        ):
            raise AccessError(_("Only accounting or refund managers can mark refunds as paid."))
        self._check_payment_access(refunds)
        engine = self.sudo()
        for refund in refunds.sudo():
            engine._lock_payments(refund)
            if not refund.is_refund or refund.state != "pending":
                raise UserError(
                    _(
                        "%s is not a pending refund: only those can be marked as paid.",
                        refund.reference,
                    )
                )
            refund._set_refund_state("done")
            engine._follow_up(refund)
        return True

    @api.model
    def _notification(self, result):
        """The salesperson's notification of what ``_refund`` did."""
        answers = result["answers"]
        states = {answer["state"] for answer in answers}
        if not answers:
            # A request whose refund had gone through, only its follow-up had not.
            kind, title = "success", _("Refunded")
            message = _("The customer has been refunded.")
        elif "error" in states:
            kind, title = "danger", _("Refund failed")
            message = "\n".join(a["message"] for a in answers if a["state"] == "error")
        elif "pending" in states:
            kind, title = "warning", _("Refund pending")
            message = _("The refund waits for the acquirer or accounting to pay it.")
        elif states <= {"done"}:
            kind, title = "success", _("Refunded")
            message = _("The customer has been refunded.")
        else:
            kind, title = "warning", _("Refund in progress")
            message = _("The acquirer has not answered yet: reload the order in a moment.")
        if result.get("transfers"):
            message += " " + _("Return transfer created: %s.", ", ".join(result["transfers"]))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": kind,
                "sticky": kind == "danger",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    @api.model
    def _cancel_notification(self, answers):
        """Tell the user that refunds they cancelled had been made by the provider."""
        Transaction = self.env["payment.transaction"]
        states = dict(Transaction._fields["state"]._description_selection(self.env))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Refund not cancelled"),
                "message": "\n".join(
                    _(
                        "%(acquirer)s had made refund %(ref)s: it is recorded as %(state)s, "
                        "not cancelled.",
                        acquirer=answer["acquirer"],
                        ref=answer["reference"],
                        state=states[answer["state"]],
                    )
                    for answer in answers
                ),
                "type": "warning",
                "sticky": True,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    # ------------------------------------------------------------------
    # 1. Check: the refund right, and read access to what is refunded
    # ------------------------------------------------------------------

    @api.model
    def _check_rights(self):
        if not self.env.user.has_group("website_sale_order_handling.group_order_refund"):
            raise AccessError(
                _('Only users of the group "Refund online payments" can refund payments.')
            )

    @api.model
    def _check_access(self, source):
        """The refund right, and read access to ``source``'s orders (own or all
        documents, companies): the engine reads and writes as superuser."""
        self._check_rights()
        if source._name == "payment.transaction":
            self._check_payment_access(source)
        elif source._name == "sale.return.request":
            source.check_access_rights("read")
            source.check_access_rule("read")
            self._check_order_access(source.order_id)
        else:
            self._check_order_access(source)

    @api.model
    def _check_order_access(self, orders):
        orders.check_access_rights("read")
        orders.check_access_rule("read")

    @api.model
    def _check_payment_access(self, transactions):
        """A payment (a refund: the payment it gives back) must belong to orders
        the user may see. A payment of no order, an invoice's, is refunded by
        code running as superuser only."""
        if self.env.su:
            return
        for tx in transactions.sudo():
            orders = tx._get_refunded_orders() if tx.is_refund else tx.sale_order_ids
            if not orders:
                raise AccessError(
                    _(
                        "%s belongs to no order: only payments of orders are refunded here.",
                        tx.reference,
                    )
                )
            self._check_order_access(orders.with_env(self.env))

    @api.model
    def _get_company(self, source):
        """Credit notes and payments get the journals of the order's company,
        whichever company the user works in (as sale's invoicing)."""
        if source._name in ("sale.order", "sale.return.request"):
            return source.sudo().company_id
        return self.env.company

    @api.model
    def _check_payments_to_refund(self, order):
        """Refuse an order that has nothing to refund; its online payments."""
        order.ensure_one()
        if order.state == "cancel":
            raise UserError(_("%s is cancelled: there is nothing to refund.", order.name))
        payments = order._get_online_payments()
        if not payments:
            left_out = order._get_payments_left_out()
            if left_out:
                raise UserError(
                    _(
                        "%(order)s was paid only by payments the shop did not create as they "
                        "are (%(refs)s: made by hand, or not matching the order's amount or "
                        "customer). Check them against the acquirer's records and refund the "
                        "customer there.",
                        order=order.name,
                        refs=", ".join(left_out.mapped("reference")),
                    )
                )
            raise UserError(_("%s was not paid online: there is no payment to refund.", order.name))
        # Every payment counts in the order's shares, the ones not refunded too.
        payments._check_capture_seal()
        return payments

    # ------------------------------------------------------------------
    # 2. Reserve: lock, check against the ledger, create draft refunds
    # ------------------------------------------------------------------

    @api.model
    def _reserve(self, source, line_qty_by_id=None, amount=None, reason=None, retry=False):
        """The draft refunds of ``source`` (see ``_refund``), ready to send."""
        if source._name == "sale.return.request":
            return self._reserve_request_refunds(source, retry)
        if source._name == "payment.transaction":
            if retry:
                return self._reserve_retried_refunds(source)
            return self._reserve_payment_refund(source, amount)
        order = source
        self._check_payments_to_refund(order)
        if line_qty_by_id is not None:
            line_quantities = {
                self.env["sale.order.line"].browse(line_id): qty
                for line_id, qty in line_qty_by_id.items()
                if qty
            }
            self._lock_payments(order._get_online_payments())
            self._check_no_failed_refund(order)
            refunds = self._reserve_line_refunds(order, line_quantities)
        elif amount is not None:
            refunds = self._reserve_amount_refunds(order, amount)
        else:
            refunds = self._reserve_full_refunds(order, retry)
        if reason is not None:
            order.message_post(
                body=plaintext2html(
                    _(
                        "Refund %(refs)s, reason (internal, not sent to the customer): %(reason)s",
                        refs=", ".join(refunds.mapped("reference")),
                        reason=reason.strip(),
                    )
                ),
                subtype_xmlid="mail.mt_note",
            )
        return refunds

    @api.model
    def _reserve_full_refunds(self, order, retry=False):
        """The draft refunds of everything ``order`` has left to refund, or,
        with ``retry``, its failed refunds put back to draft."""
        payments = order._get_online_payments()
        self._lock_payments(payments)
        failed = self._get_failed_refunds(order)
        if failed:
            if not retry:
                self._check_no_failed_refund(order)
            return self._reserve_retried_refunds(failed)
        if retry:
            raise UserError(_("%s has no failed refund to retry: reload the order.", order.name))
        amount = order._get_online_refundable_amount(payments)
        if order.currency_id.compare_amounts(amount, 0.0) <= 0:
            raise UserError(_("%s is already fully refunded.", order.name))
        self._check_allocation(order, payments, amount)
        credit_notes = self._create_full_credit_notes(order)
        return self._create_draft_refunds(
            order,
            payments,
            amount,
            credit_notes,
            self.env["sale.order.refund.line"]._get_left_quantities(order),
        )

    @api.model
    def _reserve_amount_refunds(self, order, amount):
        """The draft refunds of ``amount``: money given back, not lines, so no credit note."""
        payments = order._get_online_payments()
        self._lock_payments(payments)
        self._check_no_failed_refund(order)
        amount = order.currency_id.round(amount)
        if order.currency_id.compare_amounts(amount, 0.0) <= 0:
            raise UserError(_("The amount to refund must be positive."))
        self._check_allocation(order, payments, amount)
        self._check_exchanges_kept(order, payments, amount)
        return self._create_draft_refunds(order, payments, amount, self.env["account.move"])

    @api.model
    def _reserve_line_refunds(
        self,
        order,
        line_quantities,
        description=None,
        return_request=None,
        exchange_differences=None,
    ):
        """The draft refunds of ``{sale.order.line: quantity}``, taxes and their
        share of order-level discounts included, with a credit note of those
        lines when the order is invoiced. ``return_request``: the request they
        pay back, recorded in the ledger; ``exchange_differences``: its
        exchanges' price differences (see
        sale.return.exchange._get_differences_left), given back too."""
        exchange_differences = exchange_differences or []
        order = order.sudo()
        line_quantities = {line.sudo(): qty for line, qty in line_quantities.items() if qty}
        for line, qty in line_quantities.items():
            if line.order_id != order or line.display_type:
                raise UserError(_("%s is not a product line of this order.", line.name))
            rounding = line.product_uom.rounding
            if qty < 0 or float_compare(qty, line.product_uom_qty, precision_rounding=rounding) > 0:
                raise UserError(
                    _(
                        "Cannot refund %(qty)s of %(product)s: the order has %(ordered)s.",
                        qty=qty,
                        product=line.product_id.display_name,
                        ordered=line.product_uom_qty,
                    )
                )
        if not line_quantities and not exchange_differences:
            raise UserError(_("Choose at least one line to refund."))
        payments = order._get_online_payments()
        if order.state == "cancel" or not payments:
            raise UserError(_("%s was not paid online: there is no payment to refund.", order.name))
        self._lock_payments(payments)
        # Whichever door: a unit the ledger holds as refunded never goes twice
        # (read once the payments are locked: no other refund is being reserved).
        self._check_left_quantities(order, line_quantities)
        payments._check_capture_seal()
        for acquirer in payments.acquirer_id:
            if acquirer.support_refund != "partial":
                raise UserError(
                    _(
                        "%(acquirer)s cannot refund part of a payment. %(how)s",
                        acquirer=acquirer.name,
                        how=acquirer._get_refund_unsupported_message(),
                    )
                )
        line_quantities = self._add_discount_shares(order, line_quantities)
        amount = sum(
            self._get_line_amount(line, qty) for line, qty in line_quantities.items()
        ) + sum(entry["amount"] for entry in exchange_differences)
        self._check_allocation(order, payments, amount)
        self._check_exchanges_kept(
            order, payments, amount, sum(entry["amount"] for entry in exchange_differences)
        )
        credit_notes = self.env["account.move"]
        if order._get_posted_invoices():
            credit_notes = self._create_credit_note(
                order, line_quantities, description, exchange_differences
            )
            # What the customer is owed is what the credit note says, to the cent.
            amount = sum(credit_notes.mapped("amount_total"))
            self._check_allocation(order, payments, amount)
        return self._create_draft_refunds(
            order,
            payments,
            amount,
            credit_notes,
            line_quantities,
            return_request,
            exchange_differences,
        )

    @api.model
    def _reserve_request_refunds(self, request, retry=False):
        """The draft refunds of a received return request: what the ledger says
        is left of its quantities; with ``retry``, its failed refund put back
        to draft. Nothing left: the request is settled (no refund)."""
        request.ensure_one()
        self._lock_rows_nowait(
            request,
            _("%s is being refunded right now: reload the page in a moment.", request.name),
        )
        request.invalidate_cache(["state", "refund_transaction_ids"])
        request._check_state("received")
        failed = request.refund_transaction_ids.filtered(lambda tx: tx._is_failed_refund())
        if failed:
            if not retry:
                raise UserError(
                    _(
                        "The refund of %(name)s failed before (%(refs)s). Reload the page and "
                        "use Retry Refund: it sends that same refund again instead of a new one.",
                        name=request.name,
                        refs=", ".join(failed.mapped("reference")),
                    )
                )
            return self._reserve_retried_refunds(failed)
        to_refund = request._get_refund_line_quantities()
        differences = self.env["sale.return.exchange"]._get_differences_left(request)
        if not to_refund and not differences:
            request._settle_without_refund()
            return self.env["payment.transaction"]
        refunds = self._reserve_line_refunds(
            request.order_id,
            to_refund,
            description=request.name,
            return_request=request,
            exchange_differences=differences,
        )
        as_refund_engine(request).write(
            {"refund_transaction_ids": [(4, refund.id) for refund in refunds]}
        )
        return refunds

    @api.model
    def _reserve_payment_refund(self, payment, amount=None):
        """The draft refund of ``amount`` (all of what is left when None) of one
        payment, from its order's share when it paid one order."""
        payment.ensure_one()
        self._lock_payments(payment)
        order = payment.sale_order_ids if len(payment.sale_order_ids) == 1 else None
        if amount is None:
            amount = (
                payment._get_order_refundable_amount(order) if order else payment.refundable_amount
            )
            if order and self.env["sale.return.exchange"]._get_kept_amount(order):
                # Not what paid for the variants the customer took in exchange.
                amount = min(amount, order._get_online_refundable_amount())
        amount = payment.currency_id.round(amount)
        self._check_refundable(payment, amount, order)
        ledger = None
        if order:
            self._check_exchanges_kept(order, order._get_online_payments(), amount)
            ledger = self.env["sale.order.refund.line"]._prepare_lines(order, None, amount)
        return self._create_draft_refund(payment, amount, None, order, ledger)

    @api.model
    def _reserve_retried_refunds(self, failed):
        """These failed refunds, checked again and put back to draft, to be sent
        again with their own idempotency keys."""
        for refund in failed:
            self._lock_failed_refund(refund, _("Only a refund in error can be retried."))
            self._check_retry_amount(refund)
            as_refund_engine(refund).write({"state": "draft", "state_message": False})
        return failed

    def _create_draft_refunds(
        self,
        order,
        payments,
        amount,
        credit_notes,
        line_quantities=None,
        return_request=None,
        exchange_differences=None,
    ):
        """One draft refund per payment share of ``amount``. The first writes the
        refund ledger of them all (``line_quantities`` with their amounts, or
        else the amount alone), so that it counts once; the others point to it
        (``refund_first_id``), and its lines hold while any of them does."""
        refunds = self.env["payment.transaction"]
        ledger = self.env["sale.order.refund.line"]._prepare_lines(
            order, line_quantities, amount, return_request, exchange_differences
        )
        for payment, part in self._allocate(order, payments, amount):
            if not refunds:
                refunds = self._create_draft_refund(payment, part, credit_notes, order, ledger)
                continue
            refund = self._create_draft_refund(payment, part, credit_notes, order)
            as_refund_engine(refund).write({"refund_first_id": refunds[0].id})
            refunds |= refund
        return refunds

    def _create_draft_refund(self, payment, amount, credit_notes=None, order=None, ledger=None):
        """The refund transaction of ``amount`` of ``payment``, in draft.
        ``ledger``: the values of its refund ledger lines."""
        vals = self._prepare_refund_vals(payment, amount, credit_notes, order, ledger)
        return as_refund_engine(payment).create(vals).with_env(self.env)

    def _prepare_refund_vals(self, payment, amount, credit_notes=None, order=None, ledger=None):
        # The reference, hence the idempotency key, depends only on what is
        # committed: a rolled back attempt retried later gets the same key.
        reference = payment._compute_reference(prefix="R-%s" % payment.reference)
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")
        return {
            "is_refund": True,
            "source_transaction_id": payment.id,
            "refund_sale_order_id": order.id if order else False,
            "acquirer_id": payment.acquirer_id.id,
            "type": "server2server",
            "amount": -amount,
            "currency_id": payment.currency_id.id,
            "reference": reference,
            "partner_id": payment.partner_id.id,
            "partner_country_id": payment.partner_country_id.id,
            "refund_move_ids": [(6, 0, credit_notes.ids if credit_notes else [])],
            "refund_ledger_ids": [(0, 0, vals) for vals in ledger or []],
            "refund_idempotency_key": hashlib.sha256(
                ("%s-refund-%s" % (db_uuid, reference)).encode()
            ).hexdigest(),
            # Followed up by the engine (and, if that fails, by the
            # post-processing cron through _post_process_after_done).
            "is_processed": False,
        }

    # --- Locks -----------------------------------------------------------

    def _lock_payments(self, payments):
        """Lock the payments about to be refunded, for the rest of the transaction.

        NOWAIT: a second click or a second user gets a clear message at once
        instead of queueing behind a provider call. The rows are also updated
        so that a transaction whose snapshot predates a committed refund fails
        with a serialization error (retried by the server) instead of missing it.
        """
        if not payments:
            return
        self._lock_rows_nowait(payments)
        self.env.cr.execute(
            "UPDATE payment_transaction SET write_uid = %s, write_date = now() AT TIME ZONE 'UTC' "
            "WHERE id IN %s",
            [self.env.uid, tuple(payments.ids)],
        )
        # Read refunds and states afresh from the locked rows, not from the cache.
        self.env["payment.transaction"].invalidate_cache()

    def _lock_failed_refund(self, refund, refused_message):
        """Lock the refund's payment, then check the refund still failed:
        another user may have just acted."""
        self._lock_payments(refund.source_transaction_id)
        if not refund._is_failed_refund():
            raise UserError(refused_message)

    def _lock_rows_nowait(self, records, busy_message=None):
        """Lock these records' rows, or tell at once that a refund holds them."""
        try:
            # A refused lock is an expected answer here, not a server error to log.
            with mute_logger("flectra.sql_db"), self.env.cr.savepoint():
                self.env.cr.execute(
                    'SELECT id FROM "%s" WHERE id IN %%s FOR UPDATE NOWAIT' % records._table,
                    [tuple(records.ids)],
                )
        except psycopg2.errors.LockNotAvailable:
            raise UserError(
                busy_message
                or _(
                    "Another refund of %s is being processed right now. "
                    "Reload the page in a moment to see its result.",
                    ", ".join(records.mapped("reference")),
                )
            ) from None

    # --- Checks ------------------------------------------------------------

    def _get_failed_refunds(self, order):
        """``order``'s refunds that failed and hold their amount until retried."""
        return order.refund_transaction_ids.filtered(lambda r: r._is_failed_refund())

    def _check_no_failed_refund(self, order):
        failed = self._get_failed_refunds(order)
        if failed:
            raise UserError(
                _(
                    "A refund of %(order)s failed before (%(refs)s). Reload the order and "
                    "use Retry Refund: it sends that same refund again instead of a new one.",
                    order=order.name,
                    refs=", ".join(failed.mapped("reference")),
                )
            )

    def _check_left_quantities(self, order, line_quantities):
        """Refuse quantities the ledger holds as refunded already."""
        left = self.env["sale.order.refund.line"]._get_left_quantities(order)
        for line, qty in line_quantities.items():
            rounding = line.product_uom.rounding
            if float_compare(qty, left.get(line, 0.0), precision_rounding=rounding) > 0:
                raise UserError(
                    _(
                        "Cannot refund %(qty)s of %(product)s: only %(left)s of it is left "
                        "to refund.",
                        qty=qty,
                        product=line.product_id.display_name,
                        left=left.get(line, 0.0),
                    )
                )

    def _check_refundable(self, payment, amount, order=None):
        """Refuse unless ``amount`` can be refunded from ``payment`` (for
        ``order``: from that order's share of it)."""
        currency = payment.currency_id
        if payment.is_refund or payment.state != "done":
            raise UserError(
                _("%s is not a captured payment: only those can be refunded.", payment.reference)
            )
        payment._check_capture_seal()
        acquirer = payment.acquirer_id
        if acquirer.support_refund == "none":
            raise UserError(acquirer._get_refund_unsupported_message())
        if not acquirer.journal_id:
            raise UserError(
                _(
                    "%s has no payment journal: set one on the acquirer before refunding.",
                    acquirer.name,
                )
            )
        if currency.is_zero(payment.refundable_amount):
            raise UserError(_("%s is already fully refunded.", payment.reference))
        if float_compare(amount, 0.0, precision_rounding=currency.rounding) <= 0:
            raise UserError(_("The amount to refund must be positive."))
        left = payment.refundable_amount
        if float_compare(amount, left, precision_rounding=currency.rounding) > 0:
            raise UserError(
                _(
                    "Cannot refund %(amount)s from %(ref)s: only %(left)s of it is left to refund.",
                    amount=currency.round(amount),
                    ref=payment.reference,
                    left=left,
                )
            )
        if order:
            left = payment._get_order_refundable_amount(order)
            if float_compare(amount, left, precision_rounding=currency.rounding) > 0:
                raise UserError(
                    _(
                        "Cannot refund %(amount)s of %(order)s from %(ref)s: only %(left)s of "
                        "this payment is that order's and left to refund.",
                        amount=currency.round(amount),
                        order=order.name,
                        ref=payment.reference,
                        left=left,
                    )
                )
        payment._check_refundable_by_provider()
        is_full = not payment.refunded_amount and not currency.compare_amounts(
            amount, payment.amount
        )
        if acquirer.support_refund == "full_only" and not is_full:
            raise UserError(
                _(
                    "%(acquirer)s can only refund a payment in full, once. Refund the whole "
                    "%(amount)s of %(ref)s, or refund this customer by hand.",
                    acquirer=acquirer.name,
                    amount=payment.amount,
                    ref=payment.reference,
                )
            )

    def _check_retry_amount(self, refund):
        """A retry sends money again: what it holds must still be left to refund,
        counting every other refund of the payment and of the order's share."""
        source = refund.source_transaction_id
        currency = source.currency_id
        amount = -refund.amount
        if source.is_refund or source.state != "done":
            raise UserError(
                _("%s is not a captured payment: only those can be refunded.", source.reference)
            )
        # A retry sends money again, to the provider reference of the payment.
        source._check_capture_seal()
        left = source._get_payment_left(exclude=refund)
        order = refund.refund_sale_order_id
        if order:
            left = min(left, source._get_order_refundable_amount(order, exclude=refund))
        if (
            float_compare(amount, 0.0, precision_rounding=currency.rounding) <= 0
            or float_compare(amount, left, precision_rounding=currency.rounding) > 0
        ):
            raise UserError(
                _(
                    "Cannot retry %(ref)s: it would refund %(amount)s, but only %(left)s of "
                    "%(payment)s is left to refund.",
                    ref=refund.reference,
                    amount=amount,
                    left=max(left, 0.0),
                    payment=source.reference,
                )
            )

    # --- Shares of the payments ---------------------------------------------

    def _allocate(self, order, payments, amount):
        """Split ``amount`` over ``order``'s shares of the payments, oldest
        first: [(payment, part)]."""
        currency = order.currency_id
        allocation, left = [], amount
        for payment in payments:
            part = min(left, payment._get_order_refundable_amount(order))
            if currency.compare_amounts(part, 0.0) > 0:
                allocation.append((payment, currency.round(part)))
                left -= part
        if currency.compare_amounts(left, 0.0) > 0:
            raise UserError(
                _(
                    "Cannot refund %(amount)s on %(order)s: only %(left)s paid online is left "
                    "to refund.",
                    amount=currency.round(amount),
                    order=order.name,
                    left=order._get_online_refundable_amount(payments),
                )
            )
        return allocation

    def _check_allocation(self, order, payments, amount):
        # Every check runs before anything is created or sent.
        for payment, part in self._allocate(order, payments, amount):
            self._check_refundable(payment, part, order)

    def _check_exchanges_kept(self, order, payments, amount, differences=0.0):
        """What paid for the variants the customer took in exchange never goes
        back: ``amount`` fits in what the order has left but them, plus
        ``differences``, the exchanges' price differences it refunds."""
        if not self.env["sale.return.exchange"]._get_kept_amount(order):
            return
        left = order._get_online_refundable_amount(payments) + differences
        if order.currency_id.compare_amounts(amount, left) > 0:
            raise UserError(
                _(
                    "%(order)s has %(left)s left to refund: the rest paid for the products "
                    "the customer took in exchange.",
                    order=order.name,
                    left=left,
                )
            )

    # --- What lines cost -------------------------------------------------------

    @api.model
    def _get_line_amount(self, line, quantity, price=None):
        """What ``quantity`` of ``line`` cost the customer, taxes included; or,
        with ``price`` (per unit, discount included, taxes as on the line),
        what it would cost at that price."""
        order = line.order_id
        if price is None:
            price = line.price_unit * (1 - (line.discount or 0.0) / 100.0)
        taxes = line.tax_id.compute_all(
            price,
            order.currency_id,
            quantity,
            product=line.product_id,
            partner=order.partner_shipping_id,
        )
        return taxes["total_included"]

    @api.model
    def _add_discount_shares(self, order, line_quantities):
        """``line_quantities`` plus each order-level discount line's share.

        A discount line (a negative product line: sale_coupon's rewards, a
        global discount) discounts the product lines that carry its taxes
        (sale_coupon makes one reward line per set of taxes, as invoicing
        keeps them): refunding some of those lines gives back the same part of
        the discount, by untaxed amount. A discount line whose taxes no line
        carries is shared over every product line.
        """
        lines = order.order_line.filtered(lambda line: not line.display_type)
        discounts = lines.filtered(lambda line: line.price_subtotal < 0)
        if not discounts:
            return line_quantities
        result = dict(line_quantities)
        products = lines.filtered(lambda line: line.price_subtotal > 0)
        for discount in discounts.filtered(lambda line: line not in line_quantities):
            base = products.filtered(lambda line, d=discount: line.tax_id == d.tax_id) or products
            base_total = sum(base.mapped("price_subtotal"))
            if not base_total:
                continue
            refunded = sum(
                line.price_subtotal * qty / line.product_uom_qty
                for line, qty in line_quantities.items()
                if line in base and line.product_uom_qty
            )
            if refunded:
                result[discount] = discount.product_uom_qty * refunded / base_total
        return result

    # --- Credit notes -----------------------------------------------------------

    def _create_full_credit_notes(self, order):
        """Draft credit notes for what is invoiced and not credited yet; posted
        only when the acquirer accepts the refund."""
        invoices = order._get_posted_invoices()
        if not invoices:
            return self.env["account.move"]
        credited = order.invoice_ids.filtered(
            lambda move: move.move_type == "out_refund" and move.state != "cancel"
        )
        exchanged = order.sudo().refund_ledger_ids.filtered(
            lambda entry: entry.kind == "exchange" and not entry.refund_id
        )
        if not credited and not exchanged:
            today = fields.Date.context_today(order)
            return invoices._reverse_moves(
                [
                    {"ref": _("Refund of %s", invoice.name), "invoice_date": today, "date": today}
                    for invoice in invoices
                ]
            )
        # Part of it was credited already (a return), or exchanged (the
        # customer keeps the variant): credit the rest by line.
        left = self.env["sale.order.refund.line"]._get_left_quantities(order)
        quantities = {
            line: min(line.qty_invoiced, left.get(line, 0.0)) if exchanged else line.qty_invoiced
            for line in order.order_line
            if not line.display_type and line.qty_invoiced > 0
        }
        quantities = {line: qty for line, qty in quantities.items() if qty > 0}
        if not quantities:
            return self.env["account.move"]
        return self._create_credit_note(order, quantities)

    def _create_credit_note(self, order, line_quantities, description=None, differences=None):
        """A draft credit note of ``{sale.order.line: quantity}`` and of
        exchanges' price ``differences`` (a line each)."""
        vals = order._prepare_invoice()
        vals.update(
            {
                "move_type": "out_refund",
                "ref": description or _("Refund of %s", order.name),
                "invoice_date": fields.Date.context_today(order),
                # Linked to the original payments, posting would try to reconcile
                # them with the credit note: the refund payment is its match.
                "transaction_ids": [(5, 0, 0)],
                "invoice_line_ids": [
                    (0, 0, line._prepare_invoice_line(quantity=qty))
                    for line, qty in line_quantities.items()
                ]
                + [
                    (
                        0,
                        0,
                        dict(
                            entry["sale_line"]._prepare_invoice_line(quantity=entry["quantity"]),
                            name=entry["name"],
                            price_unit=entry["price_unit"],
                            discount=0.0,
                            # A price given back, not units: the order line's
                            # invoiced quantity stays (the credit note is the
                            # refund's, not among the order's invoices).
                            sale_line_ids=[(5, 0, 0)],
                        ),
                    )
                    for entry in differences or []
                ],
            }
        )
        return self.env["account.move"].with_context(default_move_type="out_refund").create(vals)

    # ------------------------------------------------------------------
    # 3. Call the provider and record its answer
    # ------------------------------------------------------------------

    @api.model
    def _send_refunds(self, refund_ids):
        """Send reserved refunds to their provider and follow the answers up,
        each call and answer committed in a transaction of its own. Returns
        one dict per refund (reference, state, message)."""
        answers = []
        for refund_id in refund_ids:
            with own_transaction(self.env) as env:
                answers.append(self.with_env(env)._call_provider(refund_id))
            self._follow_up_in_own_transaction(refund_id)
        return answers

    def _call_provider(self, refund_id):
        """Call the provider for this draft refund; its hook records the answer."""
        refund = self.env["payment.transaction"].browse(refund_id)
        self._lock_rows_nowait(refund)
        refund.invalidate_cache()
        if refund.state == "draft":
            refund._send_refund()
        return {
            "reference": refund.reference,
            "state": refund.state,
            "message": refund.state_message or "",
        }

    def _cancel_refund(self, refund):
        """Cancel this failed refund, unless its provider made it: then record
        the provider's answer instead."""
        self._lock_failed_refund(refund, _("Only a refund in error can be cancelled."))
        self._lock_rows_nowait(refund)
        refund.invalidate_cache()
        answer = refund._find_refund_at_provider()
        if answer is not None:
            refund._apply_refund_answer(answer)
            if refund.state in ("pending", "done"):
                return {
                    "reference": refund.reference,
                    "state": refund.state,
                    "acquirer": refund.acquirer_id.name,
                }
        as_refund_engine(refund).write({"state": "cancel", "date": fields.Datetime.now()})
        # A credit note shared by the refunds of a split stays while another holds.
        first = refund.refund_first_id or refund
        split = (first | first.refund_split_ids) - refund
        holding = split.filtered(lambda r: r.state in REFUND_RESERVING_STATES)
        (refund.refund_move_ids - holding.refund_move_ids).filtered(
            lambda m: m.state == "draft"
        ).button_cancel()
        message = _(
            "Refund %(ref)s was cancelled by %(user)s.",
            ref=refund.reference,
            user=self.env.user.name,
        )
        if holding:
            message += " " + _(
                "The products it gave back with %(refs)s stay refunded: if the customer is "
                "still owed its %(amount)s, refund that amount from the Refund window.",
                refs=", ".join(holding.mapped("reference")),
                amount=-refund.amount,
            )
        self._log(refund, message)
        return {"reference": refund.reference, "state": "cancel"}

    # ------------------------------------------------------------------
    # 4. Credit note, payment, notify
    # ------------------------------------------------------------------

    def _follow_up_in_own_transaction(self, refund_id):
        """``_follow_up`` in a transaction of its own, once the answer is
        committed; if it fails, it is logged and the cron does it later."""
        try:
            with own_transaction(self.env) as env:
                self.with_env(env)._follow_up(env["payment.transaction"].browse(refund_id))
        except Exception:  # pylint: disable=broad-except
            # The money moved and its record is committed: the cron finishes it.
            _logger.exception(
                "Refund %s: follow-up failed, the post-processing cron retries it", refund_id
            )

    @api.model
    def _follow_up(self, refunds):
        """Do what each refund's recorded answer implies, once.

        Accepted (pending or done): post its credit note, tell the order and
        the customer; done: post the outbound payment; refused: say so on the
        order; then mark its return requests refunded. Safe to run again: the
        post-processing cron does when the refund's own run failed.
        """
        for refund in refunds.filtered("is_refund"):
            if refund.is_processed:
                continue
            # Credit note, payment and e-mail in the refund's company, whichever
            # company the user or the cron works in.
            refund = refund.with_company(refund.acquirer_id.company_id)
            if refund.state in ("pending", "done") and not refund.refund_customer_notified:
                self._on_accepted(refund)
                as_refund_engine(refund).refund_customer_notified = True
            if refund.state == "done":
                self._post_outbound_payments(refund)
            elif refund.state == "error":
                self._log(
                    refund,
                    _(
                        "Refund %(ref)s of %(amount)s failed: %(message)s",
                        ref=refund.reference,
                        amount=-refund.amount,
                        message=refund.state_message,
                    ),
                )
            if refund.state in ("pending", "done"):
                self.env["sale.return.request"].sudo().search(
                    [("refund_transaction_ids", "in", refund.ids), ("state", "=", "received")]
                )._on_refund_accepted()
            refund.is_processed = True
        return True

    def _on_accepted(self, refund):
        """The provider took the refund: the credit note becomes real, the customer is told."""
        refund.refund_move_ids.filtered(lambda m: m.state == "draft")._post()
        values = {
            "ref": refund.reference,
            "amount": -refund.amount,
            "acquirer": refund.acquirer_id.name,
        }
        if refund.state == "pending":
            message = _("Refund %(ref)s of %(amount)s is pending with %(acquirer)s.", **values)
        else:
            message = _("Refund %(ref)s of %(amount)s was made with %(acquirer)s.", **values)
        self._log(refund, message)
        self._send_refund_mail(refund)

    def _send_refund_mail(self, refund):
        """The customer's e-mail: their refund was made, or is pending."""
        template = self.env.ref(
            "website_sale_order_handling.mail_template_refund", raise_if_not_found=False
        )
        if not template:
            return
        for order in refund._get_refunded_orders():
            order.with_context(
                refund_amount=-refund.amount, refund_pending=refund.state == "pending"
            ).message_post_with_template(
                template.id,
                composition_mode="comment",
                email_layout_xmlid="mail.mail_notification_light",
            )

    @api.model
    def _post_outbound_payments(self, refunds):
        """The outbound payment of each done refund, reconciled with its credit note."""
        for refund in refunds.filtered(lambda r: r.is_refund and r.state == "done"):
            if refund.payment_id:
                continue
            # The payment belongs to the acquirer's company, whichever company
            # the user works in.
            refund = refund.with_company(refund.acquirer_id.company_id)
            journal = refund.acquirer_id.journal_id
            method = journal.outbound_payment_method_ids[:1] or self.env.ref(
                "account.account_payment_method_manual_out"
            )
            payment = refund._create_payment({"payment_method_id": method.id})
            credit_notes = refund.refund_move_ids.filtered(lambda m: m.state == "posted")
            if credit_notes:
                account = payment.destination_account_id
                (payment.line_ids + credit_notes.line_ids).filtered(
                    lambda line, account=account: line.account_id == account and not line.reconciled
                ).reconcile()

    def _log(self, refund, body):
        for order in refund._get_refunded_orders():
            order.message_post(body=body)
        for move in refund.refund_move_ids:
            move.message_post(body=body)

    # ------------------------------------------------------------------
    # 5. Restock
    # ------------------------------------------------------------------

    def _restock(self, order, refund_ids):
        """Return transfers for what the refunds ``refund_ids`` gave back; the
        names of the transfers created."""
        refunds = self.env["payment.transaction"].browse(refund_ids)
        pickings = self._return_refunded_lines(order, refunds.refund_ledger_ids._get_quantities())
        return pickings.mapped("name")

    def _return_refunded_lines(self, order, line_qty_by_id):
        """Return transfers for the refunded stored products ({line id: quantity}),
        no more than what was delivered and is not returned (or on its way back)
        yet. Refunding never waits for it: a failure is logged on the order."""
        to_return = {}
        for line in order.order_line.filtered(lambda ln: ln.id in line_qty_by_id):
            if line.product_id.type != "product":
                continue
            at_customer = line._get_return_delivered_qty() - line._get_return_returned_qty()
            qty = min(line_qty_by_id[line.id], at_customer)
            qty = line.product_uom._compute_quantity(qty, line.product_id.uom_id)
            if float_compare(qty, 0.0, precision_rounding=line.product_id.uom_id.rounding) > 0:
                to_return[line] = qty
        if not to_return:
            return self.env["stock.picking"]
        try:
            with self.env.cr.savepoint():
                return self.env["stock.picking"]._create_sale_returns(order, to_return)[0]
        except Exception as error:  # pylint: disable=broad-except
            # The money went back already: the refund stands, the transfer is made by hand.
            _logger.exception("Order %s: the return transfer of a refund failed", order.id)
            order.message_post(
                body=plaintext2html(
                    _(
                        "The products refunded could not be returned to stock (%s): "
                        "create the return transfer from the delivery.",
                        error,
                    )
                ),
                subtype_xmlid="mail.mt_note",
            )
            return self.env["stock.picking"]
