#!/usr/bin/env python3
"""pipelining_sink.py: a real SMTP server (aiosmtpd) on loopback that shows whether its client pipelines
(RFC 2920), for tests/it/delivery.rs.

Usage: pipelining_sink.py DIR PORT [--pipelining] [--reject RCPT ...] [--starttls CERT KEY]
                           [--auth USER:PASSWORD [--no-plain]] [--implicit-tls CERT KEY]
                           [--tempfail-every K] [--drop-every K]

With --pipelining it offers PIPELINING in its EHLO reply and, on each MAIL command, waits (up to 5 s) until the
DATA command of the same transaction is already in its input before it answers: a client that pipelines sent
it in the same write as MAIL; a client that waits for each reply never has, and its MAIL is answered only after
the wait. Without the flag it offers no PIPELINING and answers at once. Either way each MAIL adds a line to
DIR/mail.jsonl, {"early": [the commands already received when MAIL was answered], "peer": [host, port]}, and each accepted message a
line to DIR/messages.jsonl with its recipients. --reject answers 550 to RCPT TO for that address. --starttls
offers STARTTLS with that certificate and key (PEM) and requires it before MAIL; each handshake that completes
adds a line to DIR/tls.jsonl; --implicit-tls speaks TLS from the first byte instead (smtps://). --auth requires a login with that user and password before MAIL (over plain TCP
too: this is a loopback test server), offering AUTH PLAIN and LOGIN, or only LOGIN with --no-plain; each attempt
adds {"mechanism", "login", "ok"} to DIR/auth.jsonl. --tempfail-every K answers 451 at the end of every K-th
message's data, --drop-every K closes the connection there instead of answering (as ../shared/validators/smtp-sink
does, which offers no PIPELINING); each adds {"fault"} to DIR/faults.jsonl.

aiosmtpd (1.4) offers no PIPELINING itself but reads commands in order from its input buffer, so pipelined
commands work; what is "already received" is that buffer (asyncio.StreamReader._buffer, private but stable).
Prints "listening" once it accepts connections; stops on SIGTERM or after 300 s.
"""
import asyncio
import json
import os
import signal
import sys
import threading


def main():
    from aiosmtpd.controller import Controller

    args = sys.argv[1:]
    out, port = args[0], int(args[1])
    pipelining = "--pipelining" in args
    rejected = {args[i + 1].lower() for i, a in enumerate(args) if a == "--reject"}
    os.makedirs(out, exist_ok=True)
    lock = threading.Lock()

    def option(name):
        return int(args[args.index(name) + 1]) if name in args else 0

    tempfail_every, drop_every = option("--tempfail-every"), option("--drop-every")
    count = {"data": 0}

    def log(name, record):
        with lock, open(os.path.join(out, name), "a") as f:
            f.write(json.dumps(record) + "\n")

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            if pipelining:
                responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            buffered = server._reader._buffer
            if pipelining:
                for _ in range(500):
                    if b"DATA\r\n" in buffered:
                        break
                    await asyncio.sleep(0.01)
            early = [line for line in bytes(buffered).decode("ascii", "replace").split("\r\n") if line]
            log("mail.jsonl", {"early": early, "peer": list(session.peer)})
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower() in rejected:
                return "550 5.1.1 <%s>: no such user" % address
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            with lock:
                count["data"] += 1
                n = count["data"]
            if tempfail_every and n % tempfail_every == 0:
                log("faults.jsonl", {"fault": "tempfail"})
                return "451 4.3.0 try again later"
            if drop_every and n % drop_every == 0:
                log("faults.jsonl", {"fault": "drop"})
                server.transport.close()
                return "421 4.4.2 dropped"  # never reaches the client: the socket is closed
            log("messages.jsonl", {"rcpt_tos": envelope.rcpt_tos, "bytes": len(envelope.original_content)})
            return "250 OK"

    tls = {}
    if "--starttls" in args:
        import ssl
        i = args.index("--starttls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args[i + 1], args[i + 2])
        tls = {"tls_context": context, "require_starttls": True}
    if "--implicit-tls" in args:
        import ssl
        i = args.index("--implicit-tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args[i + 1], args[i + 2])
        tls = {"ssl_context": context}

    if "--auth" in args:
        from aiosmtpd.smtp import AuthResult, LoginPassword
        user, password = args[args.index("--auth") + 1].split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
            log("auth.jsonl", {"mechanism": mechanism, "login": login, "ok": ok})
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        tls.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
        if "--no-plain" in args:
            tls["auth_exclude_mechanism"] = ["PLAIN"]

    class Handler2(Handler):
        def handle_STARTTLS(self, server, session, envelope):  # called, not awaited, by aiosmtpd
            log("tls.jsonl", {"peer": list(session.peer)})
            return True

    ctl = Controller(Handler2(), hostname="127.0.0.1", port=port, **tls)
    ctl.start()
    print("pipelining_sink: listening on 127.0.0.1:%d" % port, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(300)
    ctl.stop()


if __name__ == "__main__":
    main()
