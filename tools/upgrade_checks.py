"""Checks run by tools/test-upgrade in a Flectra shell (``env`` is given) on a
database upgraded from the previous version: one per migration script.

Each check prints ``UPGRADE-CHECK PASS|FAIL <what>``.
"""

import os
import traceback

from flectra.tools.safe_eval import safe_eval

env = globals()["env"]  # given by the Flectra shell that runs this file

CHECKS = []
# The version the database had before the upgrade (given by tools/test-upgrade).
UPGRADED_FROM = os.environ.get("WSOH_UPGRADE_FROM", "0")


def _version(text):
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def check(since):
    """A check of the migration to version ``since``: it applies to databases
    of an older version only."""

    def register(function):
        CHECKS.append((since, function))
        return function

    return register


@check(since="2.0.1.1.0")
def website_sale_actions_have_their_own_context_back():
    """2.0.1.1.0: the website_sale actions lose the key 2.0.1.0.0 wrote into them."""
    for name in (
        "action_orders_ecommerce",
        "action_unpaid_orders_ecommerce",
        "action_view_unpaid_quotation_tree",
    ):
        action = env.ref("website_sale.%s" % name)
        context = safe_eval(action.context)
        assert "show_ecommerce_status" not in context, (name, context)
        assert context.get("show_sale"), (name, context)
        tree = dict((mode, view) for view, mode in action.views)["tree"]
        assert tree, "%s opens on the add-on's status list" % name


@check(since="2.0.1.1.0")
def manual_recovery_email_gets_website_sales_template_back():
    """2.0.1.1.0: the automatic e-mail has its own template; the manual one is website_sale's."""
    native = env.ref("website_sale.mail_template_sale_cart_recovery")
    ours = env.ref("website_sale_order_handling.mail_template_abandoned_cart_reminder")
    website = env.ref("website.default_website")
    assert website.send_abandoned_cart_email, "the demo website sent reminders before"
    assert website.cart_recovery_mail_template_id == native, website.cart_recovery_mail_template_id
    assert website.cart_reminder_mail_template_id == ours, website.cart_reminder_mail_template_id
    for other in env["website"].search([]):
        assert other.cart_recovery_mail_template_id != ours, other.name


@check(since="2.0.1.1.0")
def abandoned_cart_cron_calls_the_engines_new_home():
    """2.0.1.1.0: the (noupdate) cron points at website.abandoned.cart.mailer."""
    cron = env.ref("website_sale_order_handling.ir_cron_send_abandoned_cart_email")
    assert cron.model_id.model == "website.abandoned.cart.mailer", cron.model_id.model
    assert "_cron_send_abandoned_cart_email" in cron.code, cron.code


# The reasons of the previous version's demo requests, by form token.
DEMO_REASONS = {
    "000000000000000000000000dead0001": "return_reason_damaged",
    "000000000000000000000000dead0002": "return_reason_wrong_item",
    "000000000000000000000000dead0003": "return_reason_no_longer_needed",
    "000000000000000000000000dead0004": "return_reason_other",
    "000000000000000000000000dead0005": "return_reason_not_as_described",
}


@check(since="2.0.1.2.0")
def return_lines_got_their_requests_reason():
    """2.0.1.2.0: each request's single reason went to every line of it (pre-migrate)."""
    requests = env["sale.return.request"].search([("submission_token", "in", list(DEMO_REASONS))])
    assert len(requests) == len(DEMO_REASONS), requests.mapped("submission_token")
    for request in requests:
        reason = env.ref("website_sale_order_handling.%s" % DEMO_REASONS[request.submission_token])
        assert request.line_ids, request.name
        assert request.line_ids.reason_id == reason, (request.name, request.line_ids.reason_id.name)
        assert request.reason_ids == reason, (request.name, request.reason_ids.mapped("name"))
    env.cr.execute("SELECT COUNT(*) FROM sale_return_request_line WHERE reason_id IS NULL")
    assert env.cr.fetchone()[0] == 0, "lines without a reason"
    env.cr.execute(
        """SELECT is_nullable FROM information_schema.columns
            WHERE table_name = 'sale_return_request_line' AND column_name = 'reason_id'"""
    )
    assert env.cr.fetchone()[0] == "NO", "the lines' reason is not NOT NULL"
    env.cr.execute(
        """SELECT COUNT(*) FROM information_schema.columns
            WHERE table_name = 'sale_return_request' AND column_name = 'reason_id'"""
    )
    assert env.cr.fetchone()[0] == 0, "the requests' old reason column is left"


@check(since="2.0.1.2.0")
def unedited_return_emails_list_each_products_reason():
    """2.0.1.2.0: the (noupdate) return e-mails nobody edited got the per-product body."""
    for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled"):
        template = env.ref("website_sale_order_handling.mail_template_return_%s" % state)
        assert "line.reason_id.name" in template.body_html, state
    request = env["sale.return.request"].search(
        [("submission_token", "=", "000000000000000000000000dead0001")]
    )
    template = env.ref("website_sale_order_handling.mail_template_return_requested")
    body = template._render_field("body_html", request.ids)[request.id]
    assert request.line_ids.reason_id.name in body, body


@check(since="2.0.1.2.0")
def unedited_cart_email_shows_the_products():
    """2.0.1.2.0: the (noupdate) abandoned cart e-mail, unedited, got the pictures and prices."""
    template = env.ref("website_sale_order_handling.mail_template_abandoned_cart_reminder")
    assert "/web/image/product.product/" in template.body_html, template.body_html[:500]
    cart = env["sale.order"].search(
        [("website_id", "!=", False), ("state", "=", "draft"), ("order_line", "!=", False)], limit=1
    )
    body = template._render_field("body_html", cart.ids)[cart.id]
    product = cart.order_line[:1].product_id
    assert "/web/image/product.product/%d/" % product.id in body, body


