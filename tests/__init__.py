from . import test_smoke
from . import test_return_policy
from . import test_return_request
from . import test_return_portal
