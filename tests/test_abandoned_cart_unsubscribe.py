"""Unsubscribing from the abandoned cart e-mails follows the address (RFC 8058).

A person is their address: each guest checkout makes a new contact, so the
opt-out is the address on Flectra's e-mail blacklist, which mass mailing
feeds and honours too, and each link signs the address its e-mail went to.
"""

import ast
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from flectra import fields
from flectra.tests import tagged

from .abandoned_cart_common import AbandonedCartCase
from .common import OrderHandlingHttpCase, load_migration


@tagged("post_install", "-at_install")
class TestCartOptOutByAddress(AbandonedCartCase):
    def _blacklisted(self, email):
        return self.env["mail.blacklist"].search([("email", "=", email)])

    def test_address_blacklisted_by_a_mailing_gets_no_reminder(self):
        cart = self._abandoned_cart()
        other = self._abandoned_cart(
            partner=self.env["res.partner"].create(
                {"name": "Still Subscribed", "email": "still.subscribed@example.com"}
            )
        )
        # What a mass mailing's unsubscribe does.
        self.env["mail.blacklist"]._add('"Test Customer" <TEST.customer@example.com>')
        self._run_cron()
        self.assertNotEmailed(cart)
        self.assertEmailed(other)

    def test_contact_with_two_addresses_is_skipped_when_either_is_blacklisted(self):
        two = self.env["res.partner"].create(
            {"name": "Two Boxes", "email": "first.box@example.com, second.box@example.com"}
        )
        cart = self._abandoned_cart(partner=two)
        self.env["mail.blacklist"]._add("second.box@example.com")
        self._run_cron()
        self.assertNotEmailed(cart)
        self.env["mail.blacklist"]._remove("second.box@example.com")
        self._run_cron()
        self.assertEmailed(cart)
        link = parse_qs(urlsplit(cart.get_cart_unsubscribe_url()).query)
        self.assertEqual(link["email"], ["first.box@example.com"])

    def test_archived_blacklist_entry_is_emailed_again(self):
        cart = self._abandoned_cart()
        self.env["mail.blacklist"]._add(self.customer.email)
        self.env["mail.blacklist"]._remove(self.customer.email)
        self._run_cron()
        self.assertEmailed(cart)

    def test_link_signs_the_address_and_the_website(self):
        cart = self._abandoned_cart()
        link = parse_qs(urlsplit(cart.get_cart_unsubscribe_url()).query)
        self.assertEqual(link["email"], ["test.customer@example.com"])
        self.assertEqual(link["website"], [str(self.website.id)])
        Mailer = self.env["website.abandoned.cart.mailer"]
        args = (link["website"][0], link["email"][0], link["token"][0])
        self.assertEqual(Mailer._get_unsubscribe_status(*args), "confirm")
        other_site = self.env["website"].create({"name": "Another Shop"})
        for forged in (
            (str(other_site.id),) + args[1:],  # the same token on another website
            (args[0], "someone.else@example.com", args[2]),  # on another address
            (args[0], "TEST.customer@example.com", args[2]),  # not the normalized form
            # another token: the last digit changed (never to itself)
            args[:2] + (args[2][:-1] + ("1" if args[2].endswith("0") else "0"),),
            args[:2] + ("",),
            ("", "", ""),
            (None, None, None),
            ("9" * 40,) + args[1:],
            ("-1",) + args[1:],
            (args[0], args[1] + "\x00", args[2]),
        ):
            self.assertEqual(Mailer._unsubscribe(*forged), "invalid", forged)
        self.assertFalse(
            self.env["mail.blacklist"]
            .search([])
            .filtered(
                lambda entry: (
                    entry.email in ("test.customer@example.com", "someone.else@example.com")
                )
            )
        )
        self.assertEqual(Mailer._unsubscribe(*args), "done")
        self.assertTrue(self._blacklisted("test.customer@example.com"))
        self.assertEqual(Mailer._unsubscribe(*args), "already")

    def test_opt_out_flag_of_previous_version_moves_to_the_blacklist(self):
        """migrations/2.0.1.3.0/pre-migrate.py, on this database's tables."""
        script = load_migration("2.0.1.3.0", "pre-migrate.py")
        flagged = self.env["res.partner"].create(
            {"name": "Old Opt-out", "email": "Old.OptOut@example.com"}
        )
        archived = self.env["res.partner"].create(
            {"name": "Taken Off", "email": "taken.off@example.com"}
        )
        self.env["mail.blacklist"]._remove(archived.email)
        several = self.env["res.partner"].create(
            {"name": "Two Addresses", "email": "First.One@example.com, second.one@example.com"}
        )
        self.env["base"].flush()
        self.assertFalse(several.email_normalized)
        cr = self.env.cr
        cr.execute("ALTER TABLE res_partner ADD COLUMN cart_reminder_opt_out BOOLEAN")
        cr.execute(
            "UPDATE res_partner SET cart_reminder_opt_out = TRUE WHERE id IN %s",
            ((flagged.id, archived.id, several.id),),
        )
        script.migrate(cr, "2.0.1.2.0")
        self.env["mail.blacklist"].invalidate_cache()
        self.assertTrue(self._blacklisted("old.optout@example.com"))
        self.assertTrue(self._blacklisted("taken.off@example.com"))
        self.assertTrue(self._blacklisted("first.one@example.com"))
        self.assertTrue(self._blacklisted("second.one@example.com"))
        cart = self._abandoned_cart(
            partner=self.env["res.partner"].create(
                {"name": "Old Opt-out as a guest", "email": "old.optout@example.com"}
            )
        )
        self._run_cron()
        self.assertNotEmailed(cart)


