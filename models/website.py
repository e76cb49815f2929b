import logging
import threading
from datetime import timedelta

from flectra import _, api, fields, models
from flectra.exceptions import ValidationError
from flectra.http import request

_logger = logging.getLogger(__name__)

ASSIGNMENT_MODES = [
    ("fixed", "Fixed salesperson"),
    ("round_robin", "Round robin over the sales team"),
    ("customer_first", "Customer's salesperson, else round robin"),
]


class Website(models.Model):
    _inherit = "website"

    # --- Assignment of web orders --------------------------------------------
    order_assignment_mode = fields.Selection(
        ASSIGNMENT_MODES,
        string="Assign Web Orders",
        default="fixed",
        required=True,
        help="Fixed: every web order goes to the website's salesperson.\n"
        "Round robin: each placed order (paid, waiting for its payment, or "
        "confirmed) goes to the next active member of the website's sales team, "
        "in turn; carts wait with the team and no salesperson.\n"
        "Customer's salesperson: a customer who has a salesperson keeps them; "
        "the others are assigned in turn.",
    )
    order_assignment_sequence_id = fields.Many2one(
        "ir.sequence",
        copy=False,
        readonly=True,
        help="Technical: the counter that gives each placed order its turn.",
    )

    # --- Online returns: the return policy -----------------------------------
    allow_online_returns = fields.Boolean(
        string="Accept Online Returns",
        help="Customers can ask to return delivered products from their order page.",
    )
    return_window_days = fields.Integer(
        string="Return Window (days)",
        default=30,
        help="Days after the delivery during which products can be returned; 0 means no limit.",
    )
    return_exchange_shipping = fields.Selection(
        [
            ("received", "When the returned products are received"),
            ("approval", "At once, when the return is approved"),
        ],
        string="Ship Exchanges",
        required=True,
        default="received",
        help="When the variant a customer takes in exchange leaves the warehouse. It is "
        "reserved as soon as the return is approved either way.",
    )
    # A guest's "Return an order" page e-mails a link; these limit how often.
    return_lookup_limit_per_address = fields.Integer(
        "Return Lookups per E-mail Address",
        default=3,
        help="How many times an hour the Return an order page answers for one e-mail address.",
    )
    return_lookup_limit_per_client = fields.Integer(
        "Return Lookups per Client",
        default=10,
        help="How many times an hour the Return an order page answers one client "
        "(its IP address, as the server sees it).",
    )

    # --- Abandoned-cart e-mails ------------------------------------------------
    send_abandoned_cart_email = fields.Boolean(
        "Automatically send abandoned checkout emails",
        help="E-mail customers who left a cart with their contact details, once the "
        "cart has been abandoned for the delay, then the follow-up reminders.",
    )
    abandoned_cart_email_start = fields.Datetime(
        "Abandoned Cart E-mails Since",
        readonly=True,
        copy=False,
        help="When automatic abandoned cart e-mails were switched on: carts left "
        "before that are never e-mailed.",
    )
    # The automatic first e-mail has its own template: website_sale's
    # cart_recovery_mail_template_id stays the one a salesperson sends by hand.
    cart_reminder_mail_template_id = fields.Many2one(
        "mail.template",
        "Abandoned Cart E-mail Template",
        domain="[('model', '=', 'sale.order')]",
        default=lambda self: self._default_cart_reminder_template(),
        help="The first automatic e-mail of an abandoned cart. The follow-up "
        "reminders have their own templates; the e-mail a salesperson sends "
        "from the order keeps the website's Cart Recovery Email.",
    )
    cart_reminder_ids = fields.One2many(
        "website.cart.reminder",
        "website_id",
        string="Follow-up Reminders",
    )
    cart_followup_count = fields.Integer(
        "Follow-up Reminder Count",
        compute="_compute_cart_followup_count",
    )
    cart_recovery_window_days = fields.Integer(
        "Recovery Window (days)",
        default=7,
        required=True,
        help="An order confirmed this many days or less after an abandoned cart "
        "e-mail counts as recovered by it.",
    )

    @api.depends("cart_reminder_ids")
    def _compute_cart_followup_count(self):
        for website in self:
            website.cart_followup_count = len(website.cart_reminder_ids)

    @api.constrains("return_window_days")
    def _check_return_window_days(self):
        if any(website.return_window_days < 0 for website in self):
            raise ValidationError(_("The return window cannot be negative."))

    @api.constrains("return_lookup_limit_per_address", "return_lookup_limit_per_client")
    def _check_return_lookup_limits(self):
        if any(
            website.return_lookup_limit_per_address < 1
            or website.return_lookup_limit_per_client < 1
            for website in self
        ):
            raise ValidationError(_("The limits of the Return an order page must be at least 1."))

    @api.constrains("cart_recovery_window_days")
    def _check_cart_recovery_window_days(self):
        if any(website.cart_recovery_window_days < 1 for website in self):
            raise ValidationError(
                _("The recovery window of abandoned carts must be at least one day.")
            )

    @api.model_create_multi
    def create(self, vals_list):
        websites = super().create(vals_list)
        websites.filtered(
            lambda w: w.order_assignment_mode != "fixed"
        )._ensure_assignment_sequence()
        websites.filtered("send_abandoned_cart_email")._start_abandoned_cart_email()
        return websites

    def write(self, vals):
        switched_on = self.browse()
        if vals.get("send_abandoned_cart_email"):
            switched_on = self.filtered(lambda website: not website.send_abandoned_cart_email)
        res = super().write(vals)
        if vals.get("order_assignment_mode") not in (None, "fixed"):
            self._ensure_assignment_sequence()
        switched_on._start_abandoned_cart_email()
        return res

    def _ensure_assignment_sequence(self):
        # Created when the mode is chosen, so checkouts only ever read it.
        for website in self.sudo().filtered(lambda w: not w.order_assignment_sequence_id):
            website._create_assignment_sequence()

    def _get_round_robin_members(self):
        """The salespeople who take turns: active internal members of the team
        who may work in the website's company (else they could not see the order)."""
        self.ensure_one()
        return (
            self.salesteam_id.sudo()
            .member_ids.filtered(lambda user: user._can_take_web_orders_of(self.company_id))
            .sorted("id")
        )

    def _next_assignment_turn(self):
        """A counter value no other transaction will ever get.

        It comes from a PostgreSQL sequence (nextval), which is atomic and not
        rolled back: two orders placed at the same moment by two requests
        always get different turns, without locking any row.
        """
        self.ensure_one()
        sequence = self.sudo().order_assignment_sequence_id
        if not sequence:
            sequence = self.sudo()._create_assignment_sequence()
        return int(sequence.next_by_id())

    def _create_assignment_sequence(self):
        self.ensure_one()
        sequence = (
            self.env["ir.sequence"]
            .sudo()
            .create(
                {
                    "name": "Web order assignment (%s)" % self.name,
                    "implementation": "standard",
                    "padding": 0,
                    "company_id": False,
                }
            )
        )
        self.order_assignment_sequence_id = sequence
        return sequence

    def _get_round_robin_salesperson(self):
        """The next team member in turn, or the fallbacks when the team has none."""
        self.ensure_one()
        members = self._get_round_robin_members()
        if members:
            return members[(self._next_assignment_turn() - 1) % len(members)]
        # Never fail a checkout: the website's salesperson, else nobody.
        return self.salesperson_id

    def _get_web_order_salesperson(self, partner):
        """The salesperson a new web order of `partner` goes to (may be empty)."""
        self.ensure_one()
        if self.order_assignment_mode == "customer_first":
            own = (partner.user_id or partner.commercial_partner_id.user_id).sudo()
            if own._can_take_web_orders_of(self.company_id):
                return own
            return self._get_round_robin_salesperson()
        if self.order_assignment_mode == "round_robin":
            return self._get_round_robin_salesperson()
        return self.salesperson_id

    def _prepare_sale_order_values(self, partner, pricelist):
        values = super()._prepare_sale_order_values(partner, pricelist)
        if self.order_assignment_mode == "fixed":
            return values
        # An affiliate link names its salesperson: that choice wins.
        affiliate_id = request and request.session.get("affiliate_id")
        if affiliate_id and self.env["res.users"].sudo().browse(affiliate_id).exists():
            return values
        # Round robin shares out orders, not carts: a new cart waits with the
        # website's team and nobody, and takes its turn once placed
        # (_assign_placed_orders). Most carts are abandoned and never do.
        values["user_id"] = False
        return values

    @api.model
    def _assign_placed_orders(self, orders):
        """Give each placed web order that has no salesperson yet its
        salesperson, by its website's rule (round robin, customer first);
        sale.order calls this when an order becomes Quotation sent (the
        payment step) or is confirmed, whichever comes first.

        In the customer's own requests (the checkout, the payment, a payment
        provider's notification: a portal or public user), the order is only
        marked to assign, and the "Assign Placed Web Orders" cron takes its
        turn within a minute: the customer never waits for what Flectra does
        when an order gets a salesperson (follower, notification, tracking).
        A salesperson's action (confirm, send) assigns at once.
        """
        candidates = self._get_assignment_candidates(orders)
        if not candidates:
            return
        if self.env.user.share:
            candidates.filtered(lambda order: not order.assignment_pending).write(
                {"assignment_pending": True}
            )
            return
        self._assign_now(candidates)

    @api.model
    def _get_assignment_candidates(self, orders):
        return orders.sudo().filtered(
            lambda order: (
                order.website_id
                and not order.user_id
                and order.state != "cancel"
                and order.website_id.order_assignment_mode != "fixed"
            )
        )

    @api.model
    def _assign_now(self, candidates, skip_locked=False):
        """Assign ``candidates`` (see _get_assignment_candidates) now.

        Exactly once: only orders whose row still has no salesperson are
        assigned, locked until this transaction ends. Another transaction
        assigning the same order at the same time waits for this one, then
        fails to serialize (Flectra retries the request, which finds the
        salesperson and assigns nothing); the cron (``skip_locked``) skips
        it instead. A salesperson set by hand or by an affiliate link is
        never replaced. The "assigned to you" notification goes through the
        mail queue.
        """
        candidates.flush(["user_id"])
        self.env.cr.execute(
            "SELECT id FROM sale_order WHERE id IN %s AND user_id IS NULL FOR UPDATE"
            + (" SKIP LOCKED" if skip_locked else ""),
            [tuple(candidates.ids)],
        )
        free = candidates.browse([row[0] for row in self.env.cr.fetchall()])
        for order in free.with_context(tracking_disable=False, mail_notify_force_send=False):
            website = order.website_id.with_company(order.company_id)
            salesperson = website._get_web_order_salesperson(order.partner_id)
            vals = {"assignment_pending": False} if order.assignment_pending else {}
            # No salesperson at all (an empty team, no website salesperson):
            # the order stays with the team, as in fixed mode.
            if salesperson:
                vals["user_id"] = salesperson.id
            if vals:
                order.write(vals)

    @api.model
    def _cron_assign_placed_orders(self, batch_size=100):
        """Give the web orders the customers placed their salesperson, in the
        order they were placed. An order that fails is logged and waits for
        the next run; the others are assigned."""
        # Like Flectra's mail queue cron: commit between batches, except in tests.
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        Order = self.env["sale.order"].sudo()
        last_id = 0
        while True:
            waiting = Order.search(
                [("assignment_pending", "=", True), ("id", ">", last_id)],
                order="id",
                limit=batch_size,
            )
            if not waiting:
                return
            last_id = waiting[-1].id
            candidates = self._get_assignment_candidates(waiting)
            # Given a salesperson by hand meanwhile, cancelled, or the website
            # went back to a fixed salesperson: no turn to take.
            (waiting - candidates).write({"assignment_pending": False})
            for order in candidates:
                try:
                    with self.env.cr.savepoint():
                        self._assign_now(order, skip_locked=True)
                except Exception:
                    _logger.exception(
                        "Web order %s could not be given its salesperson: "
                        "it waits for the next run",
                        order.name,
                    )
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit

    # --- Abandoned-cart e-mails: settings (the engine is website.abandoned.cart.mailer) ---
    def _start_abandoned_cart_email(self):
        """Start now: carts abandoned before today are not mass-mailed."""
        for website in self:
            vals = {"abandoned_cart_email_start": fields.Datetime.now()}
            if not website.cart_reminder_mail_template_id:
                vals["cart_reminder_mail_template_id"] = self._default_cart_reminder_template().id
            website.write(vals)

    @api.model
    def _default_cart_reminder_template(self):
        return (
            self.env.ref(
                "website_sale_order_handling.mail_template_abandoned_cart_reminder",
                raise_if_not_found=False,
            )
            or self.env["mail.template"]
        )

    def _get_cart_abandoned_timedelta(self):
        """How long a cart stays untouched before it is abandoned (native default: 1 hour)."""
        self.ensure_one()
        return timedelta(hours=self.cart_abandoned_delay or 1.0)

    def action_open_abandoned_cart_template(self):
        """Open this website's own abandoned cart template, copying a shared one
        first, so customizing it never changes another website's e-mails."""
        self.ensure_one()
        master = self._default_cart_reminder_template()
        template = self.cart_reminder_mail_template_id or master
        shared = template == master or self.search_count(
            [
                ("cart_reminder_mail_template_id", "=", template.id),
                ("id", "!=", self.id),
            ]
        )
        if shared:
            name = _("%(template)s (%(website)s)", template=template.name, website=self.name)
            # mail.template.copy() names the copy "... (copy)", whatever it is given.
            template = template.copy()
            template.name = name
            self.cart_reminder_mail_template_id = template
        return {
            "type": "ir.actions.act_window",
            "name": _("Abandoned Cart E-mail"),
            "res_model": "mail.template",
            "res_id": template.id,
            "view_mode": "form",
            "target": "current",
        }

    def action_open_cart_reminders(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "website_sale_order_handling.website_cart_reminder_action"
        )
        action["domain"] = [("website_id", "=", self.id)]
        action["context"] = {"default_website_id": self.id}
        return action

    def action_open_cart_recovery_report(self):
        """Website > Reporting > Abandoned Carts, on this website, last 30 days."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "website_sale_order_handling.website_cart_recovery_report_action"
        )
        action["context"] = {
            "search_default_website_id": self.id,
            "search_default_last_30_days": 1,
            "pivot_row_groupby": ["step"],
        }
        return action
