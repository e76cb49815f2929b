"""One bad cart never stops the others: odd addresses and template errors."""

from datetime import timedelta

from flectra.tests import tagged
from flectra.tests.common import Form

from .abandoned_cart_common import AbandonedCartCase


@tagged("post_install", "-at_install")
class TestAbandonedCartIsolation(AbandonedCartCase):
    def _cart_of(self, name, email, **kwargs):
        partner = self.env["res.partner"].create({"name": name, "email": email})
        return self._abandoned_cart(
            partner=partner, client_order_ref="REF-%s" % partner.id, **kwargs
        )

    def test_addresses_are_formatted_as_flectra_formats_its_own_mail(self):
        expected = {
            self._cart_of("José", "josé@example.com"): '"José" <josé@example.com>',
            self._cart_of("Ana", '"Ana B." <ana@exämple.com>'): '"Ana" <ana@exämple.com>',
            self._cart_of(
                "Two Boxes", "one@example.com, two@example.com"
            ): '"Two Boxes" <one@example.com>, "Two Boxes" <two@example.com>',
        }
        self._run_cron()
        for cart, email_to in expected.items():
            self.assertEmailed(cart)
            self.assertEqual(self._reminder_mails(cart).email_to, email_to)

    def test_a_batch_mixing_bad_carts_and_good_carts_emails_the_good_ones(self):
        # The template needs the customer reference: a cart without one breaks it.
        template = self.website.cart_reminder_mail_template_id.copy(
            {
                "body_html": "<p>Your cart ${object.client_order_ref.upper()}</p>",
            }
        )
        self.website.cart_reminder_mail_template_id = template
        good = [self._cart_of("Good %s" % n, "good%s@example.com" % n) for n in range(3)]
        idn = self._cart_of("José", "josé@exämple.com")
        bad_address = self._cart_of("Typo", "not an address")
        bad_template = self._cart_of("No Ref", "noref@example.com")
        bad_template.client_order_ref = False
        other_site = self.env["website"].create(
            {"name": "Other Shop", "send_abandoned_cart_email": True}
        )
        other_site.abandoned_cart_email_start = self.now - timedelta(days=1)
        other_cart = self._cart_of("Elsewhere", "elsewhere@example.com", website_id=other_site.id)

        with self.assertLogs("flectra.addons.website_sale_order_handling", level="WARNING") as logs:
            self._run_cron()
        for cart in good + [idn]:
            self.assertEmailed(cart)
            self.assertIn("REF-", self._reminder_mails(cart).body_html)
        self.assertEmailed(other_cart)
        for cart, reason in ((bad_address, "not valid"), (bad_template, "upper")):
            self.assertNotEmailed(cart)
            self.assertIn(reason, cart.cart_reminder_error)
            self.assertTrue(
                any(cart.name in line and reason in line for line in logs.output), logs.output
            )
            note = cart.message_ids.filtered(lambda m: "not sent" in (m.body or ""))
            self.assertEqual(len(note), 1, "the reason is logged on the order")
            # The order form says it too, beside the e-mails the cart got.
            self.assertIn(reason, Form(cart).cart_reminder_error)
        # Not retried forever: the next runs leave them alone, and send no one twice.
        self._run_cron()
        self._run_cron()
        for cart in (bad_address, bad_template):
            self.assertNotEmailed(cart)
            self.assertEqual(
                len(cart.message_ids.filtered(lambda m: "not sent" in (m.body or ""))), 1
            )
        for cart in good + [idn, other_cart]:
            self.assertEmailed(cart)

    def test_a_follow_up_template_error_keeps_the_first_email_of_other_carts(self):
        broken = self.env["mail.template"].create(
            {
                "name": "Broken reminder",
                "model_id": self.env.ref("sale.model_sale_order").id,
                "subject": "Still there?",
                "body_html": "<p>${object.no_such_field()}</p>",
            }
        )
        self.env["website.cart.reminder"].create(
            {
                "website_id": self.website.id,
                "delay_hours": 1,
                "mail_template_id": broken.id,
            }
        )
        old = self._cart_of("Old", "old@example.com")
        old.write(
            {"cart_reminder_count": 1, "cart_reminder_last_sent": self.now - timedelta(hours=5)}
        )
        new = self._cart_of("New", "new@example.com")
        self._run_cron()
        self.assertEmailed(new)
        self.assertEqual(old.cart_reminder_count, 1)
        self.assertIn("no_such_field", old.cart_reminder_error)
