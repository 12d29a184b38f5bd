"""Verifies a Gatehouse session with PyJWT, knowing only the JWKS URL.

usage: verify_session.py JWKS_URL TOKEN AUDIENCE ISSUER
Prints the claims (plus the kid) as JSON; exits 1 when PyJWT refuses the token.
"""
import json
import sys

import jwt


def main() -> int:
    jwks_url, token, audience, issuer = sys.argv[1:5]
    try:
        signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    claims["kid"] = jwt.get_unverified_header(token)["kid"]
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
