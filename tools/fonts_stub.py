"""A local stand-in for Google Fonts, for the browser tours (tools/test).

Website editor pages @import https://fonts.googleapis.com/css?...: offline,
that import fails and Chromium reports the whole editor stylesheet as failed
("Couldn't load css dependency"), so the tour stops. tools/chromium/chromium
sends the Google Fonts hosts here instead: an HTTPS server on loopback that
answers every request with an empty stylesheet. Its certificate is made for
the run with openssl and trusted by the browser through its key hash only
(--ignore-certificate-errors-spki-list), not for any other site.

Standard library and the openssl command only.
"""

import base64
import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading

HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com")


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # a stuck client never holds a thread for long

    def setup(self):
        super().setup()
        self.request.do_handshake()  # here, in this request's thread

    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/css; charset=utf-8")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()
        if body:
            self.wfile.flush()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, *args):
        pass


class FontsStub:
    """Start with start(); env() gives the variables the wrapper reads."""

    def __init__(self):
        self.folder = None
        self.server = None
        self.spki = None

    def start(self):
        openssl = shutil.which("openssl")
        if not openssl:
            return False
        self.folder = tempfile.mkdtemp(prefix="wsoh-fonts-stub-")
        key = os.path.join(self.folder, "key.pem")
        cert = os.path.join(self.folder, "cert.pem")
        made = subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=%s" % HOSTS[0],
                "-addext",
                "subjectAltName=%s" % ",".join("DNS:%s" % h for h in HOSTS),
                "-keyout",
                key,
                "-out",
                cert,
            ],
            capture_output=True,
            check=False,
        )
        if made.returncode != 0:
            return False
        der = subprocess.run(
            [openssl, "x509", "-in", cert, "-noout", "-pubkey"],
            capture_output=True,
            check=True,
        ).stdout
        spki = subprocess.run(
            [openssl, "pkey", "-pubin", "-outform", "der"],
            input=der,
            capture_output=True,
            check=True,
        ).stdout
        self.spki = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return True

    def env(self):
        if not self.server:
            return {}
        return {
            "WSOH_FONTS_STUB": "127.0.0.1:%d" % self.server.server_address[1],
            "WSOH_FONTS_STUB_SPKI": self.spki,
        }

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
