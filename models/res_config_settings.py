from flectra import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    send_abandoned_cart_email = fields.Boolean(
        "Automatically send abandoned checkout emails",
        related="website_id.send_abandoned_cart_email", readonly=False,
    )
    cart_reminder_count = fields.Integer(
        "Follow-up Reminders", related="website_id.cart_reminder_count",
    )

    def action_open_abandoned_cart_template(self):
        self.ensure_one()
        return self.website_id.action_open_abandoned_cart_template()

    def action_open_cart_reminders(self):
        self.ensure_one()
        return self.website_id.action_open_cart_reminders()
