"""2.0.1.1.0 -> 2.0.1.2.0: the return e-mails list each product with its
reason, and the abandoned cart e-mail shows each product's picture and price.

Their templates are noupdate, so an upgrade does not touch them. Those nobody
edited (never written since they were created) get this version's body from
the data file; the translations of their old body go, so that the add-on's
translations of the new one load (right after this script). A template an
administrator edited stays as it is, and so does one whose translation of the
body an administrator edited, in any language (see upgrade_templates.py): the add-on's own
translations are SHIPPED_BODY_TRANSLATIONS, the SHA-256 of each msgstr of the
fr and de files of 2.0.1.0.0 and 2.0.1.1.0, which were the same.
"""

import os

from flectra.addons.website_sale_order_handling.upgrade_templates import (
    reload_unedited_templates,
)

# The data file of each template that this version changed.
TEMPLATES = dict(
    {
        "mail_template_return_%s" % state: os.path.join("data", "mail_template_return_data.xml")
        for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled")
    },
    mail_template_abandoned_cart_reminder=os.path.join(
        "data", "mail_template_abandoned_cart_data.xml"
    ),
)

# The translations of those bodies that the add-on's own fr and de files loaded.
SHIPPED_BODY_TRANSLATIONS = {
    "mail_template_abandoned_cart_reminder": {
        "c8b30265481973117d18117f39738a48dfbe6c680bd8b5e52a84dbec45205c06",
        "fe094dc7e96d22459916e9738b04363eceb6f0cf3f2396e57797d5a942622391",
    },
    "mail_template_return_approved": {
        "112a99d7a5d57d273374c91601bda4db15671a6164d04ae52482279cabdae29e",
        "32a3687db84733105725463977d9725490b8879794d72e3d9b1f4fb430f78857",
    },
    "mail_template_return_cancelled": {
        "4142032696c7aecb2da5ae85d4157cb2ca50b8e557ff61806efebdf2ad33a931",
        "4ed6c769f663003645b801724c8616457528be3f221a0f8adbe8ab3ccff799e1",
    },
    "mail_template_return_received": {
        "2941bc7de3f729c2006e78542c1f7ab1bad8f2b10ee3988cbd894a8d18225289",
        "d981c89dd80921b8ff79010854e18005b50d1b09593da7a43ce532f1b0902436",
    },
    "mail_template_return_refunded": {
        "69c704b26f15ab32c56ef9685aa9c7289342467fd16ab0ba99c4ae7a8a88335d",
        "9d1d5ff5b6429db14945318d409ab69d30fa18b293cd30db1b4d606fe83806db",
    },
    "mail_template_return_rejected": {
        "324e25ef31b7f589c9a260d602a9d9ae45978ae76b36181c61218731f4ea063a",
        "45a2e6bd8a7eced123d945291f21b0e7eb14dd16fa5c3de0e182d29322150583",
    },
    "mail_template_return_requested": {
        "135b22c35896b13e1b8f73255d0a4b10e765b42d3e5dbf8489f2ec92371706e7",
        "8585f36d9179e6399b7e057ffbaf9f54d4459cd3e8e2424a89a2850fa6795f78",
    },
}


def migrate(cr, version):
    if not version:
        return
    reload_unedited_templates(cr, TEMPLATES, SHIPPED_BODY_TRANSLATIONS)
