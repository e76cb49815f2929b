from flectra import api, fields, models


class WebsiteCartReminder(models.Model):
    """A follow-up e-mail sent when an abandoned cart stays abandoned.

    The first e-mail of a website uses its abandoned cart template and its
    abandoned delay; each reminder comes ``delay_hours`` after the e-mail sent
    before it, in ``sequence`` order.
    """

    _name = "website.cart.reminder"
    _description = "Abandoned Cart Follow-up Reminder"
    _order = "website_id, sequence, id"

    sequence = fields.Integer(default=10)
    website_id = fields.Many2one(
        "website",
        required=True,
        ondelete="cascade",
        index=True,
        default=lambda self: self.env["website"].get_current_website(),
    )
    delay_hours = fields.Float(
        "Send after (hours)",
        required=True,
        default=24.0,
        help="Hours after the previous abandoned cart e-mail of the same cart.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        "Email Template",
        required=True,
        ondelete="restrict",
        domain="[('model', '=', 'sale.order')]",
        default=lambda self: self._default_mail_template(),
    )

    _sql_constraints = [
        (
            "delay_hours_positive",
            "CHECK(delay_hours > 0)",
            "A follow-up reminder must come some hours after the previous e-mail.",
        ),
    ]

    @api.model
    def _default_mail_template(self):
        return self.env.ref(
            "website_sale_order_handling.mail_template_abandoned_cart_reminder",
            raise_if_not_found=False,
        )
