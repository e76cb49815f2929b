"""2.0.1.4.0 -> 2.0.1.5.0: the return e-mails say which products are
exchanged, and for which variant, or refunded because the variant could not
be reserved.

Their templates are noupdate: those nobody edited get this version's body
(see upgrade_templates.py). The rest of the exchanges needs no data: every
existing return request line is a refund (the ORM fills the new resolution
column with its default), and the refund ledger's refund column may now be
empty for exchanged units (the ORM drops its NOT NULL).
"""

import os

from flectra.addons.website_sale_order_handling.upgrade_templates import (
    reload_unedited_templates,
)

TEMPLATES = {
    "mail_template_return_%s" % state: os.path.join("data", "mail_template_return_data.xml")
    for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled")
}

# The translations of those bodies that the add-on's own fr and de files loaded
# from 2.0.1.2.0 to 2.0.1.4.0 (they did not change).
SHIPPED_BODY_TRANSLATIONS = {
    "mail_template_return_requested": {
        "090f331d199f247d5ab87e806b4cae6551231fe062e56b6b1bc0b4b45bef563d",
        "d61f76460ff86e6cc0ba14324ac3e4cb037ae464d62f4394b8d12aac766a181b",
    },
    "mail_template_return_approved": {
        "363aebdd907cf4f8f236a30426ef7c2a52f9c13476944457e7f27e425fae37fa",
        "d390d4c43383702fc9abaa012bc69378611efd4ade92357b151f0077b28ebfe1",
    },
    "mail_template_return_received": {
        "09c1b2b13f99e894687096a85e6ebf01ad5bf25a6d8087097dee5b3993bdee7f",
        "b8a8609b5acd598ca2485eec9050c97a7738c4a1d185c1f96624fbb7553bed83",
    },
    "mail_template_return_refunded": {
        "0e7ffea21837519ba4c01d3eb942e634aeefd1cdda598e8b3d347f23201f148c",
        "66104de04be9b480cc54854ffaabc937936e774427990632750b271acae4612e",
    },
    "mail_template_return_rejected": {
        "dbb78a95de692ad17987fb13144a9f40bbe59d22bc5b1c3167ba92bc5a2355d6",
        "ea85139f59cb48a9b5b85cc1179fbc22ddbb6d6e260aaef35424673f42008a44",
    },
    "mail_template_return_cancelled": {
        "ea37c6abb5e28649d171f84bff8a3ac6bf449823004543dc2d8115f19f62b888",
        "f56836dde4a8fc8534ade4f722ca18b962e4d2504cec0b0e810ba64ac1eee9fb",
    },
}


def migrate(cr, version):
    if not version:
        return
    reload_unedited_templates(cr, TEMPLATES, SHIPPED_BODY_TRANSLATIONS)
