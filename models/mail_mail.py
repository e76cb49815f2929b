from flectra import fields, models


class MailMail(models.Model):
    _inherit = "mail.mail"

    is_cart_reminder = fields.Boolean(
        "Abandoned Cart E-mail", readonly=True,
        help="Queued by the abandoned cart cron: kept in the queue while the "
        "mail server cannot be reached.",
    )

    def _postprocess_sent_message(self, success_pids, failure_reason=False, failure_type=None):
        # Flectra marks every mail of a batch as failed when the SMTP server cannot
        # be reached, and the queue never retries a failed mail. An abandoned cart
        # e-mail is sent once only, so it goes back to the queue for the next run.
        if failure_type == "SMTP":
            self.filtered("is_cart_reminder").write({"state": "outgoing"})
        return super()._postprocess_sent_message(
            success_pids, failure_reason=failure_reason, failure_type=failure_type
        )
