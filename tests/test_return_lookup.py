"""Returns without an account: the Return an order page e-mails a link that
opens the order's return form once, for a limited time. It answers the same
whether the order number and address matched or not."""

import re
from datetime import timedelta

from flectra import fields
from flectra.addons.mail.tests.common import MockEmail
from flectra.exceptions import UserError, ValidationError
from flectra.tests import tagged

from .common import OrderHandlingHttpCase
from .return_common import ReturnCase, ReturnHttpMixin

GUEST_EMAIL = "guest.returner@example.com"


def link_of(mail):
    """(order id, token) of the link in a lookup e-mail."""
    match = re.search(r"/shop/return/(\d+)/([A-Za-z0-9_-]+)", mail.body_html)
    return int(match.group(1)), match.group(2)


class LookupMixin:
    def _guest_order(self):
        """A delivered web order of a guest: a contact with no user."""
        guest = self.env["res.partner"].create(
            {
                "name": "Guest Returner",
                "email": GUEST_EMAIL,
                "country_id": self.env.ref("base.be").id,
            }
        )
        order = self._delivered_order(partner=guest)
        order.name = "WSOH-GUEST-1"
        return order

    def _lookup_mails(self):
        return self.env["mail.mail"].search([("model", "=", "sale.return.lookup")], order="id")


