from . import test_smoke
from . import test_abandoned_cart_eligibility
