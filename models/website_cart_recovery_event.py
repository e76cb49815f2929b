"""What the abandoned cart reminders brought back: one home for the rules.

Every reminder e-mailed, every *Resume your order* click and every recovery
is one row of ``website.cart.recovery.event``; the report
(report/website_cart_recovery_report.py) only adds them up. Steps are
numbered as the carts count their e-mails (sale.order.cart_reminder_count):
1 is the first abandoned cart e-mail, 2 the first follow-up reminder, ...
"""

from datetime import timedelta

from flectra import api, fields, models
from flectra.osv import expression

EVENT_KINDS = [
    ("email", "E-mailed"),
    ("click", "Resume Click"),
    ("recovery", "Recovered"),
]
# Longer than any access token Flectra makes (a uuid4 is 36 characters).
MAX_ACCESS_TOKEN_LENGTH = 128
# The columns of an event row, in the order every INSERT of this file fills
# them (the three kinds are written in SQL, in the statement that does the
# thing they record); the last four with LOG_VALUES.
EVENT_COLUMNS = (
    "kind",
    "date",
    "cart_id",
    "order_id",
    "website_id",
    "company_id",
    "step",
    "create_uid",
    "create_date",
    "write_uid",
    "write_date",
)
LOG_VALUES = "%(uid)s, %(now)s, %(uid)s, %(now)s"
# A cart's resume clicks count once per this period: reloads, link scanners
# and scripted visits cannot inflate them.
RESUME_CLICK_PERIOD = timedelta(hours=1)


