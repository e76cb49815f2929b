from datetime import timedelta
from unittest.mock import patch

from flectra import fields
from flectra.addons.base.models.ir_mail_server import IrMailServer
from flectra.tests import Form, tagged

from .abandoned_cart_common import AbandonedCartCase


@tagged("post_install", "-at_install")
class TestAbandonedCartEmail(AbandonedCartCase):
    def test_email_has_resume_and_unsubscribe_links_and_goes_to_the_queue(self):
        cart = self._abandoned_cart()
        self._run_cron()
        mail = self._reminder_mails(cart)
        self.assertEqual(mail.state, "outgoing")
        self.assertIn("test.customer@example.com", mail.email_to)
        self.assertTrue(cart.access_token)
        self.assertIn(
            "/shop/cart?access_token=%s&amp;revive=squash" % cart.access_token, mail.body_html
        )
        token = self.env["website.abandoned.cart.mailer"]._get_unsubscribe_token(
            self.website.id, "test.customer@example.com"
        )
        self.assertIn(
            "/shop/cart/unsubscribe?website=%s&amp;email=test.customer%%40example.com&amp;token=%s"
            % (self.website.id, token),
            mail.body_html,
        )
        self.assertIn("List-Unsubscribe", mail.headers)
        self.assertIn("Test Storable Lamp", mail.body_html)
        self.assertTrue(cart.cart_recovery_email_sent)

    def test_email_is_logged_as_a_note_on_the_order(self):
        cart = self._abandoned_cart()
        self._run_cron()
        note = cart.message_ids.filtered(lambda message: "e-mailed to" in (message.body or ""))
        self.assertEqual(len(note), 1)
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
        self.assertIn("test.customer@example.com", note.body)

    def test_smtp_outage_keeps_the_email_queued(self):
        cart = self._abandoned_cart()
        self._run_cron()
        mail = self._reminder_mails(cart)
        with patch.object(IrMailServer, "connect", side_effect=ConnectionRefusedError("SMTP down")):
            mail.send()
        self.assertEqual(mail.exists().state, "outgoing")
        other = self.env["mail.mail"].create({"email_to": "x@example.com", "subject": "Other"})
        with patch.object(IrMailServer, "connect", side_effect=ConnectionRefusedError("SMTP down")):
            other.send()
        self.assertEqual(other.state, "exception", "other mails keep Flectra's behaviour")

    def test_a_change_within_a_minute_of_the_last_does_not_write_again(self):
        """One add-to-cart touches the cart twice: the second write is skipped
        (issue 13), and a change a few minutes later is recorded again."""
        cart = self._create_web_order(lines=[(self.service, 1)])
        recent = fields.Datetime.now() - timedelta(seconds=20)
        cart.cart_last_activity = recent
        cart._cart_update(product_id=self.product.id, add_qty=1)
        self.assertEqual(cart.cart_last_activity, recent)
        cart.cart_last_activity = fields.Datetime.now() - timedelta(minutes=2)
        cart._cart_update(product_id=self.product.id, add_qty=1)
        self.assertGreaterEqual(cart.cart_last_activity, self.now)

    def test_cart_changes_record_the_last_activity(self):
        cart = self._create_web_order(lines=[(self.service, 1)])
        cart.cart_last_activity = self.now - timedelta(days=1)
        cart._cart_update(product_id=self.product.id, add_qty=1)
        self.assertGreaterEqual(cart.cart_last_activity, self.now)
        cart.cart_last_activity = self.now - timedelta(days=1)
        line = cart.order_line.filtered(lambda line: line.product_id == self.product)
        line.product_uom_qty = 3
        self.assertGreaterEqual(cart.cart_last_activity, self.now)
        cart.cart_last_activity = self.now - timedelta(days=1)
        line.unlink()
        self.assertGreaterEqual(cart.cart_last_activity, self.now)
        cart.action_confirm()
        before = cart.cart_last_activity
        cart.order_line.write({"product_uom_qty": 2})
        self.assertEqual(cart.cart_last_activity, before, "a confirmed order is no cart any more")


