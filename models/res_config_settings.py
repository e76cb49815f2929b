from flectra import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    order_assignment_mode = fields.Selection(
        related="website_id.order_assignment_mode", readonly=False
    )

    # --- Online returns --------------------------------------------------------
    allow_online_returns = fields.Boolean(
        related="website_id.allow_online_returns", readonly=False
    )
    return_window_days = fields.Integer(
        related="website_id.return_window_days", readonly=False
    )

    # --- Abandoned-cart e-mails --------------------------------------------------
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