@tagged("post_install", "-at_install")
class TestReturnLookup(LookupMixin, ReturnCase):
    def setUp(self):
        super().setUp()
        self.Lookup = self.env["sale.return.lookup"].sudo()
        self.order = self._guest_order()

    def _ask(
        self, order_name="wsoh-guest-1", email=" Guest.Returner@Example.com ", addr="10.0.0.1"
    ):
        return self.Lookup._request_link(self.website, order_name, email, addr)

    def test_a_match_emails_a_link_that_opens_the_form_once(self):
        self._ask()
        mail = self._lookup_mails()
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail.email_to, GUEST_EMAIL)
        self.assertEqual(mail.state, "outgoing", "queued: the page never waits for SMTP")
        order_id, token = link_of(mail)
        self.assertEqual(order_id, self.order.id)
        lookup = self.Lookup._get_link_lookup(order_id, token)
        self.assertEqual(lookup.order_id, self.order)
        self.assertNotIn(token, lookup.token_hash, "only the token's hash is kept")
        line = self.order.order_line
        request = lookup._submit_return({line.id: {"quantity": 1, "reason": self.reason}})
        self.assertEqual(request.order_id, self.order)
        self.assertEqual(request.line_ids.quantity, 1)
        self.assertIn("access_token=", request.get_portal_url(), "a guest sees the request")
        with self.assertRaisesRegex(UserError, "used already"):
            self.Lookup._get_link_lookup(order_id, token)
        with self.assertRaisesRegex(UserError, "used already"):
            lookup._submit_return({line.id: {"quantity": 1, "reason": self.reason}})
        self.assertEqual(len(self.order.return_request_ids), 1)

    def test_a_miss_answers_the_same_and_sends_nothing(self):
        self.website.return_lookup_limit_per_address = 100
        other_site = self.env["website"].create(
            {"name": "Other Shop", "return_lookup_limit_per_address": 100}
        )
        undelivered = self._create_web_order(partner=self.order.partner_id)
        undelivered.action_confirm()
        for website, name, email in (
            (self.website, "WSOH-GUEST-1", "someone.else@example.com"),
            (self.website, "WSOH-GUEST-2", GUEST_EMAIL),
            (self.website, "WSOH-GUEST-%", GUEST_EMAIL),  # no wildcard
            (self.website, "WSOH_GUEST_1", GUEST_EMAIL),
            (self.website, undelivered.name, GUEST_EMAIL),
            (other_site, "WSOH-GUEST-1", GUEST_EMAIL),
        ):
            self.assertTrue(self.Lookup._request_link(website, name, email, "10.0.0.2"))
        self.assertFalse(self._lookup_mails())
        self.assertEqual(self.Lookup.search_count([("order_id", "!=", False)]), 0)
        self.assertEqual(self.Lookup.search_count([("remote_addr", "=", "10.0.0.2")]), 6)

    def test_malformed_input_is_refused_with_a_message_and_records_nothing(self):
        for order_name in ("", "   ", "S" * 65, "S\x00", None, 42, ["WSOH-GUEST-1"]):
            with self.assertRaisesRegex(UserError, "order number"):
                self._ask(order_name=order_name)
        for email in ("", "nope", "a@b.example, c@d.example", "x" * 300 + "@e.example", None, b"x"):
            with self.assertRaisesRegex(UserError, "e-mail address"):
                self._ask(email=email)
        self.assertFalse(self.Lookup.search([]))

    def test_limits_per_address_and_per_client_are_settings(self):
        self.website.write(
            {"return_lookup_limit_per_address": 2, "return_lookup_limit_per_client": 3}
        )
        self._ask(addr="10.0.0.3")
        self._ask(addr="10.0.0.4")
        with self.assertRaisesRegex(UserError, "Too many"):
            self._ask(addr="10.0.0.5")
        self._ask(email="first@example.com", addr="10.0.0.9")
        self._ask(email="second@example.com", addr="10.0.0.9")
        self._ask(email="third@example.com", addr="10.0.0.9")
        with self.assertRaisesRegex(UserError, "Too many"):
            self._ask(email="fourth@example.com", addr="10.0.0.9")
        old = self.Lookup.search([("remote_addr", "=", "10.0.0.9")])
        self.env.cr.execute(
            "UPDATE sale_return_lookup SET create_date = %s WHERE id IN %s",
            [fields.Datetime.now() - timedelta(hours=2), tuple(old.ids)],
        )
        self.assertTrue(self._ask(email="fourth@example.com", addr="10.0.0.9"), "an hour later")
        with self.assertRaises(ValidationError):
            self.website.return_lookup_limit_per_client = 0

    def test_expired_reused_or_foreign_links_say_why(self):
        self._ask()
        order_id, token = link_of(self._lookup_mails())
        other = self._delivered_order(partner=self.order.partner_id)
        with self.assertRaisesRegex(UserError, "not valid"):
            self.Lookup._get_link_lookup(other.id, token)
        for bad in (None, "", "x" * 200, token[:-1], token + "x", "é" * 30, 42):
            with self.assertRaisesRegex(UserError, "not valid"):
                self.Lookup._get_link_lookup(order_id, bad)
        lookup = self.Lookup._get_link_lookup(order_id, token)
        lookup.expires_at = fields.Datetime.now() - timedelta(seconds=1)
        with self.assertRaisesRegex(UserError, "expired"):
            self.Lookup._get_link_lookup(order_id, token)

    def test_a_form_the_model_refuses_leaves_the_link_usable(self):
        self._ask()
        order_id, token = link_of(self._lookup_mails())
        lookup = self.Lookup._get_link_lookup(order_id, token)
        line = self.order.order_line
        with self.assertRaises(UserError):
            lookup._submit_return(
                {line.id: {"quantity": 1, "reason": self.env["sale.return.reason"]}}
            )
        self.assertFalse(lookup.used_at)
        self.assertTrue(self.Lookup._get_link_lookup(order_id, token))
        first = lookup._submit_return(
            {line.id: {"quantity": 1, "reason": self.reason}}, token="5a3e" * 8
        )
        again = lookup._submit_return(
            {line.id: {"quantity": 1, "reason": self.reason}}, token="5a3e" * 8
        )
        self.assertEqual(again, first, "a double click finds the first request")


@tagged("post_install", "-at_install")
class TestReturnLookupInOrderEmail(MockEmail, ReturnCase):
    """The order confirmation e-mail, which a guest keeps, links the page."""

    def _confirmation_body(self, order):
        with self.mock_mail_gateway():
            order._send_order_confirmation_mail()
        return self._mails[-1]["body"]

    def test_confirmation_email_of_a_web_order_links_return_an_order(self):
        order = self._delivered_order()
        body = self._confirmation_body(order)
        self.assertIn("o_wsoh_return_lookup_mail_link", body)
        self.assertIn("%s/shop/return" % order.get_base_url(), body)

    def test_no_link_where_the_website_takes_no_online_returns_or_for_a_quotation(self):
        order = self._delivered_order()
        self.website.allow_online_returns = False
        self.assertNotIn("/shop/return", self._confirmation_body(order))
        self.website.allow_online_returns = True
        quotation = self._create_web_order()
        self.assertFalse(quotation._get_return_lookup_url())


