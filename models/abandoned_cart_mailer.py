"""How abandoned carts get e-mailed: the whole engine the cron runs.

Websites hold the settings (website.py), carts their state (sale_order.py);
this model finds the carts due for each e-mail, claims them exactly once and
queues their mails, batch by batch, one bad cart never stopping the others.

A person is their address, not a contact: guests get a new contact at each
checkout. So the opt-out is Flectra's e-mail blacklist (``mail.blacklist``,
which mass mailing honours and feeds too), checked by normalized address, and
each e-mail's unsubscribe link signs the address it was sent to.
"""

import logging
import re
import threading
import uuid
from datetime import datetime, timedelta

from psycopg2 import IntegrityError
from psycopg2.extensions import TransactionRollbackError
from werkzeug.urls import url_encode

from flectra import _, api, fields, models
from flectra.exceptions import UserError
from flectra.tools import (
    consteq,
    email_normalize,
    email_split,
    email_split_tuples,
    formataddr,
    html_escape,
)
from flectra.tools.misc import hmac

_logger = logging.getLogger(__name__)

# Carts claimed, rendered and queued per transaction by the abandoned cart cron.
CART_REMINDER_BATCH_SIZE = 200
# Times a cron batch is taken again after losing a race with another worker.
MAX_BATCH_RETRIES = 5
# Longest failure reason stored on a cart.
MAX_ERROR_LENGTH = 500
# What the unsubscribe links sign (with the database secret): an address and a website.
CART_UNSUBSCRIBE_SCOPE = "website_sale_order_handling.cart_unsubscribe_address"
# The shapes of a link's parameters, as _get_unsubscribe_url makes them.
UNSUBSCRIBE_WEBSITE_ID = re.compile(r"[0-9]{1,9}")
UNSUBSCRIBE_TOKEN = re.compile(r"[0-9a-f]{64}")
MAX_EMAIL_LENGTH = 254


