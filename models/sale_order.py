from flectra import _, api, fields, models

# The three steps of the eCommerce documentation, plus the way out.
ECOMMERCE_STATUS = [
    ("quotation", "Quotation"),
    ("sent", "Quotation sent"),
    ("order", "Order"),
    ("cancel", "Cancelled"),
]
SALE_STATE_TO_ECOMMERCE = {
    "draft": "quotation",
    "sent": "sent",
    "sale": "order",
    "done": "order",
    "cancel": "cancel",
}


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # --- Order queues and statuses ------------------------------------------
    ecommerce_status = fields.Selection(
        ECOMMERCE_STATUS,
        string="eCommerce Status",
        compute="_compute_ecommerce_status",
        store=True,
        help="Where a web order stands: a cart or quotation, a quotation whose "
        "customer checked out (Quotation sent), or a confirmed order.",
    )
    awaiting_offline_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        store=True,
        help="The customer chose an offline payment method (wire transfer, pay "
        "in store) and the money has not been received yet.",
    )
    awaiting_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        store=True,
        help="Confirmed, but the offline payment is still pending: do not treat "
        "it as paid.",
    )

    @api.depends("state", "website_id")
    def _compute_ecommerce_status(self):
        for order in self:
            order.ecommerce_status = (
                SALE_STATE_TO_ECOMMERCE.get(order.state) if order.website_id else False
            )

    @api.depends(
        "state",
        "transaction_ids.state",
        "transaction_ids.acquirer_id.is_offline_payment",
    )
    def _compute_awaiting_offline_payment(self):
        for order in self:
            pending = order.transaction_ids.filtered(
                lambda tx: tx.state == "pending" and tx.acquirer_id.is_offline_payment
            )
            order.awaiting_offline_payment = bool(pending)
            order.awaiting_payment = bool(pending) and order.state in ("sale", "done")

    # --- Actions -------------------------------------------------------------
    def action_confirm_web_orders(self):
        """Confirm the selected quotations from the To Confirm queue.

        Orders that are no longer quotations (already confirmed or cancelled,
        maybe by a colleague a minute ago) are skipped and named in the
        answer, rather than failing the whole batch.
        """
        to_confirm = self.filtered(lambda order: order.state in ("draft", "sent"))
        skipped = self - to_confirm
        if to_confirm:
            to_confirm.action_confirm()
        messages = []
        if to_confirm:
            messages.append(_("Confirmed: %s.", ", ".join(to_confirm.mapped("name"))))
        if skipped:
            messages.append(
                _(
                    "Skipped, as they are no longer quotations (already confirmed or cancelled): %s.",
                    ", ".join(skipped.mapped("name")),
                )
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Confirm orders"),
                "message": " ".join(messages) or _("No order selected."),
                "type": "warning" if skipped else "success",
                "sticky": bool(skipped),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
