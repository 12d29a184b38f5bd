"""moto server with DynamoDB requests serialized.

moto applies TransactWriteItems item by item and rolls back a failed one by
restoring a snapshot taken when it started, with no lock. Under concurrent
requests a failing transaction can therefore erase a commit made meanwhile,
which real DynamoDB never does. Running every DynamoDB request under one lock
gives each request the isolation DynamoDB guarantees; SQS and SES (long polls
included) stay concurrent.

It also lets `GET /moto-api/data.json?service=ses` return one service's
models: the full dump grows with every SQS message of a test run and gets slow,
while the tests and the demo only read the emails SES received.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import json
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.server import main

_dynamodb_lock = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _dynamodb_lock:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action


def _model_data(self, request, full_url, headers):
    from urllib.parse import parse_qs, urlparse

    from moto.core.model_instances import model_data

    wanted = parse_qs(urlparse(full_url).query).get("service")
    results = {}
    for service in sorted(model_data):
        if wanted and service not in wanted:
            continue
        results[service] = {}
        for name in sorted(model_data[service]):
            results[service][name] = []
            for instance in model_data[service][name].instances_tracked:
                fields = {}
                for attr in dir(instance):
                    if attr.startswith("_"):
                        continue
                    try:
                        value = getattr(instance, attr)
                        json.dumps(value)
                    except (TypeError, AttributeError, ValueError):
                        continue
                    fields[attr] = value
                results[service][name].append(fields)
    return 200, {"Content-Type": "application/javascript"}, json.dumps(results)


MotoAPIResponse.model_data = _model_data

if __name__ == "__main__":
    sys.exit(main())