@tagged("post_install", "-at_install")
class TestReturnLookupHttp(LookupMixin, ReturnHttpMixin, OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self._setup_http_return_shop("Lookup Lamp")
        self.order = self._guest_order()

    def _post_lookup(self, **data):
        data.setdefault("csrf_token", self._csrf_token("/shop/return"))
        return self.url_open("/shop/return", data=data)

    def test_guest_lookup_through_the_emailed_link_to_a_submitted_request(self):
        page = self.url_open("/shop")
        self.assertIn('href="/shop/return"', page.text, "the footer links the page")
        answer = self._post_lookup(order_name="wsoh-guest-1", email=GUEST_EMAIL)
        self.assertIn("o_wsoh_return_lookup_sent", answer.text)
        miss = self._post_lookup(order_name="wsoh-guest-1", email="not.mine@example.com")
        self.assertIn("o_wsoh_return_lookup_sent", miss.text, "the same answer for a miss")
        order_id, token = link_of(self._lookup_mails())
        link = "/shop/return/%s/%s" % (order_id, token)
        form = self.url_open(link)
        self.assertIn("o_wsoh_return_form", form.text)
        self.assertIn('action="%s"' % link, form.text)
        line = self.order.order_line
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        response = self.url_open(
            link,
            data={
                "csrf_token": csrf,
                "form_token": "9b1c" * 8,
                "qty_%s" % line.id: "1",
                "reason_%s" % line.id: str(self.reason.id),
            },
        )
        self.env.cache.invalidate()
        request = self.order.return_request_ids
        self.assertEqual(len(request), 1)
        self.assertIn("/my/returns/%s" % request.id, response.url)
        self.assertIn("o_wsoh_return_confirmation", response.text)
        again = self.url_open(link)
        self.assertIn("used already", again.text)

    def test_the_lookup_page_and_links_never_fail(self):
        csrf = self._csrf_token("/shop/return")
        for data in (
            {},
            {"order_name": "", "email": ""},
            {"order_name": "x" * 10000, "email": "y" * 10000},
            {"order_name": "\x00", "email": "a@b\x00.example"},
            {"order_name": "WSOH-GUEST-1", "email": "guest.returner@example.com, x@example.com"},
            {"order_name": "' OR 1=1 --", "email": "guest.returner@example.com"},
        ):
            response = self.url_open("/shop/return", data=dict(data, csrf_token=csrf))
            self.assertEqual(response.status_code, 200, data)
            self.assertIn("o_wsoh_return_lookup", response.text)
        response = self.opener.post(
            "http://127.0.0.1:%s/shop/return" % self._http_port(),
            data={"csrf_token": csrf, "email": GUEST_EMAIL},
            files={"order_name": ("order.txt", b"WSOH-GUEST-1")},
            timeout=30,
        )
        self.assertEqual(response.status_code, 200, "a file instead of a value")
        self.assertIn("o_wsoh_return_lookup_error", response.text)
        for path in (
            "/shop/return/%s/nope" % self.order.id,
            "/shop/return/0/%s" % ("a" * 43),
            "/shop/return/999999999/%s" % ("a" * 43),
            "/shop/return/%s/%s" % (self.order.id, "%C3%A9" * 30),
            "/shop/return/%s/%s" % (self.order.id, "%00" * 30),
        ):
            response = self.url_open(path)
            self.assertIn(response.status_code, (200, 404), path)
            if response.status_code == 200:
                self.assertIn("not valid", response.text, path)
        self.website.allow_online_returns = False
        self.assertEqual(self.url_open("/shop/return").status_code, 404)

    def test_guest_lookup_in_chromium(self):
        self.start_tour("/shop/return", "wsoh_return_lookup")
        order_id, token = link_of(self._lookup_mails())
        self.start_tour("/shop/return/%s/%s" % (order_id, token), "wsoh_return_by_link")
        self.env.cache.invalidate()
        request = self.order.return_request_ids
        self.assertEqual(request.line_ids.quantity, 1)
        self.assertEqual(request.line_ids.reason_id, self.reason)
