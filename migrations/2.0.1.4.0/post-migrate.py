"""2.0.1.3.0 -> 2.0.1.4.0: the order queues' payment flags are no longer stored.

sale.order's awaiting_offline_payment and awaiting_payment were stored, and
every checkout's payment recomputed them. They are now computed when read
and searched through the pending payments, so their columns would only go
stale: they are dropped. (The placed orders' new assignment_pending column
is added by the ORM, False for every order: orders placed before this
version were assigned when they were placed.)

The return slip's number finds its return transfer in the Inventory search
because a new return transfer's source document starts with it: the open
return transfers of requests approved before get it too.
"""

import logging

from flectra.tools.sql import column_exists

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    for column in ("awaiting_offline_payment", "awaiting_payment"):
        if column_exists(cr, "sale_order", column):
            cr.execute('ALTER TABLE sale_order DROP COLUMN "%s"' % column)
            _logger.info("sale_order.%s: no longer stored, column dropped", column)
    cr.execute(
        """
        UPDATE stock_picking picking
           SET origin = CASE WHEN COALESCE(picking.origin, '') = '' THEN request.name
                             ELSE request.name || ': ' || picking.origin END
          FROM sale_return_request request
         WHERE picking.return_request_id = request.id
           AND picking.state NOT IN ('done', 'cancel')
           AND strpos(COALESCE(picking.origin, ''), request.name) = 0
        """
    )
    _logger.info("%s open return transfers got their request's number", cr.rowcount)