@tagged("post_install", "-at_install")
class TestAbandonedCartSettings(AbandonedCartCase):
    def test_settings_round_trip_per_website(self):
        other = self.env["website"].create({"name": "Second Shop"})
        settings = Form(self.env["res.config.settings"])
        settings.website_id = other
        settings.send_abandoned_cart_email = True
        settings.cart_abandoned_delay = 6.0
        settings.save().execute()
        self.assertTrue(other.send_abandoned_cart_email)
        self.assertEqual(other.cart_abandoned_delay, 6.0)
        self.assertTrue(other.abandoned_cart_email_start)
        self.assertEqual(
            other.cart_reminder_mail_template_id,
            self.env.ref("website_sale_order_handling.mail_template_abandoned_cart_reminder"),
        )
        self.assertEqual(
            other.cart_recovery_mail_template_id,
            self.env.ref("website_sale.mail_template_sale_cart_recovery"),
            "the manual recovery e-mail keeps website_sale's template",
        )
        reread = Form(self.env["res.config.settings"])
        reread.website_id = other
        self.assertTrue(reread.send_abandoned_cart_email)
        self.assertEqual(reread.cart_abandoned_delay, 6.0)
        reread.website_id = self.env["website"].create({"name": "Third Shop"})
        self.assertFalse(reread.send_abandoned_cart_email)

    def test_customizing_the_template_gives_the_website_its_own_copy(self):
        other = self.env["website"].create(
            {"name": "Second Shop", "send_abandoned_cart_email": True}
        )
        master = self.env.ref("website_sale_order_handling.mail_template_abandoned_cart_reminder")
        action = other.action_open_abandoned_cart_template()
        template = self.env["mail.template"].browse(action["res_id"])
        self.assertNotEqual(template, master)
        self.assertEqual(other.cart_reminder_mail_template_id, template)
        self.assertEqual(template.name, "%s (Second Shop)" % master.name)
        self.assertEqual(other.action_open_abandoned_cart_template()["res_id"], template.id)

    def test_follow_up_reminders_are_listed_per_website(self):
        reminder = self.env["website.cart.reminder"].create({"website_id": self.website.id})
        self.assertEqual(self.website.cart_followup_count, 1)
        action = self.website.action_open_cart_reminders()
        self.assertEqual(self.env["website.cart.reminder"].search(action["domain"]), reminder)


@tagged("post_install", "-at_install")
class TestAbandonedCartConsistency(AbandonedCartCase):
    """The Abandoned Carts menu, the sales team dashboard and the cron agree per website."""

    def test_abandoned_search_uses_each_website_delay_and_public_partner(self):
        team = self.env["crm.team"].create({"name": "Outlet Team"})
        public_user = self.env["res.users"].create(
            {
                "name": "Outlet Public",
                "login": "outlet_public",
                "groups_id": [(6, 0, [self.env.ref("base.group_public").id])],
            }
        )
        outlet = self.env["website"].create(
            {
                "name": "Outlet",
                "cart_abandoned_delay": 10.0,
                "user_id": public_user.id,
                "salesteam_id": team.id,
                "send_abandoned_cart_email": True,
            }
        )
        outlet.abandoned_cart_email_start = self.now - timedelta(days=10)
        young = self._abandoned_cart(hours_ago=5, website_id=outlet.id, team_id=team.id)
        old = self._abandoned_cart(hours_ago=11, website_id=outlet.id, team_id=team.id)
        outlet_anonymous = self._abandoned_cart(
            hours_ago=11, website_id=outlet.id, team_id=team.id, partner=public_user.partner_id
        )
        main_cart = self._abandoned_cart(hours_ago=5)
        abandoned = self.env["sale.order"].search([("is_abandoned_cart", "=", True)])
        self.assertIn(old, abandoned)
        self.assertIn(main_cart, abandoned)
        self.assertNotIn(young, abandoned)
        self.assertNotIn(outlet_anonymous, abandoned)
        not_abandoned = self.env["sale.order"].search([("is_abandoned_cart", "=", False)])
        self.assertIn(young, not_abandoned)
        self.assertNotIn(old, not_abandoned)
        self.assertEqual(
            (young | old | outlet_anonymous).mapped("is_abandoned_cart"), [False, True, False]
        )
        self.assertEqual(team.abandoned_carts_count, 1)
        self._run_cron()
        self.assertEmailed(old)
        self.assertNotEmailed(young)
        team.invalidate_cache()
        self.assertEqual(
            team.abandoned_carts_count, 0, "an e-mailed cart leaves the dashboard count"
        )


@tagged("post_install", "-at_install")
class TestAbandonedCartManualRecovery(AbandonedCartCase):
    """A salesperson's recovery e-mail stays website_sale's (issue 10)."""

    def test_manual_recovery_email_keeps_website_sale_template_and_link(self):
        native = self.env.ref("website_sale.mail_template_sale_cart_recovery")
        other = self.env["website"].create({"name": "Second Shop"})
        other.send_abandoned_cart_email = True
        # website_sale falls back to its template when the website has none.
        self.assertIn(self.website.cart_recovery_mail_template_id, (native, native.browse()))
        self.assertEqual(other.cart_recovery_mail_template_id, native)
        other_cart = self._abandoned_cart(website_id=other.id)
        self.assertEqual(other_cart._get_cart_recovery_template(), native)
        cart = self._abandoned_cart()
        self.assertEqual(cart._get_cart_recovery_template(), native)
        action = cart.action_recovery_email_send()
        composer = Form(self.env["mail.compose.message"].with_context(**action["context"]))
        composer.save().action_send_mail()
        message = cart.message_ids.filtered(lambda m: m.message_type == "comment")[:1]
        self.assertIn("Resume order", message.body)
        self.assertIn("access_token=%s" % cart.access_token, message.body)
        self.assertTrue(cart.cart_recovery_email_sent)
        # The automatic e-mail still uses the add-on's template, with its unsubscribe link.
        self._run_cron()
        mail = self._reminder_mails(cart)
        self.assertEqual(len(mail), 1)
        self.assertIn("/shop/cart/unsubscribe?", mail.body_html)
