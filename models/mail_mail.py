import logging
import smtplib
import sys
from datetime import timedelta

from flectra import _, fields, models

_logger = logging.getLogger(__name__)

# An abandoned cart e-mail that meets a transient failure is tried again after
# RETRY_FIRST_DELAY, then twice as long each time, at most MAX_SEND_ATTEMPTS times.
MAX_SEND_ATTEMPTS = 6
RETRY_FIRST_DELAY = timedelta(minutes=10)


def is_transient_failure(error):
    """True when sending may work later: no answer, a dropped connection or a
    4xx reply (greylisting, server busy). A 5xx reply is permanent, and so is
    anything that is not about the SMTP conversation (a bad address, ...).

    Flectra wraps what smtplib raises into a MailDeliveryException: the cause
    is looked for down the chain of exceptions.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _message in error.recipients.values()]
            return bool(codes) and all(400 <= code < 500 for code in codes)
        if isinstance(error, smtplib.SMTPResponseException):
            return 400 <= error.smtp_code < 500
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return True
        if isinstance(error, smtplib.SMTPException):
            return False
        if isinstance(error, OSError):  # refused, reset, timed out, DNS
            return True
        error = error.__cause__ or error.__context__
    return False


class MailMail(models.Model):
    _inherit = "mail.mail"

    is_cart_reminder = fields.Boolean(
        "Abandoned Cart E-mail",
        readonly=True,
        help="Queued by the abandoned cart cron: a transient sending failure "
        "puts it back in the queue, a few times, later each time.",
    )
    cart_reminder_attempts = fields.Integer(
        "Failed Sending Attempts",
        readonly=True,
        copy=False,
    )

    def _send(self, auto_commit=False, raise_exception=False, smtp_session=None):
        # Flectra marks a mail failed before handing it to the SMTP server, and
        # when the connection drops during the conversation it stops the whole
        # batch there, without the usual post-processing: that mail would stay
        # failed for good. Find it and treat it as any transient failure.
        waiting = self.filtered(lambda mail: mail.is_cart_reminder and mail.state == "outgoing")
        attempts = {mail.id: mail.cart_reminder_attempts for mail in waiting}
        try:
            return super()._send(
                auto_commit=auto_commit, raise_exception=raise_exception, smtp_session=smtp_session
            )
        except smtplib.SMTPServerDisconnected as error:
            in_flight = waiting.filtered(
                lambda mail: (
                    mail.state == "exception" and mail.cart_reminder_attempts == attempts[mail.id]
                )
            )
            in_flight._cart_reminder_failed(str(error) or error.__class__.__name__, transient=True)
            raise

    def _postprocess_sent_message(self, success_pids, failure_reason=False, failure_type=None):
        reminders = self.filtered("is_cart_reminder")
        if failure_type and reminders:
            # Called by Flectra from the except clause that caught the failure:
            # the exception being handled says whether it is worth retrying.
            error = sys.exc_info()[1]
            if failure_type == "RECIPIENT":
                reason = failure_reason or _("No valid recipient.")
            else:
                reason = failure_reason or str(error or "") or failure_type
            reminders._cart_reminder_failed(
                reason, transient=failure_type != "RECIPIENT" and is_transient_failure(error)
            )
        return super()._postprocess_sent_message(
            success_pids, failure_reason=failure_reason, failure_type=failure_type
        )

    def _get_cart_reminder_max_attempts(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("website_sale_order_handling.cart_reminder_max_attempts", MAX_SEND_ATTEMPTS)
        )

    def _cart_reminder_failed(self, reason, transient):
        """Back to the queue, later, after a transient failure; failed for good
        after a permanent one or too many attempts, with the reason."""
        max_attempts = self._get_cart_reminder_max_attempts()
        now = fields.Datetime.now()
        for mail in self:
            attempts = mail.cart_reminder_attempts + 1
            if transient and attempts < max_attempts:
                retry_at = now + RETRY_FIRST_DELAY * 2 ** (attempts - 1)
                _logger.info(
                    "Abandoned cart e-mail %s: attempt %d failed (%s), retried at %s",
                    mail.id,
                    attempts,
                    reason,
                    retry_at,
                )
                mail.write(
                    {
                        "state": "outgoing",
                        "cart_reminder_attempts": attempts,
                        "scheduled_date": fields.Datetime.to_string(retry_at),
                        "failure_reason": reason,
                    }
                )
            else:
                if transient:
                    reason = _(
                        "Given up after %(attempts)s attempts: %(reason)s",
                        attempts=attempts,
                        reason=reason,
                    )
                _logger.warning("Abandoned cart e-mail %s not sent: %s", mail.id, reason)
                mail.write(
                    {
                        "state": "exception",
                        "cart_reminder_attempts": attempts,
                        "failure_reason": reason,
                    }
                )
