from flectra import _, api, fields, models
from flectra.exceptions import UserError
from flectra.tools import float_compare


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # ------------------------------------------------------------------
    # Refunds from the order (issue #6)
    # ------------------------------------------------------------------

    refund_transaction_ids = fields.Many2many(
        "payment.transaction", string="Refunds", compute="_compute_refund_state",
    )
    online_refundable_amount = fields.Monetary(
        "Left to Refund", compute="_compute_refund_state", currency_field="currency_id",
        help="Paid online and neither refunded nor being refunded.",
    )
    can_refund_online = fields.Boolean(compute="_compute_refund_state")

    @api.depends("state", "transaction_ids.state", "transaction_ids.refund_transaction_ids.state")
    def _compute_refund_state(self):
        for order in self:
            payments = order._get_online_payments()
            refunds = payments.refund_transaction_ids
            order.refund_transaction_ids = refunds
            order.online_refundable_amount = sum(payments.mapped("refundable_amount"))
            order.can_refund_online = order.state != "cancel" and (
                order.online_refundable_amount > 0
                or any(refund.state == "error" for refund in refunds)
            )

    def action_refund(self):
        """Refund to the customer everything paid online, with a credit note if invoiced.

        A refund that failed before is retried first (same idempotency key)
        rather than doubled.
        """
        self.ensure_one()
        self.env["payment.transaction"]._check_refund_rights()
        order = self.sudo()
        payments = order._get_online_payments()
        if order.state == "cancel":
            raise UserError(_("%s is cancelled: there is nothing to refund.", order.name))
        if not payments:
            raise UserError(
                _("%s was not paid online: there is no payment to refund.", order.name)
            )
        payments._lock_for_refund()
        failed = payments.refund_transaction_ids.filtered(lambda r: r.state == "error")
        if failed:
            failed.action_retry_refund()
            return order._refund_notification(failed)
        amount = sum(payments.mapped("refundable_amount"))
        if order.currency_id.compare_amounts(amount, 0.0) <= 0:
            raise UserError(_("%s is already fully refunded.", order.name))
        order._check_refund_allocation(payments, amount)
        credit_notes = order._create_full_refund_credit_notes()
        refunds = order._refund_online_payments(payments, amount, credit_notes)
        return order._refund_notification(refunds)

    def _refund_lines(self, line_quantities, description=None):
        """Refund ``{sale.order.line: quantity}`` of this order, taxes included.

        For returns: needs an acquirer able to refund part of a payment. When
        the order is invoiced, a credit note of those lines is posted and
        reconciled with the refund. Returns the refund transaction(s); a
        refund the acquirer refused is returned in state error, to retry.
        """
        self.ensure_one()
        order = self.sudo()
        line_quantities = {
            line.sudo(): qty for line, qty in line_quantities.items() if qty
        }
        for line, qty in line_quantities.items():
            if line.order_id != order or line.display_type:
                raise UserError(_("%s is not a product line of this order.", line.name))
            rounding = line.product_uom.rounding
            if qty < 0 or float_compare(qty, line.product_uom_qty, precision_rounding=rounding) > 0:
                raise UserError(
                    _("Cannot refund %(qty)s of %(product)s: the order has %(ordered)s.",
                      qty=qty, product=line.product_id.display_name,
                      ordered=line.product_uom_qty)
                )
        if not line_quantities:
            raise UserError(_("Choose at least one line to refund."))
        payments = order._get_online_payments()
        if order.state == "cancel" or not payments:
            raise UserError(
                _("%s was not paid online: there is no payment to refund.", order.name)
            )
        payments._lock_for_refund()
        for acquirer in payments.acquirer_id:
            if acquirer.support_refund != "partial":
                raise UserError(
                    _("%(acquirer)s cannot refund part of a payment. %(how)s",
                      acquirer=acquirer.name,
                      how=acquirer._get_refund_unsupported_message())
                )
        amount = sum(
            order._get_refund_line_amount(line, qty) for line, qty in line_quantities.items()
        )
        order._check_refund_allocation(payments, amount)
        credit_notes = self.env["account.move"]
        if order._get_posted_invoices():
            credit_notes = order._create_refund_credit_note(line_quantities, description)
            # What the customer is owed is what the credit note says, to the cent.
            amount = sum(credit_notes.mapped("amount_total"))
            order._check_refund_allocation(payments, amount)
        return order._refund_online_payments(payments, amount, credit_notes)

    def _get_online_payments(self):
        """Captured online payments of the order (refunds excluded), oldest first."""
        self.ensure_one()
        return self.sudo().transaction_ids.filtered(
            lambda tx: tx.state == "done" and not tx.is_refund
        ).sorted("id")

    def _get_posted_invoices(self):
        return self.invoice_ids.filtered(
            lambda move: move.move_type == "out_invoice" and move.state == "posted"
        )

    def _get_refund_line_amount(self, line, quantity):
        """What ``quantity`` of ``line`` cost the customer, taxes included."""
        price = line.price_unit * (1 - (line.discount or 0.0) / 100.0)
        taxes = line.tax_id.compute_all(
            price, line.order_id.currency_id, quantity,
            product=line.product_id, partner=line.order_id.partner_shipping_id,
        )
        return taxes["total_included"]

    def _allocate_refund(self, payments, amount):
        """Split ``amount`` over the payments, oldest first: [(payment, part)]."""
        allocation, left = [], amount
        for payment in payments:
            part = min(left, payment.refundable_amount)
            if self.currency_id.compare_amounts(part, 0.0) > 0:
                allocation.append((payment, self.currency_id.round(part)))
                left -= part
        if self.currency_id.compare_amounts(left, 0.0) > 0:
            raise UserError(
                _("Cannot refund %(amount)s on %(order)s: only %(left)s paid online is left "
                  "to refund.", amount=self.currency_id.round(amount), order=self.name,
                  left=sum(payments.mapped("refundable_amount")))
            )
        return allocation

    def _check_refund_allocation(self, payments, amount):
        # Every check runs before anything is created or sent.
        for payment, part in self._allocate_refund(payments, amount):
            payment._check_refundable(part)

    def _refund_online_payments(self, payments, amount, credit_notes):
        refunds = self.env["payment.transaction"]
        for payment, part in self._allocate_refund(payments, amount):
            refunds |= payment._refund(part, credit_notes)
        return refunds

    def _create_full_refund_credit_notes(self):
        """Draft credit notes for what is invoiced and not credited yet.

        They are posted only when the acquirer accepts the refund.
        """
        invoices = self._get_posted_invoices()
        if not invoices:
            return self.env["account.move"]
        credited = self.invoice_ids.filtered(
            lambda move: move.move_type == "out_refund" and move.state != "cancel"
        )
        if not credited:
            today = fields.Date.context_today(self)
            return invoices._reverse_moves([
                {"ref": _("Refund of %s", invoice.name), "invoice_date": today, "date": today}
                for invoice in invoices
            ])
        # Part of it was credited already (a return): credit the rest by line.
        quantities = {
            line: line.qty_invoiced for line in self.order_line
            if not line.display_type and line.qty_invoiced > 0
        }
        if not quantities:
            return self.env["account.move"]
        return self._create_refund_credit_note(quantities)

    def _create_refund_credit_note(self, line_quantities, description=None):
        self.ensure_one()
        vals = self._prepare_refund_credit_note_vals(line_quantities, description)
        return self.env["account.move"].with_context(default_move_type="out_refund").create(vals)

    def _prepare_refund_credit_note_vals(self, line_quantities, description=None):
        vals = self._prepare_invoice()
        vals.update({
            "move_type": "out_refund",
            "ref": description or _("Refund of %s", self.name),
            "invoice_date": fields.Date.context_today(self),
            # Linked to the original payments, posting would try to reconcile
            # them with the credit note: the refund payment is its match.
            "transaction_ids": [(5, 0, 0)],
            "invoice_line_ids": [
                (0, 0, line._prepare_invoice_line(quantity=qty))
                for line, qty in line_quantities.items()
            ],
        })
        return vals

    def _refund_notification(self, refunds):
        """Tell the salesperson what the acquirer answered, then reload the order."""
        states = set(refunds.mapped("state"))
        if "error" in states:
            kind, title = "danger", _("Refund failed")
            message = "\n".join(refunds.filtered(lambda r: r.state == "error").mapped("state_message"))
        elif "pending" in states:
            kind, title = "warning", _("Refund pending")
            message = _("The refund waits for the acquirer or accounting to pay it.")
        else:
            kind, title = "success", _("Refunded")
            message = _("The customer has been refunded.")
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

    def _send_refund_mail(self, refund):
        template = self.env.ref(
            "website_sale_order_handling.mail_template_refund", raise_if_not_found=False
        )
        if not template:
            return
        for order in self:
            order.with_context(
                refund_amount=-refund.amount, refund_pending=refund.state == "pending"
            ).message_post_with_template(
                template.id, composition_mode="comment",
                email_layout_xmlid="mail.mail_notification_light",
            )

    # ------------------------------------------------------------------
    # End of refunds from the order
    # ------------------------------------------------------------------
