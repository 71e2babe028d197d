#!/usr/bin/env python3
"""The console's alarm receivers for the lab, in one process: an SMTP server that requires
STARTTLS and a login (aiosmtpd) and an HTTP server for webhooks. Each message or POST body is
appended to a file as one JSON line, so a test can count what arrived.

usage: alarm-receivers.py ADDRESS SMTP_PORT HTTP_PORT CERT KEY USER PASSWORD OUT_DIR
"""
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

address, smtp_port, http_port, cert, key, user, password, out = sys.argv[1:9]
lock = threading.Lock()


def record(name, entry):
    with lock, open(f"{out}/{name}.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


class Mail:
    async def handle_DATA(self, server, session, envelope):
        record("mail", {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": session.authenticated,
            "data": envelope.content.decode("utf-8", "replace"),
        })
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
        and auth_data.password.decode() == password
    return AuthResult(success=ok)


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        record("webhook", {"path": self.path, "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
smtp = Controller(Mail(), hostname=address, port=int(smtp_port), tls_context=context,
                  require_starttls=True, auth_required=True, authenticator=authenticator,
                  auth_require_tls=True)
smtp.start()
http = ThreadingHTTPServer((address, int(http_port)), Hook)
threading.Thread(target=http.serve_forever, daemon=True).start()
print("receivers ready", flush=True)
while True:
    time.sleep(3600)
