"""2.0.1.1.0 -> 2.0.1.2.0: the reason of a return moves from the request to
each of its lines.

Runs before the ORM updates the tables: it creates the lines' column and
copies each request's reason to every line of it, so the column is full when
the ORM makes it NOT NULL, and the request's column (no longer a field) is
only dropped, at the end of the upgrade, once its values are on the lines.
"""

import logging

from flectra.tools.sql import column_exists

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version or not column_exists(cr, "sale_return_request", "reason_id"):
        return
    if not column_exists(cr, "sale_return_request_line", "reason_id"):
        cr.execute("ALTER TABLE sale_return_request_line ADD COLUMN reason_id INTEGER")
    cr.execute(
        """
        UPDATE sale_return_request_line line
           SET reason_id = request.reason_id
          FROM sale_return_request request
         WHERE request.id = line.request_id
           AND line.reason_id IS NULL
        """
    )
    _logger.info("Return reasons copied from their requests to %s request lines", cr.rowcount)
