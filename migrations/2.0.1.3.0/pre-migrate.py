"""2.0.1.2.0 -> 2.0.1.3.0: the abandoned cart opt-out follows the address.

Until 2.0.1.2.0 an unsubscribe set a flag on the contact
(res_partner.cart_reminder_opt_out), which a guest's next contact did not
have. Now it is the address on Flectra's e-mail blacklist. Before the ORM
drops the flag's column, each flagged contact's normalized address goes on
the blacklist (an archived entry, someone taken off the list, is put back:
the customer's own unsubscribe is the one thing known for sure). A contact
whose e-mail field holds several addresses has no normalized address: each
of its addresses goes on the blacklist, as the reminders were sent to all.
"""

import logging

from flectra.tools import email_normalize, email_split
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
    count = cr.rowcount
    cr.execute(
        """
        SELECT email FROM res_partner
         WHERE cart_reminder_opt_out AND email_normalized IS NULL AND email IS NOT NULL
        """
    )
    several = sorted(
        {
            normalized
            for (email,) in cr.fetchall()
            for address in email_split(email)
            for normalized in [email_normalize(address)]
            if normalized
        }
    )
    for address in several:
        cr.execute(
            """
            INSERT INTO mail_blacklist (email, active, create_uid, create_date, write_uid,
                                        write_date)
            VALUES (%s, TRUE, 1, now() AT TIME ZONE 'UTC', 1, now() AT TIME ZONE 'UTC')
                ON CONFLICT (email) DO UPDATE SET active = TRUE
             WHERE mail_blacklist.active IS NOT TRUE
            """,
            [address],
        )
        count += cr.rowcount
    _logger.info("Abandoned cart opt-outs put on the e-mail blacklist: %s addresses", count)