@check(since="2.0.1.3.0")
def cart_opt_outs_are_on_the_blacklist():
    """2.0.1.3.0: the contact who unsubscribed has her address on the e-mail
    blacklist, and her cart is still not e-mailed."""
    partner = env.ref("website_sale_order_handling.partner_cart_opted_out_demo")
    assert "cart_reminder_opt_out" not in partner._fields
    assert env["mail.blacklist"].search([("email", "=", partner.email_normalized)]), partner.email
    cart = env.ref("website_sale_order_handling.sale_order_abandoned_opted_out_demo")
    env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(cart.website_id)
    assert cart.cart_reminder_count == 0, cart.cart_reminder_count


@check(since="2.0.1.3.0")
def refunds_made_before_are_in_the_ledger():
    """2.0.1.3.0: each refund of the previous version has its ledger lines, by
    order line when it recorded them, else its amount."""
    refunds = env["payment.transaction"].search([("is_refund", "=", True)])
    assert refunds, "the previous version's demo data has refunds"
    for refund in refunds:
        if refund._get_refunded_orders():
            assert refund.refund_ledger_ids, refund.reference
            total = sum(refund.refund_ledger_ids.mapped("amount"))
            assert total > 0, (refund.reference, total)


@check(since="2.0.1.4.0")
def awaiting_payment_is_searched_without_its_column():
    """2.0.1.4.0: the queues' payment flags lost their stale columns, and the
    demo's order paid by wire transfer is still found waiting for its money.
    (Before captured_payments_are_sealed, which receives that money.)"""
    env.cr.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'sale_order' "
        "AND column_name IN ('awaiting_offline_payment', 'awaiting_payment')"
    )
    assert not env.cr.fetchall(), "columns left"
    wire = env.ref("website_sale_order_handling.payment_transaction_wire_transfer_demo")
    orders = wire.sale_order_ids
    assert orders and all(order.awaiting_offline_payment for order in orders), orders
    found = env["sale.order"].search([("awaiting_offline_payment", "=", True)])
    assert orders <= found, (orders, found)
    assert not (found - orders).filtered(lambda order: not order.awaiting_offline_payment)
    assert env.ref("website_sale_order_handling.ir_cron_assign_placed_orders").active


@check(since="2.0.1.4.0")
def approved_returns_have_their_slip():
    """2.0.1.4.0: an approved request's open return transfer carries its number
    (the slip's barcode finds it), and its slip prints."""
    approved = env["sale.return.request"].search([("state", "=", "approved")])
    assert approved, "the previous version's demo data has an approved request"
    for request in approved:
        for picking in request.picking_ids.filtered(lambda p: p.state not in ("done", "cancel")):
            assert picking.origin.startswith(request.name), (request.name, picking.origin)
    slip = env.ref("website_sale_order_handling.action_report_return_slip")
    assert approved[0].name in slip._render_qweb_html(approved[:1].ids)[0].decode()


@check(since="2.0.1.5.0")
def return_emails_and_lines_know_exchanges():
    """2.0.1.5.0: the return e-mail templates nobody edited say which products
    are exchanged, in English and in their shipped translations; every
    existing request line is a refund; an approved request still approves,
    reject and refund."""
    for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled"):
        template = env.ref("website_sale_order_handling.mail_template_return_%s" % state)
        assert "exchange_product_id" in template.body_html, state
        french = template.with_context(lang="fr_FR").body_html
        if env["res.lang"]._lang_get("fr_FR"):
            assert "exchange_product_id" in french, "fr: %s" % state
    assert env.ref("website_sale_order_handling.mail_template_return_exchanged")
    lines = env["sale.return.request.line"].search([])
    assert lines and set(lines.mapped("resolution")) == {"refund"}, lines.mapped("resolution")
    request = env["sale.return.request"].search([("state", "=", "requested")], limit=1)
    if request:
        request.action_approve()
        assert request.state == "approved" and not request.exchange_picking_ids


@check(since="2.0.1.3.0")
def captured_payments_are_sealed():
    """2.0.1.3.0: every payment captured before the upgrade has its capture seal
    (post-migrate), and the demo's wire transfer, paid now, gets one too."""
    captured = env["payment.transaction"].search(
        [("state", "in", ("authorized", "done")), ("is_refund", "=", False)]
    )
    assert all(tx.capture_seal for tx in captured), captured.mapped("reference")
    captured._check_capture_seal()
    wire = env.ref("website_sale_order_handling.payment_transaction_wire_transfer_demo")
    assert wire.state == "pending" and not wire.capture_seal, (wire.state, wire.capture_seal)
    wire._set_transaction_done()
    assert wire.capture_seal, "Flectra's payment processing sealed it"
    wire._check_capture_seal()


for since, function in CHECKS:
    if _version(UPGRADED_FROM) >= _version(since):
        print(
            "UPGRADE-CHECK SKIP %s (migration to %s; the database was at %s)"
            % (function.__name__, since, UPGRADED_FROM)
        )
        continue
    try:
        function()
        print("UPGRADE-CHECK PASS %s" % function.__name__)
    except Exception:  # noqa: BLE001 -- every failure is reported, none stops the others
        print("UPGRADE-CHECK FAIL %s\n%s" % (function.__name__, traceback.format_exc()))
