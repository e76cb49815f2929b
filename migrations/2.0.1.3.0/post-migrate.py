"""2.0.1.2.0 -> 2.0.1.3.0: refunds use a captured payment only as the payment
processing captured it, which its capture seal vouches for (an HMAC of its
amount, currency, acquirer, provider references, customer and orders, with
the database secret). The payments captured before this version get theirs:
every authorized or done transaction that is not a refund, as it stands at
the upgrade. Pending ones are sealed when Flectra marks them done.
"""

import logging

from flectra import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    count = env["payment.transaction"]._seal_existing_captures()
    _logger.info("Captured payments sealed for refunds: %s", count)
