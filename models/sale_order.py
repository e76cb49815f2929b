from datetime import timedelta

from flectra import _, api, fields, models
from flectra.exceptions import UserError
from flectra.osv import expression

# Cart changes closer together than this write the last activity once.
CART_ACTIVITY_RESOLUTION = timedelta(minutes=1)

# The three steps of the eCommerce documentation, plus the way out.
ECOMMERCE_STATUS = [
    ("quotation", "Quotation"),
    ("sent", "Quotation sent"),
    ("order", "Order"),
    ("cancel", "Cancelled"),
]
# A web order created in one of these states is placed already: its
# salesperson's turn is taken at once (website._assign_placed_orders).
PLACED_STATES = ("sent", "sale", "done")
SALE_STATE_TO_ECOMMERCE = {
    "draft": "quotation",
    "sent": "sent",
    "sale": "order",
    "done": "order",
    "cancel": "cancel",
}


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # --- Order queues and statuses ---------------------------------------------
    ecommerce_status = fields.Selection(
        ECOMMERCE_STATUS,
        string="eCommerce Status",
        compute="_compute_ecommerce_status",
        store=True,
        help="Where a web order stands: a cart or quotation, a quotation whose "
        "customer checked out (Quotation sent), or a confirmed order.",
    )
    # Not stored: a stored flag was recomputed by every checkout's payment;
    # the queues search the pending offline payments instead (few, indexed).
    awaiting_offline_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        search="_search_awaiting_offline_payment",
        help="The customer chose an offline payment method (wire transfer, pay "
        "in store) and the money has not been received yet.",
    )
    awaiting_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        search="_search_awaiting_payment",
        help="Confirmed, but the offline payment is still pending: do not treat it as paid.",
    )
    assignment_pending = fields.Boolean(
        "Salesperson to Assign",
        readonly=True,
        copy=False,
        help='Placed by the customer on the website: the cron "eCommerce: Assign '
        "Placed Web Orders\" gives it its salesperson, by the website's rule, "
        "within a minute.",
    )

    # --- Online returns --------------------------------------------------------
    return_request_ids = fields.One2many(
        "sale.return.request", "order_id", string="Return Requests"
    )
    return_request_count = fields.Integer(compute="_compute_return_request_count")

    # --- Abandoned-cart e-mails ------------------------------------------------
    cart_last_activity = fields.Datetime(
        "Last Cart Activity",
        copy=False,
        readonly=True,
        help="Last time a product was added, removed or changed in this cart. "
        "The cart is abandoned when this is older than the website's delay.",
    )
    cart_reminder_count = fields.Integer(
        "Abandoned Cart E-mails Sent",
        default=0,
        copy=False,
        readonly=True,
        help="How many automatic abandoned cart e-mails this cart received: "
        "the first e-mail, then one per follow-up reminder.",
    )
    cart_reminder_last_sent = fields.Datetime(
        "Last Abandoned Cart E-mail",
        copy=False,
        readonly=True,
    )
    cart_reminder_error = fields.Char(
        "Abandoned Cart E-mail Error",
        copy=False,
        readonly=True,
        help="Why this cart's abandoned cart e-mail could not be built (its "
        "address or the template): it gets no more abandoned cart e-mails.",
    )

    # --- What the reminders brought back (website.cart.recovery.event) ---------
    cart_resume_click_count = fields.Integer(
        "Resume Clicks",
        default=0,
        copy=False,
        readonly=True,
        help="Clicks on the Resume your order link of this cart's abandoned cart "
        "e-mails, at most one an hour.",
    )
    cart_resume_click_last = fields.Datetime(
        "Last Resume Click",
        copy=False,
        readonly=True,
        help="The last click on the Resume your order link that was counted.",
    )
    cart_recovery_step = fields.Integer(
        "Recovered by E-mail",
        copy=False,
        readonly=True,
        help="This order was confirmed within the website's recovery window after "
        "an abandoned cart e-mail: the number of the last e-mail the cart had "
        "received (1: the first e-mail, 2: the first follow-up reminder, ...).",
    )
    cart_recovered_date = fields.Datetime(
        "Recovered on",
        copy=False,
        readonly=True,
        help="When this order, brought back by an abandoned cart e-mail, was confirmed.",
    )
    cart_recovered_cart_id = fields.Many2one(
        "sale.order",
        "Recovered Cart",
        copy=False,
        readonly=True,
        help="The e-mailed cart this order recovers: the order itself, or an "
        "earlier cart of the same customer when they came back without the link.",
    )

    # --- Refunds from the order ------------------------------------------------
    refund_ledger_ids = fields.One2many(
        "sale.order.refund.line",
        "order_id",
        readonly=True,
        copy=False,
        help="What the refunds of this order gave back, per line: the one record every "
        "refund door reads.",
    )
    refund_transaction_ids = fields.Many2many(
        "payment.transaction",
        string="Refunds",
        compute="_compute_refund_state",
    )
    online_refundable_amount = fields.Monetary(
        "Left to Refund",
        compute="_compute_refund_state",
        currency_field="currency_id",
        help="Paid online and neither refunded nor being refunded.",
    )
    can_refund_online = fields.Boolean(compute="_compute_refund_state")
    has_failed_refund = fields.Boolean(
        compute="_compute_refund_state",
        help="A refund failed: the button retries it instead of refunding anew.",
    )

    # ------------------------------------------------------------------
    # Compute and search methods
    # ------------------------------------------------------------------

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

    def _search_awaiting_offline_payment(self, operator, value):
        return self._get_awaiting_payment_domain(operator, value)

    def _search_awaiting_payment(self, operator, value):
        return self._get_awaiting_payment_domain(
            operator, value, confirmed=[("state", "in", ("sale", "done"))]
        )

    def _get_awaiting_payment_domain(self, operator, value, confirmed=None):
        # One subquery: the orders of pending payments of an offline acquirer.
        pending = (
            self.env["payment.transaction"]
            .sudo()
            ._search([("state", "=", "pending"), ("acquirer_id.is_offline_payment", "=", True)])
        )
        domain = expression.AND([[("transaction_ids", "in", pending)], confirmed or []])
        if (operator in expression.NEGATIVE_TERM_OPERATORS) == bool(value):
            return ["!"] + expression.normalize_domain(domain)
        return domain

    def _compute_return_request_count(self):
        data = self.env["sale.return.request"].read_group(
            [("order_id", "in", self.ids)], ["order_id"], ["order_id"]
        )
        counts = {row["order_id"][0]: row["order_id_count"] for row in data}
        for order in self:
            order.return_request_count = counts.get(order.id, 0)

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
        domain = expression.AND(
            [
                [("state", "=", "draft"), ("order_line", "!=", False)],
                expression.OR(per_website or [expression.FALSE_DOMAIN]),
            ]
        )
        positive = (operator not in expression.NEGATIVE_TERM_OPERATORS) == bool(value)
        if positive:
            return domain
        return ["!"] + expression.normalize_domain(domain)

    @api.depends(
        "state",
        "amount_total",
        "transaction_ids.state",
        "transaction_ids.amount",
        "transaction_ids.refund_transaction_ids.state",
        "transaction_ids.refund_transaction_ids.amount",
    )
    def _compute_refund_state(self):
        for order in self:
            payments = order._get_online_payments()
            # A shared payment's refunds for other orders are theirs, not ours.
            refunds = payments.refund_transaction_ids.filtered(
                lambda r, order=order: r.refund_sale_order_id in (order, order.browse())
            )
            order.refund_transaction_ids = refunds
            order.online_refundable_amount = order._get_online_refundable_amount(payments)
            order.has_failed_refund = any(refund._is_failed_refund() for refund in refunds)
            order.can_refund_online = order.state != "cancel" and (
                order.online_refundable_amount > 0 or order.has_failed_refund
            )

    # ------------------------------------------------------------------
    # CRUD and ORM overrides
    # ------------------------------------------------------------------

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
        # Every visit of a cart link (the e-mails' Resume your order, the
        # portal's) looks the cart up by its access token, which portal does
        # not index: without this, each anonymous click scans sale_order.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS sale_order_wsoh_access_token_index
                ON sale_order (access_token) WHERE access_token IS NOT NULL
            """
        )
        return res

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "transaction_ids" in vals:
                self.env["payment.transaction"]._check_order_links_unchanged(
                    self.browse(), vals["transaction_ids"]
                )
        orders = super().create(vals_list)
        # --- Assignment: an order created already placed takes its turn now.
        if any(vals.get("state") in PLACED_STATES for vals in vals_list):
            self.env["website"]._assign_placed_orders(orders)
        return orders

    def write(self, vals):
        # The same link as payment.transaction.sale_order_ids, from this side.
        if "transaction_ids" in vals:
            self.env["payment.transaction"]._check_order_links_unchanged(
                self, vals["transaction_ids"]
            )
        if vals.get("user_id"):
            # A salesperson, given by hand or by the turn, ends the wait.
            vals = dict(vals, assignment_pending=False)
        res = super().write(vals)
        # --- Assignment: a web order takes its salesperson's turn when it is
        # placed: Quotation sent (the payment step) here, or confirmed
        # (action_confirm), whichever comes first; never as a cart.
        if vals.get("state") == "sent":
            self.env["website"]._assign_placed_orders(self)
        return res

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_confirm(self):
        res = super().action_confirm()
        # --- Assignment: once confirmed, as the confirmation's own writes may
        # need the confirming salesperson's rights on an unassigned order.
        self.env["website"]._assign_placed_orders(self)
        # Every path to a confirmed order comes here: the payment, the
        # salesperson's button, the To Confirm queue.
        self.env["website.cart.recovery.event"]._record_recoveries(self)
        return res

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
                    "Skipped, as they are no longer quotations (already confirmed or "
                    "cancelled): %s.",
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

    def action_refund(self):
        """Refund to the customer what this order paid online and has left to
        refund, with a credit note if invoiced (the refund engine's flow).

        A refund of this order that failed before is retried (same idempotency
        key) rather than doubled, but only from the Retry Refund button, whose
        confirmation says so (context ``refund_retry``).
        """
        self.ensure_one()
        engine = self.env["sale.order.refund.engine"]
        result = engine._refund(self, retry=bool(self.env.context.get("refund_retry")))
        return engine._notification(result)

    def action_retry_refund(self):
        """The Retry Refund button: send this order's failed refunds again."""
        return self.with_context(refund_retry=True).action_refund()

    def action_open_refund_wizard(self):
        """The Refund button: choose lines or an amount, and say why, before refunding."""
        self.ensure_one()
        engine = self.env["sale.order.refund.engine"]
        engine._check_access(self)
        payments = engine.sudo()._check_payments_to_refund(self.sudo())
        # As before the wizard existed: an acquirer that cannot refund is named at once.
        unsupported = payments.acquirer_id.filtered(lambda a: a.support_refund == "none")
        if unsupported:
            raise UserError(unsupported[0]._get_refund_unsupported_message())
        return {
            "name": _("Refund %s", self.name),
            "type": "ir.actions.act_window",
            "res_model": "sale.order.refund.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_order_id": self.id},
        }

    # ------------------------------------------------------------------
    # Business methods: online returns
    # ------------------------------------------------------------------

    def _get_return_refusal_reason(self):
        """Why this order cannot be returned online at all, or ''."""
        self.ensure_one()
        if not self.website_id.allow_online_returns:
            return _("This shop does not accept online returns.")
        if self.state not in ("sale", "done"):
            return _("Only confirmed orders can be returned.")
        return ""

    def _get_return_lines_info(self):
        """One entry per delivered product line, for the return form (see
        sale.order.line._get_return_info)."""
        self.ensure_one()
        lines = self.order_line.filtered(lambda ln: not ln.display_type)
        return lines._get_return_info(since=self._get_return_window_start())

    def _get_return_window_start(self):
        """Deliveries done before this datetime are out of the return window."""
        days = self.website_id.return_window_days
        return fields.Datetime.now() - timedelta(days=days) if days else False

    def _get_return_lookup_url(self):
        """The guests' Return an order page, for the order confirmation
        e-mail of a web order whose website takes online returns, or ''."""
        self.ensure_one()
        if not (self.website_id.allow_online_returns and self.state in ("sale", "done")):
            return ""
        return "%s/shop/return" % self.get_base_url()

    def _can_request_return(self):
        """True when the "Return products" button should show on the order:
        _get_return_lines_info's rule, in one query (every view of the page)."""
        self.ensure_one()
        if self._get_return_refusal_reason():
            return False
        return self.order_line._has_returnable_qty(since=self._get_return_window_start())

    # ------------------------------------------------------------------
    # Business methods: abandoned carts
    # ------------------------------------------------------------------

    def _cart_update(self, product_id=None, line_id=None, add_qty=0, set_qty=0, **kwargs):
        values = super()._cart_update(
            product_id=product_id, line_id=line_id, add_qty=add_qty, set_qty=set_qty, **kwargs
        )
        # Even an update that changes nothing is the customer working on the cart.
        self._touch_cart_activity()
        return values

    def _touch_cart_activity(self):
        """Record that the customer worked on these draft web carts now.

        A cart touched less than a minute ago is not written again: one
        add-to-cart touches it twice (line, then cart), and the abandoned
        delay counts in hours, so the minute costs nothing but a write.
        """
        now = fields.Datetime.now()
        carts = self.filtered(
            lambda order: (
                order.website_id
                and order.state == "draft"
                and not (
                    order.cart_last_activity
                    and now - CART_ACTIVITY_RESOLUTION <= order.cart_last_activity <= now
                )
            )
        )
        if carts:
            carts.sudo().write({"cart_last_activity": now})

    def message_notify(self, **kwargs):
        # A web cart's notifications, such as the "assigned to you" e-mail to
        # the website's salesperson, leave through the mail queue: the customer
        # adding to the cart never waits for SMTP. (A caller's
        # mail_notify_force_send context still decides, as in mail: the
        # assignment of a placed order queues its e-mail that way.)
        if any(order.website_id and order.state == "draft" for order in self):
            kwargs.setdefault("force_send", False)
        return super().message_notify(**kwargs)

    def get_cart_resume_url(self):
        """The link that restores this cart in the shop (website_sale's revive flow).

        Public, as mail templates may only call public methods.
        """
        self.ensure_one()
        # revive=squash: the customer gets this cart back even if the browser holds another one.
        return "%s/shop/cart?access_token=%s&revive=squash" % (
            self.get_base_url(),
            self.access_token,
        )

    def get_cart_unsubscribe_url(self):
        """The link that stops abandoned cart e-mails to this cart's address: a
        page with a confirm button, and the RFC 8058 one-click POST target.

        Public, as mail templates may only call public methods.
        """
        self.ensure_one()
        return self.env["website.abandoned.cart.mailer"]._get_unsubscribe_url(self)

    def get_cart_prices_tax_included(self):
        """Whether the shop shows its customers prices with taxes (the Accounting
        setting behind website_sale's cart), for e-mails that have no web user."""
        return (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("account.show_line_subtotals_tax_selection", "tax_excluded")
            == "tax_included"
        )

    # ------------------------------------------------------------------
    # Business methods: refunds
    # ------------------------------------------------------------------

    def _get_online_refundable_amount(self, payments=None):
        """This order's own share of its payments that is left to refund, but
        what the variants the customer took in exchange are worth."""
        self.ensure_one()
        if payments is None:
            payments = self._get_online_payments()
        if not payments:
            # Also a new order in a form, which has no currency yet.
            return 0.0
        left = sum(payment._get_order_refundable_amount(self) for payment in payments)
        kept = self.env["sale.return.exchange"]._get_kept_amount(self)
        return self.currency_id.round(max(left - kept, 0.0))

    def _get_online_payments(self):
        """Captured online payments of the order that refunds may use (refunds
        and payments the shop did not create as they are left out), oldest first."""
        self.ensure_one()
        return self.sudo().transaction_ids.filtered(lambda tx: tx._is_refund_source()).sorted("id")

    def _get_payments_left_out(self):
        """Captured payments of the order that refunds leave out: the shop did
        not create them as they are (see payment.transaction._is_refund_source)."""
        self.ensure_one()
        captured = self.sudo().transaction_ids.filtered(
            lambda tx: tx.state == "done" and not tx.is_refund
        )
        return captured - self._get_online_payments()

    def _get_posted_invoices(self):
        return self.invoice_ids.filtered(
            lambda move: move.move_type == "out_invoice" and move.state == "posted"
        )