@tagged("post_install", "-at_install")
class TestCartUnsubscribeRoute(OrderHandlingHttpCase):
    """The unsubscribe page and the one-click POST, as a browser and a mail
    provider send them."""

    def setUp(self):
        super().setUp()
        self.website = self.env["website"].browse(1)
        self.website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        self.website.abandoned_cart_email_start = fields.Datetime.now() - timedelta(days=1)
        self.product = self.env["product.product"].create(
            {"name": "Unsubscribe Test Teapot", "list_price": 25.0, "is_published": True}
        )
        self.Blacklist = self.env["mail.blacklist"]

    def _guest_cart(self, email, name="Guest Shopper"):
        """A guest's cart: each checkout makes a contact of its own."""
        partner = self.env["res.partner"].create({"name": name, "email": email})
        cart = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "website_id": self.website.id,
                "order_line": [(0, 0, {"product_id": self.product.id, "product_uom_qty": 1})],
            }
        )
        cart.cart_last_activity = fields.Datetime.now() - timedelta(hours=5)
        return cart

    def _send(self):
        self.env["website.abandoned.cart.mailer"]._cron_send_abandoned_cart_email()

    def _mail_of(self, cart):
        return self.env["mail.mail"].search(
            [("res_id", "=", cart.id), ("is_cart_reminder", "=", True)]
        )

    def _one_click_url(self, cart):
        headers = ast.literal_eval(self._mail_of(cart).headers)
        self.assertEqual(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        return re.fullmatch(r"<(.+)>", headers["List-Unsubscribe"]).group(1)

    def _is_blacklisted(self, email):
        self.Blacklist.invalidate_cache()
        return bool(self.Blacklist.search([("email", "=", email)]))

    def test_guest_unsubscribes_once_for_every_later_cart(self):
        first = self._guest_cart("guest.shopper@example.com")
        self._send()
        url = self._one_click_url(first)
        self.assertIn(
            url.replace("&", "&amp;"),
            self._mail_of(first).body_html,
            "the e-mail's own link is the same page",
        )
        response = self.opener.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(self._is_blacklisted("guest.shopper@example.com"))
        # The same person comes back as a guest: a new contact, the same address.
        second = self._guest_cart("Guest.Shopper@Example.com", name="Guest Shopper Again")
        self._send()
        self.assertEqual(second.cart_reminder_count, 0)
        self.assertFalse(self._mail_of(second))

    def test_one_click_post_needs_its_body_and_its_own_address(self):
        cart = self._guest_cart("one.click@example.com")
        other = self._guest_cart("other.person@example.com", name="Other Person")
        self._send()
        url = self._one_click_url(cart)
        for body in (
            {},
            {"List-Unsubscribe": "one-click"},
            {"List-Unsubscribe": "One-Click "},
            {"unsubscribe": "1"},
            {"confirm": "yes"},
            {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        ):
            response = self.opener.post(url, data=body, timeout=30)
            self.assertEqual(response.status_code, 200, body)
            self.assertFalse(self._is_blacklisted("one.click@example.com"), body)
        # A file part named like the field is not the field.
        response = self.opener.post(
            url, files={"List-Unsubscribe": ("x", b"One-Click")}, timeout=30
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(self._is_blacklisted("one.click@example.com"))
        # The POST body cannot name another address than the signed one.
        response = self.opener.post(
            url,
            data={"List-Unsubscribe": "One-Click", "email": "other.person@example.com"},
            timeout=30,
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(self._is_blacklisted("one.click@example.com"))
        self.assertFalse(self._is_blacklisted("other.person@example.com"))
        # A token signed for another address changes nothing.
        other_url = self._one_click_url(other)
        forged = other_url.replace("other.person%40example.com", "victim%40example.com")
        self.assertNotEqual(forged, other_url)
        response = self.opener.post(forged, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        self.assertEqual(response.status_code, 200)
        self.assertIn("not valid", response.text)
        self.assertFalse(self._is_blacklisted("victim@example.com"))
        self.assertFalse(self._is_blacklisted("other.person@example.com"))

    def test_page_asks_to_confirm_and_its_button_posts_its_own_form(self):
        cart = self._guest_cart("page.visitor@example.com")
        self._send()
        url = self._one_click_url(cart)
        for _scan in range(2):  # a link scanner, then the customer's click
            page = self.url_open(url)
            self.assertEqual(page.status_code, 200)
            self.assertIn("o_cart_reminder_unsubscribe_confirm", page.text)
        self.assertFalse(self._is_blacklisted("page.visitor@example.com"))
        # The button posts the page's own form back to the link.
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        self.assertEqual(
            re.search(r'<button type="submit" name="(\w+)" value="(\w+)"', page.text).groups(),
            ("confirm", "1"),
        )
        response = self.url_open(action.replace("&amp;", "&"), data={"confirm": "1"})
        self.assertEqual(response.status_code, 200)
        self.assertIn(
            "You are unsubscribed", response.text, re.findall(r"<h1>.*?</h1>", response.text)
        )
        self.assertTrue(self._is_blacklisted("page.visitor@example.com"))
        self.assertIn("already unsubscribed", self.url_open(url).text)

    def test_portal_user_cannot_unsubscribe_the_address_they_take(self):
        """A portal user who sets their own e-mail to someone else's address,
        then uses their own unsubscribe link, unsubscribes only their own
        (old) address: the link signs the address the e-mail went to."""
        user = self._new_portal_customer("sly")
        cart = self.env["sale.order"].create(
            {
                "partner_id": user.partner_id.id,
                "website_id": self.website.id,
                "order_line": [(0, 0, {"product_id": self.product.id, "product_uom_qty": 1})],
            }
        )
        cart.cart_last_activity = fields.Datetime.now() - timedelta(hours=5)
        victim_cart = self._guest_cart("victim@example.com", name="Victim")
        self._send()
        url = self._one_click_url(cart)
        # What the portal's /my/account form does with the address they type.
        user.partner_id.sudo().write({"email": "victim@example.com"})
        self.opener.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        self.assertTrue(self._is_blacklisted("sly@example.com"))
        self.assertFalse(self._is_blacklisted("victim@example.com"))
        victim_cart.invalidate_cache()
        self.assertEqual(victim_cart.cart_reminder_count, 1)

    def test_links_of_bad_shape_and_old_links_change_nothing(self):
        cart = self._guest_cart("odd.links@example.com")
        self._send()
        url = self._one_click_url(cart)
        path = url[url.index("/shop/") :]
        for bad in (
            "/shop/cart/unsubscribe",
            "/shop/cart/unsubscribe?website=1",
            path.replace("website=", "website=1"),
            path.replace("token=", "token=%00"),
            path.replace("email=", "email=%C3%28"),
            "/shop/cart/unsubscribe?website=abc&email=x&token=y",
            "/shop/cart/unsubscribe?website=%s&email=%s&token=%s"
            % ("1" * 30, "a" * 5000, "b" * 64),
            # Shapes that broke the parsers: a digit int() refuses, a non-ASCII
            # token, an address that makes the address parser recurse.
            path.replace("website=%s" % self.website.id, "website=%C2%B2"),
            path.replace("token=", "token=%C3%A9"),
            path.replace("token=", "token=%FF"),
            "/shop/cart/unsubscribe?website=1&email=%s&token=%s" % ("(" * 1000, "a" * 64),
            "/shop/cart/unsubscribe?website=1&email=%s@x.com&token=%s" % ("(" * 200, "a" * 64),
            # the links of e-mails sent before 2.0.1.3.0 signed a contact
            "/shop/cart/unsubscribe/%s/%s" % (cart.partner_id.id, "0" * 64),
        ):
            for method in ("get", "post"):
                if method == "get":
                    response = self.url_open(bad)
                else:
                    response = self.opener.post(
                        "http://127.0.0.1:%s%s" % (self._http_port(), bad),
                        data={"List-Unsubscribe": "One-Click"},
                        timeout=30,
                    )
                self.assertEqual(response.status_code, 200, (method, bad))
                self.assertNotIn("You are unsubscribed", response.text, (method, bad))
        self.assertFalse(self._is_blacklisted("odd.links@example.com"))
