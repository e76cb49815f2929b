"""2.0.1.2.0 -> 2.0.1.3.0: the abandoned cart opt-out follows the address.

Until 2.0.1.2.0 an unsubscribe set a flag on the contact
(res_partner.cart_reminder_opt_out), which a guest's next contact did not
have. Now it is the address on Flectra's e-mail blacklist. Before the ORM
drops the flag's column, each flagged contact's normalized address goes on
the blacklist (an archived entry, someone taken off the list, is put back:
the customer's own unsubscribe is the one thing known for sure).
"""

import logging

from flectra.tools.sql import column_exists

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version or not column_exists(cr, "res_partner", "cart_reminder_opt_out"):
        return
    cr.execute(
        """
        INSERT INTO mail_blacklist (email, active, create_uid, create_date, write_uid, write_date)
        SELECT DISTINCT email_normalized, TRUE,
               1, now() AT TIME ZONE 'UTC', 1, now() AT TIME ZONE 'UTC'
          FROM res_partner
         WHERE cart_reminder_opt_out AND email_normalized IS NOT NULL
            ON CONFLICT (email) DO UPDATE SET active = TRUE
         WHERE mail_blacklist.active IS NOT TRUE
        """
    )
    _logger.info("Abandoned cart opt-outs put on the e-mail blacklist: %s addresses", cr.rowcount)
