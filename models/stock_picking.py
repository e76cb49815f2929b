from flectra import api, fields, models


class StockPicking(models.Model):
    _inherit = "stock.picking"

    delivery_email_sent = fields.Boolean(
        copy=False,
        readonly=True,
        help="Technical: the customer was told this delivery is done, so a "
        "second validation never tells them twice.",
    )
    return_request_id = fields.Many2one("sale.return.request", index=True, readonly=True)
    exchange_request_id = fields.Many2one(
        "sale.return.request",
        string="Exchange Of",
        index=True,
        readonly=True,
        help="The return request whose exchanged variants this delivery ships "
        "(its backorders too).",
    )

    def _action_done(self):
        self.env["sale.return.exchange"].sudo()._check_can_ship(self.sudo())
        res = super()._action_done()
        # Backorders copy return_request_id, so every part reports here.
        # The warehouse user validating the receipt may not edit requests.
        self.mapped("return_request_id").sudo()._update_from_receipts()
        return res

    def _is_customer_delivery_to_notify(self):
        """Inventory's "Email Confirmation picking" is for customers receiving
        goods: not vendor returns, internal moves or a customer's return."""
        self.ensure_one()
        return (
            self.company_id.stock_move_email_validation
            and self.picking_type_id.code == "outgoing"
            and self.location_dest_id.usage == "customer"
            and self.state == "done"
            and not self.delivery_email_sent
        )

    def _get_delivery_email_recipient(self):
        """The order's customer, who placed it, rather than the delivery address."""
        self.ensure_one()
        return self.sale_id.partner_id or self.partner_id

    def _send_confirmation_email(self):
        to_notify = self.filtered(lambda picking: picking._is_customer_delivery_to_notify())
        emailed_by_us = to_notify.filtered("sale_id")
        # Every picking goes through super(): carriers ship and SMS leave for all
        # of them. Only Inventory's own e-mail is muted, for the deliveries we
        # e-mail ourselves and for outgoing pickings that are no customer
        # delivery (vendor returns); deliveries without an order keep it.
        muted = self - (to_notify - emailed_by_us)
        res = super(
            StockPicking, self.with_context(delivery_email_muted_picking_ids=muted.ids)
        )._send_confirmation_email()
        # After super(): the carrier has set the tracking reference the e-mail shows.
        for picking in emailed_by_us:
            picking._post_delivery_email(picking._get_delivery_email_recipient())
        to_notify.write({"delivery_email_sent": True})
        return res

    def message_post_with_template(self, template_id, **kwargs):
        muted = self.env.context.get("delivery_email_muted_picking_ids")
        if (
            muted
            and self.ids
            and set(self.ids) <= set(muted)
            and template_id in self.company_id.stock_mail_confirmation_template_id.ids
        ):
            return self.env["mail.message"]
        return super().message_post_with_template(template_id, **kwargs)

    def _post_delivery_email(self, recipient):
        self.ensure_one()
        template = self.company_id.stock_mail_confirmation_template_id
        if not template or not recipient:
            return
        composer = (
            self.env["mail.compose.message"]
            .with_context(default_model=self._name, default_res_id=self.id)
            .create({"composition_mode": "comment", "template_id": template.id})
        )
        values = composer.onchange_template_id(template.id, "comment", self._name, self.id)["value"]
        # The template addresses the delivery contact; the customer gets it instead.
        values["partner_ids"] = [(6, 0, recipient.ids)]
        composer.write(values)
        composer.with_context(custom_layout="mail.mail_notification_light").send_mail()

    # --- Returns of web orders (return requests, refunds with Return to Stock) ---
    @api.model
    def _create_sale_returns(self, order, to_return):
        """Return ``{sale.order.line: quantity}`` (in the product's unit) of
        ``order`` with Flectra's stock return wizard.

        One return per original delivery involved; a line delivered in
        several parts is taken back from its newest deliveries first.
        Returns (the return pickings, {line: quantity left that no delivery holds}).
        """
        to_return = dict(to_return)
        pickings = self.browse()
        Wizard = self.env["stock.return.picking"]
        for picking in self._get_returnable_deliveries(order):
            # The return belongs to the delivery's company, whichever one the user works in.
            wizard = (
                Wizard.with_company(picking.company_id)
                .with_context(
                    active_id=picking.id, active_ids=picking.ids, active_model="stock.picking"
                )
                .create({"picking_id": picking.id})
            )
            wizard._onchange_picking_id()
            has_quantity = False
            for wizard_line in wizard.product_return_moves:
                sale_line = wizard_line.move_id.sale_line_id
                wanted = to_return.get(sale_line, 0.0)
                qty = max(min(wanted, wizard_line.quantity), 0.0)
                wizard_line.write({"quantity": qty, "to_refund": True})
                if qty > 0:
                    to_return[sale_line] = wanted - qty
                    has_quantity = True
            if has_quantity:
                pickings |= self.browse(wizard._create_returns()[0])
        return pickings, to_return

    @api.model
    def _get_returnable_deliveries(self, order):
        """Done deliveries of ``order`` that can be returned, newest first."""
        pickings = order.picking_ids.filtered(
            lambda p: p.state == "done" and p.location_dest_id.usage == "customer"
        )
        return pickings.sorted(lambda p: (p.date_done, p.id), reverse=True)
