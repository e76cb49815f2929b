from . import test_smoke
from . import test_abandoned_cart_eligibility
from . import test_abandoned_cart_email
from . import test_abandoned_cart_http
from . import test_abandoned_cart_concurrency