class AbandonedCartMailer(models.AbstractModel):
    _name = "website.abandoned.cart.mailer"
    _description = "Abandoned Cart E-mails"

    # --- Entry points ---------------------------------------------------------
    @api.model
    def _cron_send_abandoned_cart_email(self):
        # Like Flectra's mail queue cron: commit between batches, except in tests
        # whose transaction must stay rolled back.
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        websites = self.env["website"].sudo().search([("send_abandoned_cart_email", "=", True)])
        return self._send_abandoned_cart_emails(websites, auto_commit=auto_commit)

    @api.model
    def _send_abandoned_cart_emails(
        self, websites, batch_size=CART_REMINDER_BATCH_SIZE, auto_commit=False
    ):
        """Queue every abandoned cart e-mail due on ``websites`` (records or ids), exactly once.

        Carts are locked (SKIP LOCKED: two workers never take the same cart) and
        claimed (their e-mail count goes up) in the transaction that queues their
        mails, batch by batch. A run killed mid-way rolls back only its current
        batch, which the next run sends. Returns the number of mails queued.
        """
        if not isinstance(websites, models.BaseModel):
            websites = self.env["website"].browse(websites)
        now = fields.Datetime.now()
        total = 0
        for website in websites.sudo().filtered("send_abandoned_cart_email"):
            for step in self._get_steps(website):
                try:
                    total += self._send_step(website, step, now, batch_size, auto_commit)
                except Exception:
                    # Carts are isolated one by one in _email_batch: this is the
                    # last guard, so that one website or step never stops the others.
                    if not auto_commit:
                        raise
                    _logger.exception("Website %s: %s failed", website.name, step["name"])
                    self.env.cr.rollback()
                    self.env.clear()
        return total

    # --- Steps and batches ------------------------------------------------------
    @api.model
    def _get_steps(self, website):
        """The e-mails of ``website``'s abandoned carts, in order.

        Step n goes to carts that already received n e-mails: step 0 once the
        cart is abandoned, step n > 0 ``delay`` after the previous e-mail.
        """
        steps = [
            {
                "step": 0,
                "name": _("Abandoned cart e-mail"),
                "template": website.cart_reminder_mail_template_id
                or website._default_cart_reminder_template(),
                "delay": None,
            }
        ]
        for number, reminder in enumerate(
            website.cart_reminder_ids.sorted(lambda r: (r.sequence, r.id)), 1
        ):
            steps.append(
                {
                    "step": number,
                    "name": _("Abandoned cart reminder %s", number),
                    "template": reminder.mail_template_id,
                    "delay": timedelta(hours=reminder.delay_hours),
                }
            )
        return steps

    @api.model
    def _send_step(self, website, step, now, batch_size, auto_commit):
        orders = self.env["sale.order"].sudo()
        key_column = "cart_last_activity" if step["step"] == 0 else "cart_reminder_last_sent"
        after = (
            website.abandoned_cart_email_start if step["step"] == 0 else datetime(1970, 1, 1),
            0,
        )
        sent = failed = retries = 0
        while True:
            self.env["base"].flush()
            try:
                window = self._select_cart_window(website, step, key_column, now, after, batch_size)
                rows = self._select_abandoned_carts(website, step, [row[0] for row in window])
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
            eligible = self._filter_in_stock(
                self._filter_not_blacklisted(orders.browse([row[0] for row in rows]))
            )
            claimed, failures = self._email_batch(eligible, step, now)
            self.env["base"].flush()
            sent += len(claimed)
            failed += len(failures)
            if auto_commit:
                # The claims and the queued mails of a batch become durable together:
                # a later crash cannot lose or repeat them, and row locks stay short.
                self.env.cr.commit()  # pylint: disable=invalid-commit
            # Forget the batch's records: memory stays flat however many carts there are.
            self.env["base"].invalidate_cache()
            if len(window) < batch_size:
                break
        if sent or failed:
            _logger.info(
                "Website %s: %s queued for %d carts, %d failed",
                website.name,
                step["name"],
                sent,
                failed,
            )
        return sent

    @api.model
    def _select_cart_window(self, website, step, key_column, now, after, limit):
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
                "website": website.id,
                "step": step["step"],
                "start": website.abandoned_cart_email_start,
                "abandoned_before": now - website._get_cart_abandoned_timedelta(),
                "previous_before": now - step["delay"] if step["delay"] else now,
                "after_key": after[0],
                "after_id": after[1],
                "limit": limit,
            },
        )
        return self.env.cr.fetchall()

    @api.model
    def _select_abandoned_carts(self, website, step, order_ids):
        """Lock the carts of ``order_ids`` that are eligible for e-mail ``step``.

        The SQL holds every rule but stock (see _filter_in_stock), checked
        again here under the row lock. Rows another worker holds are skipped,
        and so are carts whose e-mail could not be built before.
        """
        if not order_ids:
            return []
        params = {
            "ids": list(order_ids),
            "website": website.id,
            "step": step["step"],
            "public_partner": website.user_id.partner_id.id or 0,
        }
        # Shipping and promotion lines carry products that are never published:
        # only the products the customer chose decide.
        chosen = "".join(
            " AND l.%s IS NOT TRUE" % column for column in self._get_cart_extra_line_columns()
        )
        query = """
            SELECT so.id
              FROM sale_order so
              JOIN res_partner p ON p.id = so.partner_id
             WHERE so.id = ANY(%(ids)s)
               AND so.website_id = %(website)s
               AND so.state = 'draft'
               AND so.cart_reminder_count = %(step)s
               AND so.cart_reminder_error IS NULL
               AND so.partner_id != %(public_partner)s
               AND COALESCE(p.email, '') != ''
               AND NOT EXISTS (
                    SELECT 1 FROM mail_blacklist bl
                     WHERE bl.email = p.email_normalized AND bl.active)
               AND EXISTS (
                    SELECT 1 FROM sale_order_line l
                     WHERE l.order_id = so.id AND l.price_unit > 0 AND l.product_uom_qty > 0
                           {chosen})
               AND NOT EXISTS (
                    SELECT 1
                      FROM sale_order_line l
                      JOIN product_product pp ON pp.id = l.product_id
                      JOIN product_template pt ON pt.id = pp.product_tmpl_id
                     WHERE l.order_id = so.id {chosen}
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
               AND NOT EXISTS (
                    -- the same person, back as a guest under another contact
                    SELECT 1
                      FROM res_partner buyer
                      JOIN sale_order placed ON placed.partner_id = buyer.id
                     WHERE buyer.email_normalized = p.email_normalized
                       AND placed.state IN ('sale', 'done')
                       AND placed.date_order >= so.cart_last_activity)
             ORDER BY so.id
               FOR UPDATE OF so SKIP LOCKED
        """.format(chosen=chosen)
        # Losing a race with another worker is expected and retried by the
        # caller: not an error worth logging.
        self.env.cr.execute(query, params, log_exceptions=False)
        return self.env.cr.fetchall()

    @api.model
    def _get_cart_extra_line_columns(self):
        """Boolean columns of sale.order.line that mark a line the shop added
        (delivery's shipping line, sale_coupon's rewards) when those add-ons
        are installed."""
        fields_ = self.env["sale.order.line"]._fields
        return [
            name
            for name in ("is_delivery", "is_reward_line")
            if name in fields_ and fields_[name].store
        ]

    @api.model
    def _filter_not_blacklisted(self, orders):
        """The carts none of whose addresses is on the e-mail blacklist.

        The SQL checks the contact's normalized address; a contact whose
        e-mail field holds several addresses has none, and each of them is
        checked here, for the whole batch in one query.
        """
        addresses = {
            order: {
                email_normalize(address) for address in email_split(order.partner_id.email or "")
            }
            for order in orders
            if not order.partner_id.email_normalized
        }
        wanted = set().union(*addresses.values()) - {False}
        if not wanted:
            return orders
        blacklisted = set(
            self.env["mail.blacklist"]
            .sudo()
            .search([("email", "in", list(wanted))])
            .mapped("email")
        )
        return orders.filtered(lambda order: not addresses.get(order, set()) & blacklisted)

    @api.model
    def _filter_in_stock(self, orders):
        """The carts whose products can all be ordered now.

        A stored product that the website refuses to sell out of stock
        (website_sale_stock's 'always' and 'threshold') must have the cart's
        quantity available in the website's warehouse, as the checkout checks.
        Done for a whole batch: a few queries, not a few per cart.
        """
        lines = orders.mapped("order_line").filtered(
            lambda line: (
                line.product_id.type == "product"
                and line.product_id.inventory_availability in ("always", "threshold")
            )
        )
        if not lines:
            return orders
        blocked = orders.browse()
        for website in orders.mapped("website_id"):
            site_lines = lines.filtered(lambda line, site=website: line.order_id.website_id == site)
            products = site_lines.mapped("product_id").with_context(
                warehouse=website._get_warehouse_available()
            )
            available = {product.id: product.virtual_available for product in products}
            needed = {}
            for line in site_lines:
                key = (line.order_id, line.product_id.id)
                needed[key] = needed.get(key, 0.0) + line.product_uom_qty
            blocked |= orders.browse(
                [
                    order.id
                    for (order, product_id), qty in needed.items()
                    if qty > available[product_id]
                ]
            )
        return orders - blocked

    # --- One batch: build, queue, claim ------------------------------------------
    @api.model
    def _email_batch(self, orders, step, now):
        """Queue e-mail ``step`` for the locked carts ``orders``; claim those queued.

        A cart whose e-mail cannot be built (address, template) is marked with
        the reason and skipped: it never stops the rest of the batch, and it is
        not tried again. Returns (claimed carts, {cart: reason}).
        """
        if not orders:
            return orders, {}
        self._ensure_access_tokens(orders)
        vals_by_order, failures = self._build_mails(orders, step["template"], step["name"])
        mails, create_failures = self._create_mails(vals_by_order)
        failures.update(create_failures)
        mailed = orders.browse([order.id for order in mails])
        claimed = self._claim(mailed, step["step"], now)
        for order in mailed - claimed:
            # Cannot happen while the rows are locked; never queue an unclaimed e-mail.
            mails[order].unlink()
        self._mark_failed(failures, step["name"])
        return claimed, failures

    @api.model
    def _ensure_access_tokens(self, orders):
        """Give the carts without one an access token, as portal.mixin makes
        them (a uuid4), in one statement: the e-mail links to the cart with
        it. The rows are ours, locked. Made here, not by PostgreSQL, whose
        own uuid function needs version 13 (Flectra 2.0 runs on 10 and later)."""
        self.env.cr.execute(
            "SELECT id FROM sale_order WHERE id IN %s AND access_token IS NULL",
            (tuple(orders.ids),),
        )
        missing = [row[0] for row in self.env.cr.fetchall()]
        if missing:
            self.env.cr.execute(
                """
                UPDATE sale_order so SET access_token = new.token
                  FROM unnest(%s::int[], %s::varchar[]) AS new (id, token)
                 WHERE so.id = new.id AND so.access_token IS NULL
                """,
                (missing, [str(uuid.uuid4()) for _order in missing]),
            )
            orders.invalidate_cache(["access_token"])

    @api.model
    def _render(self, orders, template):
        return {
            field: template._render_field(field, orders.ids, compute_lang=True)
            for field in ("subject", "body_html", "email_from", "reply_to")
        }

    @api.model
    def _build_mails(self, orders, template, step_name):
        """({cart: mail values}, {cart: reason}): rendered for the whole batch at
        once, or cart by cart when one of them breaks the template."""
        try:
            with self.env.cr.savepoint():
                rendered = self._render(orders, template)
        except Exception:  # a template error for one cart fails the whole render
            rendered = None
        vals_by_order, failures = {}, {}
        for order in orders:
            try:
                if rendered is not None:
                    values = {field: by_id[order.id] for field, by_id in rendered.items()}
                else:
                    with self.env.cr.savepoint():
                        values = {
                            field: by_id[order.id]
                            for field, by_id in self._render(order, template).items()
                        }
                vals_by_order[order] = self._prepare_mail_vals(order, values, step_name)
            except Exception as error:  # whatever one cart raises, the others go on
                failures[order] = self._error_reason(error)
        return vals_by_order, failures

    @api.model
    def _create_mails(self, vals_by_order):
        """({cart: mail.mail}, {cart: reason}): in one call, else one by one."""
        Mail = self.env["mail.mail"].sudo()
        orders = list(vals_by_order)
        try:
            with self.env.cr.savepoint():
                created = Mail.create([vals_by_order[order] for order in orders])
                created.flush()
            return dict(zip(orders, created)), {}
        except Exception:
            self.env.clear()
        mails, failures = {}, {}
        for order in orders:
            try:
                with self.env.cr.savepoint():
                    mails[order] = Mail.create(vals_by_order[order])
                    mails[order].flush()
            except Exception as error:
                self.env.clear()
                failures[order] = self._error_reason(error)
        return mails, failures

    @api.model
    def _claim(self, orders, step, now):
        """Mark ``orders`` as having received e-mail ``step``; return those claimed.

        The ``cart_reminder_count = step`` guard makes the claim idempotent.
        """
        if not orders:
            return orders
        self.env.cr.execute(
            """
            UPDATE sale_order
               SET cart_reminder_count = cart_reminder_count + 1,
                   cart_reminder_last_sent = %s,
                   cart_recovery_email_sent = TRUE
             WHERE id IN %s AND cart_reminder_count = %s
         RETURNING id
            """,
            (now, tuple(orders.ids), step),
        )
        claimed = orders.browse([row[0] for row in self.env.cr.fetchall()])
        self.env["website.cart.recovery.event"]._log_emails(claimed, now)
        claimed.invalidate_cache(
            ["cart_reminder_count", "cart_reminder_last_sent", "cart_recovery_email_sent"]
        )
        return claimed

    @api.model
    def _mark_failed(self, failures, step_name):
        """Give up on carts whose e-mail could not be built: log why, once."""
        for order, reason in failures.items():
            _logger.warning(
                "Abandoned cart e-mail of %s (id %s) not sent: %s", order.name, order.id, reason
            )
            self.env.cr.execute(
                "UPDATE sale_order SET cart_reminder_error = %s WHERE id = %s", (reason, order.id)
            )
            order.invalidate_cache(["cart_reminder_error"])
            try:
                with self.env.cr.savepoint():
                    order.message_post(
                        body=_(
                            "%(step)s not sent: %(reason)s",
                            step=html_escape(step_name),
                            reason=html_escape(reason),
                        ),
                        subtype_xmlid="mail.mt_note",
                    )
            except Exception:  # the reason is on the order and in the log already
                self.env.clear()
                _logger.exception("Could not log the failure on %s", order.name)

    @api.model
    def _error_reason(self, error):
        reason = error.args[0] if isinstance(error, UserError) and error.args else str(error)
        return (reason or error.__class__.__name__)[:MAX_ERROR_LENGTH]

    # --- The mail of one cart -----------------------------------------------------
    @api.model
    def _format_recipients(self, partner):
        """The customer's address(es) as Flectra formats its own mail.

        Flectra's formataddr copes with internationalised addresses; a stored
        value may hold a display name or several addresses, each gets one.
        """
        pairs = email_split_tuples(partner.email)
        if not pairs:
            raise UserError(_("The customer's e-mail address %r is not valid.", partner.email))
        return ", ".join(
            formataddr((partner.name or name or "", address)) for name, address in pairs
        )

    @api.model
    def _prepare_mail_vals(self, order, rendered, step_name):
        """Values of the queued mail.mail of one cart.

        The mail is also the chatter note of the order: its mail.message part
        (``body``) is a short log line, the e-mail itself is ``body_html``.
        """
        partner = order.partner_id
        email_to = self._format_recipients(partner)
        body_html = rendered["body_html"] or ""
        subject = rendered["subject"] or ""
        unsubscribe_url = self._get_unsubscribe_url(order)
        return {
            "model": order._name,
            "res_id": order.id,
            "record_name": order.name,
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
            "email_from": rendered["email_from"] or order.company_id.email_formatted,
            "reply_to": rendered["reply_to"] or False,
            "email_to": email_to,
            "headers": repr(
                {
                    # RFC 8058: mail providers unsubscribe with one POST to this URL;
                    # a GET (a person, a link scanner) only shows a confirm button.
                    "List-Unsubscribe": "<%s>" % unsubscribe_url,
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                }
            ),
            "auto_delete": False,
            "is_cart_reminder": True,
        }

    # --- Unsubscribe: by address, RFC 8058 ------------------------------------------
    @api.model
    def _get_unsubscribe_token(self, website_id, email):
        """The signature of an unsubscribe link: of a normalized address and a
        website, keyed by the database secret."""
        return hmac(self.env(su=True), CART_UNSUBSCRIBE_SCOPE, (int(website_id), email))

    @api.model
    def _get_unsubscribe_url(self, order):
        """The unsubscribe link of ``order``'s e-mail: it signs the address the
        e-mail goes to, so it can only ever blacklist that address."""
        # A contact's e-mail field may hold several addresses: the link signs
        # the first, as mass mailing's normalized address is.
        addresses = email_split(order.partner_id.email or "")
        email = email_normalize(addresses[0]) if addresses else False
        if not email:
            raise UserError(
                _("The customer's e-mail address %r is not valid.", order.partner_id.email)
            )
        website_id = order.website_id.id
        return "%s/shop/cart/unsubscribe?%s" % (
            order.get_base_url(),
            url_encode(
                {
                    "website": website_id,
                    "email": email,
                    "token": self._get_unsubscribe_token(website_id, email),
                }
            ),
        )

    @api.model
    def _check_unsubscribe_link(self, website_id, email, token):
        """The normalized address of a genuine link, else None: a forged,
        altered or foreign link, or one of another website."""
        if not all(isinstance(value, str) and value for value in (website_id, email, token)):
            return None
        # The shapes we make, checked before anything parses them: "²" passes
        # str.isdigit() but not int(), a non-ASCII token breaks the constant-
        # time comparison, and the address parser recurses on odd input.
        if not (
            UNSUBSCRIBE_WEBSITE_ID.fullmatch(website_id)
            and UNSUBSCRIBE_TOKEN.fullmatch(token)
            and len(email) <= MAX_EMAIL_LENGTH
            and "\x00" not in email
        ):
            return None
        try:
            normalized = email_normalize(email)
        except Exception:  # the standard library's address parser on hostile input
            return None
        if normalized != email or not self.env["website"].sudo().browse(int(website_id)).exists():
            return None
        if not consteq(self._get_unsubscribe_token(website_id, email), token):
            return None
        return normalized

    @api.model
    def _get_unsubscribe_status(self, website_id, email, token):
        """What an unsubscribe link would do, changing nothing: ``"confirm"``,
        ``"already"`` (the address is blacklisted) or ``"invalid"``."""
        email = self._check_unsubscribe_link(website_id, email, token)
        if not email:
            return "invalid"
        blacklisted = self.env["mail.blacklist"].sudo().search([("email", "=", email)], limit=1)
        return "already" if blacklisted else "confirm"

    @api.model
    def _unsubscribe(self, website_id, email, token):
        """Blacklist the address of a genuine link (and nothing else).

        Returns ``"done"``, ``"already"`` (a valid link used again changes
        nothing) or ``"invalid"`` (nothing changes).
        """
        status = self._get_unsubscribe_status(website_id, email, token)
        if status != "confirm":
            return status
        try:
            with self.env.cr.savepoint():
                entry = self.env["mail.blacklist"].sudo()._add(email)
        except IntegrityError:
            # The other button (the provider's one-click, the page's) won the race.
            return "already"
        website = self.env["website"].sudo().browse(int(website_id))
        entry.message_post(
            body=_("Unsubscribed from the abandoned cart e-mails of %s.", html_escape(website.name))
        )
        return "done"
