from datetime import timedelta
from email.utils import formataddr

from flectra import _, api, fields, models
from flectra.osv import expression
from flectra.tools import float_is_zero, html_escape

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

    # --- Online returns --------------------------------------------------------
    return_request_ids = fields.One2many(
        "sale.return.request", "order_id", string="Return Requests"
    )
    return_request_count = fields.Integer(compute="_compute_return_request_count")

    def _compute_return_request_count(self):
        data = self.env["sale.return.request"].read_group(
            [("order_id", "in", self.ids)], ["order_id"], ["order_id"]
        )
        counts = {row["order_id"][0]: row["order_id_count"] for row in data}
        for order in self:
            order.return_request_count = counts.get(order.id, 0)

    def action_view_return_requests(self):
        self.ensure_one()
        action = self.env["ir.actions.actions"]._for_xml_id(
            "website_sale_order_handling.sale_return_request_action"
        )
        action["domain"] = [("order_id", "=", self.id)]
        action["context"] = {"create": False}
        if self.return_request_count == 1:
            action["views"] = [(False, "form")]
            action["res_id"] = self.return_request_ids.id
        return action

    def _get_return_refusal_reason(self):
        """Why this order cannot be returned online at all, or ''."""
        self.ensure_one()
        if not self.website_id.allow_online_returns:
            return _("This shop does not accept online returns.")
        if self.state not in ("sale", "done"):
            return _("Only confirmed orders can be returned.")
        return ""

    def _get_return_lines_info(self):
        """One entry per delivered product line, for the return form.

        Each entry: ``line``, ``delivered`` and ``returnable`` quantities (in
        the line's unit), and ``refusal`` (why it cannot be returned, or '').
        """
        self.ensure_one()
        since = self._get_return_window_start()
        info = []
        for line in self.order_line.filtered(lambda ln: not ln.display_type):
            if line.product_id.type in ("product", "consu"):
                delivered = line._get_return_delivered_qty()
            else:
                # Services have no transfer: they are listed (disabled) as delivered by hand.
                delivered = line.qty_delivered
            if float_is_zero(delivered, precision_rounding=line.product_uom.rounding):
                continue
            refusal = line.product_id.product_tmpl_id._get_return_refusal_reason()
            returnable = 0.0 if refusal else line._get_returnable_qty(since=since)
            if not refusal and float_is_zero(
                returnable, precision_rounding=line.product_uom.rounding
            ):
                if since and line._get_return_delivered_qty(since=since) <= 0:
                    refusal = _("The return period for this product has ended.")
                else:
                    refusal = _("Everything delivered is already returned or requested.")
            info.append(
                {
                    "line": line,
                    "delivered": delivered,
                    "returnable": returnable,
                    "refusal": refusal,
                }
            )
        return info

    def _get_return_window_start(self):
        """Deliveries done before this datetime are out of the return window."""
        days = self.website_id.return_window_days
        return fields.Datetime.now() - timedelta(days=days) if days else False

    def _can_request_return(self):
        """True when the "Return products" button should show on the order."""
        self.ensure_one()
        if self._get_return_refusal_reason():
            return False
        return any(entry["returnable"] > 0 for entry in self._get_return_lines_info())

    # --- Abandoned-cart e-mails ------------------------------------------------
    cart_last_activity = fields.Datetime(
        "Last Cart Activity", copy=False, readonly=True,
        help="Last time a product was added, removed or changed in this cart. "
        "The cart is abandoned when this is older than the website's delay.",
    )
    cart_reminder_count = fields.Integer(
        "Abandoned Cart E-mails Sent", default=0, copy=False, readonly=True,
        help="How many automatic abandoned cart e-mails this cart received: "
        "the first e-mail, then one per follow-up reminder.",
    )
    cart_reminder_last_sent = fields.Datetime(
        "Last Abandoned Cart E-mail", copy=False, readonly=True,
    )

    def init(self):
        res = super().init()
        # The cron and the Abandoned Carts menu look for draft web orders of one
        # website by last activity (first e-mail) or by last e-mail (follow-ups):
        # these partial indexes keep that an index range scan on a big sale_order.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS sale_order_cart_activity_draft_index
                ON sale_order (website_id, cart_last_activity, id)
             WHERE state = 'draft' AND website_id IS NOT NULL;
            CREATE INDEX IF NOT EXISTS sale_order_cart_reminder_sent_draft_index
                ON sale_order (website_id, cart_reminder_last_sent, id)
             WHERE state = 'draft' AND cart_reminder_last_sent IS NOT NULL;
            """
        )
        # Carts older than the add-on get their last change as last activity,
        # so the Abandoned Carts menu keeps showing them.
        self.env.cr.execute(
            """
            UPDATE sale_order
               SET cart_last_activity = COALESCE(write_date, date_order)
             WHERE cart_last_activity IS NULL AND website_id IS NOT NULL AND state = 'draft'
            """
        )
        return res

    @api.depends("website_id", "cart_last_activity", "order_line", "state", "partner_id")
    def _compute_abandoned_cart(self):
        # Same rule as _search_abandoned_cart, measured from the last cart change.
        now = fields.Datetime.now()
        for order in self:
            website = order.website_id
            order.is_abandoned_cart = bool(
                website
                and order.state == "draft"
                and order.cart_last_activity
                and order.cart_last_activity <= now - website._get_cart_abandoned_timedelta()
                and order.partner_id != website.user_id.partner_id
                and order.order_line
            )

    def _search_abandoned_cart(self, operator, value):
        # Flectra 2.0 uses the delay of an empty recordset (so always 1 hour) and
        # one public partner for all websites: build one clause per website so
        # the menu, the sales team dashboard and the cron agree.
        now = fields.Datetime.now()
        per_website = [
            [
                ("website_id", "=", website.id),
                ("cart_last_activity", "<=", now - website._get_cart_abandoned_timedelta()),
                ("partner_id", "!=", website.user_id.partner_id.id),
            ]
            for website in self.env["website"].sudo().search([])
        ]
        domain = expression.AND([
            [("state", "=", "draft"), ("order_line", "!=", False)],
            expression.OR(per_website or [expression.FALSE_DOMAIN]),
        ])
        positive = (operator not in expression.NEGATIVE_TERM_OPERATORS) == bool(value)
        if positive:
            return domain
        return ["!"] + expression.normalize_domain(domain)

    def _cart_update(self, product_id=None, line_id=None, add_qty=0, set_qty=0, **kwargs):
        values = super()._cart_update(
            product_id=product_id, line_id=line_id, add_qty=add_qty, set_qty=set_qty, **kwargs
        )
        # Even an update that changes nothing is the customer working on the cart.
        self._touch_cart_activity()
        return values

    def _touch_cart_activity(self):
        """Record that the customer worked on these draft web carts now."""
        carts = self.filtered(lambda order: order.website_id and order.state == "draft")
        if carts:
            carts.sudo().write({"cart_last_activity": fields.Datetime.now()})

    def get_cart_resume_url(self):
        """The link that restores this cart in the shop (website_sale's revive flow).

        Public, as mail templates may only call public methods.
        """
        self.ensure_one()
        # revive=squash: the customer gets this cart back even if the browser holds another one.
        return "%s/shop/cart?access_token=%s&revive=squash" % (self.get_base_url(), self.access_token)

    def get_cart_unsubscribe_url(self):
        """One-click link that stops abandoned cart e-mails to this customer."""
        self.ensure_one()
        partner = self.partner_id
        return "%s/shop/cart/unsubscribe/%s/%s" % (
            self.get_base_url(), partner.id, partner._cart_reminder_unsubscribe_token()
        )

    def _filter_cart_reminder_in_stock(self):
        """The carts whose products can all be ordered now.

        A stored product that the website refuses to sell out of stock
        (website_sale_stock's 'always' and 'threshold') must have the cart's
        quantity available in the website's warehouse, as the checkout checks.
        Done for a whole batch: a few queries, not a few per cart.
        """
        lines = self.mapped("order_line").filtered(
            lambda line: line.product_id.type == "product"
            and line.product_id.inventory_availability in ("always", "threshold")
        )
        if not lines:
            return self
        blocked = self.browse()
        for website in self.mapped("website_id"):
            site_lines = lines.filtered(lambda line, site=website: line.order_id.website_id == site)
            products = site_lines.mapped("product_id").with_context(
                warehouse=website._get_warehouse_available()
            )
            available = {product.id: product.virtual_available for product in products}
            needed = {}
            for line in site_lines:
                key = (line.order_id, line.product_id.id)
                needed[key] = needed.get(key, 0.0) + line.product_uom_qty
            blocked |= self.browse(
                [order.id for (order, product_id), qty in needed.items()
                 if qty > available[product_id]]
            )
        return self - blocked

    def _prepare_cart_reminder_mail_vals(self, rendered, step_name):
        """Values of the queued mail.mail of one claimed cart.

        The mail is also the chatter note of the order: its mail.message part
        (``body``) is a short log line, the e-mail itself is ``body_html``.
        """
        self.ensure_one()
        partner = self.partner_id
        body_html = rendered["body_html"] or ""
        subject = rendered["subject"] or ""
        return {
            "model": self._name,
            "res_id": self.id,
            "record_name": self.name,
            "message_type": "comment",
            "subtype_id": self.env["ir.model.data"].xmlid_to_res_id("mail.mt_note"),
            "is_internal": True,
            "body": _(
                "<p>%(step)s e-mailed to %(email)s: <em>%(subject)s</em></p>",
                step=html_escape(step_name),
                email=html_escape(partner.email),
                subject=html_escape(subject),
            ),
            "subject": subject,
            "body_html": body_html,
            "email_from": rendered["email_from"] or self.company_id.email_formatted,
            "reply_to": rendered["reply_to"] or False,
            "email_to": formataddr((partner.name or "", partner.email)),
            "headers": repr({
                "List-Unsubscribe": "<%s>" % self.get_cart_unsubscribe_url(),
            }),
            "auto_delete": False,
            "is_cart_reminder": True,
        }

    def _send_cart_reminder_emails(self, template, step_name):
        """Queue the abandoned cart e-mail of these claimed carts, in bulk.

        The template is rendered for the whole batch at once and the mails
        are created in one call; they leave through Flectra's mail queue, so
        an SMTP outage delays them and loses none.
        """
        if not self:
            return self.env["mail.mail"]
        rendered = {
            field: template._render_field(field, self.ids, compute_lang=True)
            for field in ("subject", "body_html", "email_from", "reply_to")
        }
        return self.env["mail.mail"].sudo().create([
            order._prepare_cart_reminder_mail_vals(
                {field: values[order.id] for field, values in rendered.items()}, step_name
            )
            for order in self
        ])
