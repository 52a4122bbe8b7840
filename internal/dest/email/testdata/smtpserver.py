"""A small SMTP server for the email destination's tests.

Usage: python3 smtpserver.py OUTFILE

Listens on 127.0.0.1 on a free port, prints "PORT <n>" once it accepts
connections, and appends every message it accepts to OUTFILE as one JSON
line {"mailfrom", "rcpttos", "data"}. It refuses recipients by their local
part: reject* gets "550 5.1.1", tempfail* gets "451 4.3.0"; a message to a
refuse-data* recipient is refused at the end of DATA with "554 5.6.0".
It offers neither STARTTLS nor AUTH. It exits by itself after 10 minutes.
"""
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

import asyncore  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import smtpd  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

OUT = sys.argv[1]


class Channel(smtpd.SMTPChannel):
    def smtp_RCPT(self, arg):
        local = (arg or "").lower().split("<", 1)[-1]
        if local.startswith("reject"):
            self.push("550 5.1.1 mailbox unavailable")
            return
        if local.startswith("tempfail"):
            self.push("451 4.3.0 mailbox busy, try again later")
            return
        super().smtp_RCPT(arg)


class Server(smtpd.SMTPServer):
    channel_class = Channel

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        if any(r.lower().startswith("refuse-data") for r in rcpttos):
            return "554 5.6.0 message content rejected"
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps({
                "mailfrom": mailfrom,
                "rcpttos": rcpttos,
                "data": data.decode("utf-8", "replace"),
            }) + "\n")
        return None


server = Server(("127.0.0.1", 0), None, decode_data=False)
print("PORT", server.socket.getsockname()[1], flush=True)
threading.Timer(600, lambda: os._exit(0)).start()
asyncore.loop(timeout=0.5)
