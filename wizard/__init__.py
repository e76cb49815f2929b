from . import return_request_reject