class WebsiteCartRecoveryEvent(models.Model):
    _name = "website.cart.recovery.event"
    _description = "Abandoned Cart Recovery Event"
    _order = "date desc, id desc"
    _rec_name = "cart_id"

    kind = fields.Selection(EVENT_KINDS, required=True, readonly=True, index=True)
    date = fields.Datetime(required=True, readonly=True, index=True)
    cart_id = fields.Many2one(
        "sale.order",
        "Reminded Cart",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
        help="The cart the reminder e-mails were sent about.",
    )
    order_id = fields.Many2one(
        "sale.order",
        "Recovered Order",
        readonly=True,
        ondelete="cascade",
        index=True,
        help="Recoveries only: the confirmed order the reminders brought back "
        "(the reminded cart itself, or a new cart of the same customer).",
    )
    website_id = fields.Many2one(
        "website", required=True, readonly=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    step = fields.Integer(
        "E-mail Step",
        readonly=True,
        help="1: the first abandoned cart e-mail, 2: the first follow-up reminder, ... "
        "For a click or a recovery, the last e-mail the cart had received.",
    )

    def init(self):
        # Safety nets under the rules of _record_recoveries: a reminded cart
        # is credited once, an order brings revenue once; a step is e-mailed once.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS website_cart_recovery_event_recovered_cart_uniq
                ON website_cart_recovery_event (cart_id) WHERE kind = 'recovery';
            CREATE UNIQUE INDEX IF NOT EXISTS website_cart_recovery_event_recovered_order_uniq
                ON website_cart_recovery_event (order_id) WHERE kind = 'recovery';
            CREATE UNIQUE INDEX IF NOT EXISTS website_cart_recovery_event_email_uniq
                ON website_cart_recovery_event (cart_id, step) WHERE kind = 'email';
            """
        )

    @api.model
    def _insert_events_sql(self, rows, with_clause="", tail=""):
        """The INSERT of the event rows that ``rows`` (a SELECT or VALUES
        giving EVENT_COLUMNS in order, ``{log}`` for the last four) yields."""
        return "%s INSERT INTO website_cart_recovery_event (%s) %s %s" % (
            with_clause,
            ", ".join(EVENT_COLUMNS),
            rows.format(log=LOG_VALUES),
            tail,
        )

    # --- E-mails: logged by the cron, in the transaction of the claim -----------
    @api.model
    def _log_emails(self, carts, date):
        """Log the e-mail just claimed for each of ``carts`` (one query per batch)."""
        if not carts:
            return
        self.env.cr.execute(
            self._insert_events_sql(
                """
                SELECT 'email', %(date)s, so.id, NULL, so.website_id, so.company_id,
                       so.cart_reminder_count, {log}
                  FROM sale_order so
                 WHERE so.id IN %(ids)s AND so.website_id IS NOT NULL
                """,
                tail="ON CONFLICT DO NOTHING",
            ),
            {
                "date": date,
                "ids": tuple(carts.ids),
                "uid": self.env.uid,
                "now": fields.Datetime.now(),
            },
        )

    # --- Clicks on "Resume your order" ------------------------------------------
    @api.model
    def _log_resume_click(self, access_token):
        """Count a click on the resume link of the cart of ``access_token``.

        Only a draft cart that got a reminder counts, once per
        RESUME_CLICK_PERIOD, and only with its own token: anything else (no
        token, another cart's id, garbage, a click within the hour) counts
        nothing, writes nothing and raises nothing. One statement, along the
        access token's index. Returns the cart counted, or an empty recordset.
        """
        carts = self.env["sale.order"].sudo().browse()
        if (
            not isinstance(access_token, str)
            or not access_token
            or len(access_token) > MAX_ACCESS_TOKEN_LENGTH
            or "\x00" in access_token
        ):
            return carts
        self.env["sale.order"].flush(
            ["access_token", "state", "cart_reminder_count", "cart_resume_click_last"]
        )
        now = fields.Datetime.now()
        # One statement: of two clicks at once, the row lock lets one count.
        self.env.cr.execute(
            self._insert_events_sql(
                """
                SELECT 'click', %(now)s, id, NULL, website_id, company_id,
                       cart_reminder_count, {log}
                  FROM clicked
                """,
                with_clause="""
            WITH clicked AS (
                UPDATE sale_order
                   SET cart_resume_click_count = COALESCE(cart_resume_click_count, 0) + 1,
                       cart_resume_click_last = %(now)s
                 WHERE access_token = %(token)s
                   AND state = 'draft'
                   AND website_id IS NOT NULL
                   AND cart_reminder_count > 0
                   AND (cart_resume_click_last IS NULL
                        OR cart_resume_click_last <= %(counted_before)s)
             RETURNING id, website_id, company_id, cart_reminder_count
            )""",
                tail="RETURNING cart_id",
            ),
            {
                "token": access_token,
                "now": now,
                "counted_before": now - RESUME_CLICK_PERIOD,
                "uid": self.env.uid,
            },
        )
        carts = carts.browse([row[0] for row in self.env.cr.fetchall()])
        carts.invalidate_cache(["cart_resume_click_count", "cart_resume_click_last"])
        return carts

    # --- Recoveries: on the confirmation of orders --------------------------------
    @api.model
    def _record_recoveries(self, orders):
        """Credit the reminders that brought back the confirmed ``orders``.

        Whatever the path, an order credits at most one reminded cart, and a
        reminded cart is credited at most once, within its website's window
        after its last e-mail:

        * the order is itself a reminded cart (resumed by the link and paid,
          or confirmed by a salesperson): it is credited;
        * else the customer came back without the link: the newest reminded
          cart of the same person (the same commercial partner, or a contact
          with the same normalized address: a guest gets a new contact at
          each checkout) on the same website that is not credited yet (still
          a quotation, or cancelled, as a cart merged into another is) is
          credited to this order.

        The order records the step and the date. Returns the orders credited.
        """
        credited = self.env["sale.order"].sudo().browse()
        now = fields.Datetime.now()
        orders = orders.sudo().filtered(
            lambda order: order.website_id and order.state in ("sale", "done")
        )
        if not orders:
            return credited
        self.flush()
        already = set(
            self.sudo()
            .search([("kind", "=", "recovery"), ("order_id", "in", orders.ids)])
            .mapped("order_id")
            .ids
        )
        for order in orders:
            if order.id in already:
                continue
            cart = self._find_recovered_cart(order, now)
            if cart and self._insert_recovery(cart, order, now):
                order.write(
                    {
                        "cart_recovery_step": cart.cart_reminder_count,
                        "cart_recovered_date": now,
                        "cart_recovered_cart_id": cart.id,
                    }
                )
                credited |= order
        return credited

    @api.model
    def _find_recovered_cart(self, order, now):
        """The reminded cart ``order`` recovers, or an empty recordset."""
        website = order.website_id
        since = now - timedelta(days=website.cart_recovery_window_days)
        if (
            order.cart_reminder_count
            and order.cart_reminder_last_sent
            and since <= order.cart_reminder_last_sent <= now
            and not self._credited_carts(order)
        ):
            return order
        if order.partner_id == website.user_id.partner_id:
            return order.browse()
        same_person = [
            ("partner_id.commercial_partner_id", "=", order.partner_id.commercial_partner_id.id)
        ]
        if order.partner_id.email_normalized:
            same_person = expression.OR(
                [
                    same_person,
                    [("partner_id.email_normalized", "=", order.partner_id.email_normalized)],
                ]
            )
        candidates = order.search(
            same_person
            + [
                ("id", "!=", order.id),
                ("website_id", "=", website.id),
                ("state", "in", ("draft", "sent", "cancel")),
                ("cart_reminder_count", ">", 0),
                ("cart_reminder_last_sent", ">=", since),
                ("cart_reminder_last_sent", "<=", now),
            ],
            order="cart_reminder_last_sent desc, id desc",
        )
        return (candidates - self._credited_carts(candidates))[:1]

    @api.model
    def _credited_carts(self, carts):
        if not carts:
            return carts
        return (
            self.sudo()
            .search([("kind", "=", "recovery"), ("cart_id", "in", carts.ids)])
            .mapped("cart_id")
        )

    @api.model
    def _insert_recovery(self, cart, order, now):
        """Log the recovery; False when the cart or the order was credited
        meanwhile (by a concurrent confirmation: the unique indexes decide)."""
        self.env.cr.execute(
            self._insert_events_sql(
                """
                VALUES ('recovery', %(now)s, %(cart)s, %(order)s, %(website)s, %(company)s,
                        %(step)s, {log})
                """,
                tail="ON CONFLICT DO NOTHING RETURNING id",
            ),
            {
                "now": now,
                "cart": cart.id,
                "order": order.id,
                "website": order.website_id.id,
                "company": order.company_id.id,
                "step": cart.cart_reminder_count,
                "uid": self.env.uid,
            },
            # A concurrent confirmation that credited the cart first makes this
            # fail to serialize: Flectra retries, it is no error to log.
            log_exceptions=False,
        )
        return bool(self.env.cr.fetchone())
