"""moto server with DynamoDB requests serialized.

moto applies TransactWriteItems item by item and rolls back a failed one by
restoring a snapshot taken when it started, with no lock. Under concurrent
requests a failing transaction can therefore erase a commit made meanwhile,
which real DynamoDB never does. Running every DynamoDB request under one lock
gives each request the isolation DynamoDB guarantees; SQS and SES (long polls
included) stay concurrent.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_dynamodb_lock = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _dynamodb_lock:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action

if __name__ == "__main__":
    sys.exit(main())
