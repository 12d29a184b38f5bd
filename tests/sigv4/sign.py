"""Signs one request with botocore's SigV4Auth (service execute-api), independently of Gatehouse.

usage: sign.py METHOD URL BODY ACCESS_KEY SECRET_KEY REGION
Prints the headers to send as JSON.
"""
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main() -> int:
    method, url, body, access_key, secret_key, region = sys.argv[1:7]
    headers = {"content-type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body.encode() if body else None, headers=headers)
    SigV4Auth(Credentials(access_key, secret_key), "execute-api", region).add_auth(request)
    print(json.dumps(dict(request.headers.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
