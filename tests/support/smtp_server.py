"""A real SMTP server for frontdoor's tests: aiosmtpd with STARTTLS required and AUTH.

Each accepted message is written to OUTDIR/<n>.json with the authenticated user, whether
the session was encrypted, the envelope and the message text. Prints "ready" when listening.
"""
import argparse
import asyncio
import itertools
import json
import os
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--user", required=True)
parser.add_argument("--password", required=True)
parser.add_argument("--outdir", required=True)
args = parser.parse_args()

counter = itertools.count(1)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "encrypted": session.ssl is not None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
        }
        path = os.path.join(args.outdir, f"{next(counter)}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    if (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == args.user
        and auth_data.password.decode() == args.password
    ):
        return AuthResult(success=True, auth_data=args.user)
    return AuthResult(success=False, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(args.cert, args.key)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=args.port,
    tls_context=context,
    require_starttls=True,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()
