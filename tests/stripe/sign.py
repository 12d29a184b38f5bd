"""Signs payloads with Stripe's official Python library (stripe on PyPI).

Reads {"secret": ..., "payloads": [...]} on stdin; prints one Stripe-Signature
header per payload, as a JSON list. The Rust test posts them to Gatehouse.
"""

import json
import sys

import stripe

request = json.load(sys.stdin)
headers = [
    stripe.WebhookSignature.generate_signature_header(payload, request["secret"])
    for payload in request["payloads"]
]
# Check the library's own verifier agrees before handing them over.
for payload, header in zip(request["payloads"], headers):
    stripe.WebhookSignature.verify_header(payload, header, request["secret"], tolerance=300)
json.dump(headers, sys.stdout)
