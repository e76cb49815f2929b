import logging
import threading
from datetime import datetime, timedelta

from psycopg2.extensions import TransactionRollbackError

from flectra import _, api, fields, models
from flectra.exceptions import ValidationError
from flectra.http import request

_logger = logging.getLogger(__name__)

# Carts claimed, rendered and queued per transaction by the abandoned cart cron.
CART_REMINDER_BATCH_SIZE = 200
# Times a cron batch is taken again after losing a race with another worker.
MAX_BATCH_RETRIES = 5

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
        "Round robin: each new cart goes to the next active member of the "
        "website's sales team, in turn.\n"
        "Customer's salesperson: a customer who has a salesperson keeps them; "
        "the others are assigned in turn.",
    )
    order_assignment_sequence_id = fields.Many2one(
        "ir.sequence",
        copy=False,
        readonly=True,
        help="Technical: the counter that gives each new cart its turn.",
    )

    # --- Online returns: the return policy -----------------------------------
    allow_online_returns = fields.Boolean(
        string="Accept Online Returns",
        help="Customers can ask to return delivered products from their order page.",
    )
    return_window_days = fields.Integer(
        string="Return Window (days)",
        default=30,
        help="Days after the delivery during which products can be returned; "
        "0 means no limit.",
    )

    # --- Abandoned-cart e-mails ------------------------------------------------
    send_abandoned_cart_email = fields.Boolean(
        "Automatically send abandoned checkout emails",
        help="E-mail customers who left a cart with their contact details, once the "
        "cart has been abandoned for the delay, then the follow-up reminders.",
    )
    abandoned_cart_email_start = fields.Datetime(
        "Abandoned Cart E-mails Since", readonly=True, copy=False,
        help="When automatic abandoned cart e-mails were switched on: carts left "
        "before that are never e-mailed.",
    )
    # The automatic first e-mail has its own template: website_sale's
    # cart_recovery_mail_template_id stays the one a salesperson sends by hand.
    cart_reminder_mail_template_id = fields.Many2one(
        "mail.template", "Abandoned Cart E-mail Template",
        domain="[('model', '=', 'sale.order')]",
        default=lambda self: self._default_cart_reminder_template(),
        help="The first automatic e-mail of an abandoned cart. The follow-up "
        "reminders have their own templates; the e-mail a salesperson sends "
        "from the order keeps the website's Cart Recovery Email.",
    )
    cart_reminder_ids = fields.One2many(
        "website.cart.reminder", "website_id", string="Follow-up Reminders",
    )
    cart_reminder_count = fields.Integer(compute="_compute_cart_reminder_count")

    @api.depends("cart_reminder_ids")
    def _compute_cart_reminder_count(self):
        for website in self:
            website.cart_reminder_count = len(website.cart_reminder_ids)

    @api.constrains("return_window_days")
    def _check_return_window_days(self):
        if any(website.return_window_days < 0 for website in self):
            raise ValidationError(_("The return window cannot be negative."))

    @api.model_create_multi
    def create(self, vals_list):
        websites = super().create(vals_list)
        websites.filtered(lambda w: w.order_assignment_mode != "fixed")._ensure_assignment_sequence()
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
        """The salespeople who take turns: active internal members of the team."""
        self.ensure_one()
        return self.salesteam_id.sudo().member_ids.filtered(
            lambda user: user.active and not user.share
        ).sorted("id")

    def _next_assignment_turn(self):
        """A counter value no other transaction will ever get.

        It comes from a PostgreSQL sequence (nextval), which is atomic and not
        rolled back: two carts created at the same moment by two requests
        always get different turns, without locking any row.
        """
        self.ensure_one()
        sequence = self.sudo().order_assignment_sequence_id
        if not sequence:
            sequence = self.sudo()._create_assignment_sequence()
        return int(sequence.next_by_id())

    def _create_assignment_sequence(self):
        self.ensure_one()
        sequence = self.env["ir.sequence"].sudo().create(
            {
                "name": "Web order assignment (%s)" % self.name,
                "implementation": "standard",
                "padding": 0,
                "company_id": False,
            }
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
            if own and own.active and not own.share:
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
        values["user_id"] = self._get_web_order_salesperson(partner).id
        return values

    # --- Abandoned-cart e-mails: settings and the cron ---------------------------
    def _start_abandoned_cart_email(self):
        """Start now: carts abandoned before today are not mass-mailed."""
        for website in self:
            vals = {"abandoned_cart_email_start": fields.Datetime.now()}
            if not website.cart_reminder_mail_template_id:
                vals["cart_reminder_mail_template_id"] = self._default_cart_reminder_template().id
            website.write(vals)

    @api.model
    def _default_cart_reminder_template(self):
        return self.env.ref(
            "website_sale_order_handling.mail_template_abandoned_cart_reminder",
            raise_if_not_found=False,
        ) or self.env["mail.template"]

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
        shared = template == master or self.search_count([
            ("cart_reminder_mail_template_id", "=", template.id), ("id", "!=", self.id),
        ])
        if shared:
            template = template.copy({
                "name": _("%(template)s (%(website)s)", template=template.name, website=self.name),
            })
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

    @api.model
    def _cron_send_abandoned_cart_email(self):
        # Like Flectra's mail queue cron: commit between batches, except in tests
        # whose transaction must stay rolled back.
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        websites = self.sudo().search([("send_abandoned_cart_email", "=", True)])
        return websites._send_abandoned_cart_emails(auto_commit=auto_commit)

    def _get_abandoned_cart_steps(self):
        """The e-mails of this website's abandoned carts, in order.

        Step n goes to carts that already received n e-mails: step 0 once the
        cart is abandoned, step n > 0 ``delay`` after the previous e-mail.
        """
        self.ensure_one()
        steps = [{
            "step": 0,
            "name": _("Abandoned cart e-mail"),
            "template": self.cart_reminder_mail_template_id or self._default_cart_reminder_template(),
            "delay": None,
        }]
        for number, reminder in enumerate(self.cart_reminder_ids.sorted(lambda r: (r.sequence, r.id)), 1):
            steps.append({
                "step": number,
                "name": _("Abandoned cart reminder %s", number),
                "template": reminder.mail_template_id,
                "delay": timedelta(hours=reminder.delay_hours),
            })
        return steps

    def _send_abandoned_cart_emails(self, batch_size=CART_REMINDER_BATCH_SIZE, auto_commit=False):
        """Queue every abandoned cart e-mail due on these websites, exactly once.

        Carts are locked (SKIP LOCKED: two workers never take the same cart) and
        claimed (their e-mail count goes up) in the transaction that queues their
        mails, batch by batch. A run killed mid-way rolls back only its current
        batch, which the next run sends. Returns the number of mails queued.
        """
        now = fields.Datetime.now()
        total = 0
        for website in self.filtered("send_abandoned_cart_email"):
            for step in website._get_abandoned_cart_steps():
                total += website._send_abandoned_cart_step(step, now, batch_size, auto_commit)
        return total

    def _send_abandoned_cart_step(self, step, now, batch_size, auto_commit):
        self.ensure_one()
        orders = self.env["sale.order"].sudo()
        key_column = "cart_last_activity" if step["step"] == 0 else "cart_reminder_last_sent"
        after = (self.abandoned_cart_email_start if step["step"] == 0 else datetime(1970, 1, 1), 0)
        sent = 0
        retries = 0
        while True:
            self.env["base"].flush()
            try:
                window = self._select_cart_window(step, key_column, now, after, batch_size)
                rows = self._select_abandoned_carts(step, [row[0] for row in window])
            except TransactionRollbackError:
                # Another worker committed claims on this window after this
                # transaction's snapshot was taken. Only this batch is lost:
                # take the window again on a fresh snapshot, which no longer
                # holds the carts the other worker sent.
                if not auto_commit or retries >= MAX_BATCH_RETRIES:
                    raise
                retries += 1
                self.env.cr.rollback()
                self.env.clear()
                continue
            retries = 0
            if not window:
                break
            after = (window[-1][1], window[-1][0])
            eligible = orders.browse([row[0] for row in rows])._filter_cart_reminder_in_stock()
            claimed = self._claim_abandoned_carts(eligible, step["step"], now)
            claimed._send_cart_reminder_emails(step["template"], step["name"])
            self.env["base"].flush()
            sent += len(claimed)
            if auto_commit:
                # The claims and the queued mails of a batch become durable together:
                # a later crash cannot lose or repeat them, and row locks stay short.
                self.env.cr.commit()  # pylint: disable=invalid-commit
            # Forget the batch's records: memory stays flat however many carts there are.
            self.env["base"].invalidate_cache()
            if len(window) < batch_size:
                break
        if sent:
            _logger.info("Website %s: %s queued for %d carts", self.name, step["name"], sent)
        return sent

    def _select_cart_window(self, step, key_column, now, after, limit):
        """The next ``limit`` carts of a step that are old enough, in key order.

        Only the cheap rules, so the query walks one of the partial indexes of
        sale.order.init() and stops after ``limit`` rows, however big
        sale_order is; _select_abandoned_carts then checks the rest.
        """
        assert key_column in ("cart_last_activity", "cart_reminder_last_sent")
        self.env.cr.execute(
            """
            SELECT so.id, so.{key}
              FROM sale_order so
             WHERE so.website_id = %(website)s
               AND so.state = 'draft'
               AND so.{key} IS NOT NULL
               AND so.{key} <= %(previous_before)s
               AND (so.{key}, so.id) > (%(after_key)s, %(after_id)s)
               AND so.cart_reminder_count = %(step)s
               AND so.cart_last_activity >= %(start)s
               AND so.cart_last_activity <= %(abandoned_before)s
             ORDER BY so.{key}, so.id
             LIMIT %(limit)s
            """.format(key=key_column),
            {
                "website": self.id,
                "step": step["step"],
                "start": self.abandoned_cart_email_start,
                "abandoned_before": now - self._get_cart_abandoned_timedelta(),
                "previous_before": now - step["delay"] if step["delay"] else now,
                "after_key": after[0],
                "after_id": after[1],
                "limit": limit,
            },
        )
        return self.env.cr.fetchall()

    def _select_abandoned_carts(self, step, order_ids):
        """Lock the carts of ``order_ids`` that are eligible for e-mail ``step``.

        The SQL holds every rule but stock (see
        ``sale.order._filter_cart_reminder_in_stock``), checked again here
        under the row lock. Rows another worker holds are skipped.
        """
        if not order_ids:
            return []
        params = {
            "ids": list(order_ids),
            "website": self.id,
            "step": step["step"],
            "public_partner": self.user_id.partner_id.id or 0,
        }
        query = """
            SELECT so.id
              FROM sale_order so
              JOIN res_partner p ON p.id = so.partner_id
             WHERE so.id = ANY(%(ids)s)
               AND so.website_id = %(website)s
               AND so.state = 'draft'
               AND so.cart_reminder_count = %(step)s
               AND so.partner_id != %(public_partner)s
               AND COALESCE(p.email, '') != ''
               AND p.cart_reminder_opt_out IS NOT TRUE
               AND EXISTS (
                    SELECT 1 FROM sale_order_line l
                     WHERE l.order_id = so.id AND l.price_unit > 0 AND l.product_uom_qty > 0)
               AND NOT EXISTS (
                    SELECT 1
                      FROM sale_order_line l
                      JOIN product_product pp ON pp.id = l.product_id
                      JOIN product_template pt ON pt.id = pp.product_tmpl_id
                     WHERE l.order_id = so.id
                       AND (pp.active IS NOT TRUE OR pt.active IS NOT TRUE
                            OR pt.sale_ok IS NOT TRUE OR pt.is_published IS NOT TRUE
                            OR pt.website_id != so.website_id))
               AND NOT EXISTS (
                    SELECT 1
                      FROM sale_order_transaction_rel rel
                      JOIN payment_transaction tx ON tx.id = rel.transaction_id
                     WHERE rel.sale_order_id = so.id
                       AND tx.state IN ('pending', 'authorized', 'done'))
               AND NOT EXISTS (
                    SELECT 1
                      FROM res_partner buyer
                      JOIN sale_order placed ON placed.partner_id = buyer.id
                     WHERE buyer.commercial_partner_id = p.commercial_partner_id
                       AND placed.state IN ('sale', 'done')
                       AND placed.date_order >= so.cart_last_activity)
             ORDER BY so.id
               FOR UPDATE OF so SKIP LOCKED
        """
        # Losing a race with another worker is expected and retried by the
        # caller: not an error worth logging.
        self.env.cr.execute(query, params, log_exceptions=False)
        return self.env.cr.fetchall()

    def _claim_abandoned_carts(self, orders, step, now):
        """Mark ``orders`` as having received e-mail ``step``; return those claimed.

        The ``cart_reminder_count = step`` guard makes the claim idempotent, and
        the access token the e-mail links to is created in the same statement.
        """
        if not orders:
            return orders
        self.env.cr.execute(
            """
            UPDATE sale_order
               SET cart_reminder_count = cart_reminder_count + 1,
                   cart_reminder_last_sent = %s,
                   cart_recovery_email_sent = TRUE,
                   access_token = COALESCE(access_token, gen_random_uuid()::text)
             WHERE id IN %s AND cart_reminder_count = %s
         RETURNING id
            """,
            (now, tuple(orders.ids), step),
        )
        claimed = orders.browse([row[0] for row in self.env.cr.fetchall()])
        claimed.invalidate_cache([
            "cart_reminder_count", "cart_reminder_last_sent", "cart_recovery_email_sent", "access_token",
        ])
        return claimed
