#!/usr/bin/python3
"""A Parley relay client written from relay/PROTOCOL.md alone.

It proves that the document is enough to talk to the relay from another language. It uses
the Python standard library, python-socketio's client (Debian: python3-socketio, with
python3-websocket for the WebSocket transport) and `cryptography` (python3-cryptography)
for Ed25519 and X25519.

Usage:
  parley_client.py vector
      Print the test vector of PROTOCOL.md section 4.4, computed from the RFC seeds.
  parley_client.py ROLE --url URL [options]        ROLE is send, receive or chat
      send     join, send --body to --to (outbox rules of section 13.1), wait for the
               receipt named by --receipt (default: delivered)
      receive  join, receive and acknowledge --expect messages, optionally --read them
      chat     both

Everything that happens is printed to stdout as one JSON object per line, with an "event"
key. The process exits by itself: 0 once every goal is met, 2 when --timeout runs out
first, 1 when the relay refuses us or a send fails for good, 3 on a protocol mismatch.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request

import socketio
import websocket
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

# PROTOCOL.md section 2.2: a native client sends no Origin header, or the relay refuses the
# upgrade with 403 E_ORIGIN. websocket-client adds `Origin: http://host:port` unless told not
# to, and python-engineio 4.3 offers no way to pass that option through, so it is set here.
_create_connection = websocket.create_connection


def _create_connection_without_origin(*args, **kwargs):
    kwargs.setdefault('suppress_origin', True)
    return _create_connection(*args, **kwargs)


websocket.create_connection = _create_connection_without_origin

PROTOCOL_VERSION = 1
HELLO_PATH = '/parley/hello'
MAX_FRAME_BYTES = 65536
MAX_BODY_BYTES = 32768  # UTF-8 bytes (section 3)
RETRYABLE = {'E_RATE_LIMITED', 'E_QUEUE_FULL', 'E_STORAGE', 'E_UNAVAILABLE', 'E_INTERNAL'}
STATE_RANK = {'sent': 1, 'delivered': 2, 'read': 3}

_print_lock = threading.Lock()


def emit_line(event, **fields):
    with _print_lock:
        sys.stdout.write(json.dumps({'event': event, **fields}, separators=(',', ':')) + '\n')
        sys.stdout.flush()


# ---- encodings (section 3) -------------------------------------------------------------

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def from_b64u(text: str, size: int) -> bytes:
    """Decodes base64url without padding; refuses a wrong size or a non-canonical encoding."""
    raw = base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    if len(raw) != size or b64u(raw) != text:
        raise ValueError('not a canonical base64url encoding of %d bytes' % size)
    return raw


def b32_lower(data: bytes) -> str:
    return base64.b32encode(data).decode('ascii').rstrip('=').lower()


def utf8_length(text: str) -> int:
    return len(text.encode('utf-8', 'surrogatepass'))


# ---- identity (section 4) --------------------------------------------------------------

def raw_public(private_key) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def user_id_of(id_key: str) -> str:
    return b32_lower(hashlib.sha256(from_b64u(id_key, 32)).digest()[:20])


def ka_statement(ka_key: str) -> bytes:
    return ('parley-ka-v1\n' + ka_key).encode('utf-8')


def auth_statement(relay_id: str, challenge: str, id_key: str, ka_key: str) -> bytes:
    return '\n'.join(['parley-auth-v1', relay_id, challenge, id_key, ka_key]).encode('utf-8')


class Identity:
    def __init__(self, id_private: Ed25519PrivateKey, ka_private: X25519PrivateKey):
        self.id_private = id_private
        self.ka_private = ka_private
        self.id_key = b64u(raw_public(id_private))
        self.ka_key = b64u(raw_public(ka_private))
        self.ka_sig = self.sign(ka_statement(self.ka_key))
        self.user_id = user_id_of(self.id_key)

    @classmethod
    def generate(cls):
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_seeds(cls, id_seed: bytes, ka_seed: bytes):
        return cls(Ed25519PrivateKey.from_private_bytes(id_seed), X25519PrivateKey.from_private_bytes(ka_seed))

    def sign(self, data: bytes) -> str:
        return b64u(self.id_private.sign(data))

    def describe(self):
        return {'userId': self.user_id, 'idKey': self.id_key, 'kaKey': self.ka_key, 'kaSig': self.ka_sig}


def verify(id_key: str, data: bytes, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(from_b64u(id_key, 32)).verify(from_b64u(signature, 64), data)
        return True
    except (ValueError, InvalidSignature):
        return False


def entry_is_genuine(entry) -> bool:
    """Section 9, step 4: the id is the hash of idKey, and idKey signed kaKey."""
    try:
        return entry['id'] == user_id_of(entry['idKey']) and verify(entry['idKey'], ka_statement(entry['kaKey']), entry['kaSig'])
    except (KeyError, TypeError, ValueError):
        return False


# The seeds of section 4.4: RFC 8032 test 1 and RFC 7748 "Alice".
VECTOR_ID_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'
VECTOR_KA_SEED = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'
VECTOR_RELAY_ID_BYTES = bytes(range(16))


def vector():
    identity = Identity.from_seeds(bytes.fromhex(VECTOR_ID_SEED), bytes.fromhex(VECTOR_KA_SEED))
    relay_id = b32_lower(VECTOR_RELAY_ID_BYTES)
    # Section 5.2 layout: 8-byte big-endian ms, 16-byte nonce, 16 bytes of HMAC-SHA-256.
    head = (1700000000000).to_bytes(8, 'big') + bytes(range(16, 32))
    challenge = b64u(head + hmac.new(bytes(32), head, hashlib.sha256).digest()[:16])
    statement = auth_statement(relay_id, challenge, identity.id_key, identity.ka_key)
    emit_line('vector', idSeed=VECTOR_ID_SEED, kaSeed=VECTOR_KA_SEED, **identity.describe(),
              relayId=relay_id, challenge=challenge, authStatement=statement.decode('utf-8'),
              sig=identity.sign(statement))
    return 0


# ---- the session ----------------------------------------------------------------------------

class Failure(Exception):
    def __init__(self, code, message, exit_code=1):
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code


def fetch_hello(base_url: str):
    """Section 2.1: GET /parley/hello."""
    try:
        with urllib.request.urlopen(base_url.rstrip('/') + HELLO_PATH, timeout=10) as response:
            hello = json.loads(response.read().decode('utf-8'))
    except urllib.error.HTTPError as error:
        try:
            code = json.loads(error.read().decode('utf-8')).get('code', 'HTTP_%d' % error.code)
        except ValueError:
            code = 'HTTP_%d' % error.code
        raise Failure(code, 'hello answered HTTP %d' % error.code) from None
    emit_line('hello', protocol=hello.get('protocol'), relayId=hello.get('relayId'), name=hello.get('name'),
              accessCode=hello.get('accessCode'))
    if hello.get('protocol') != PROTOCOL_VERSION:
        raise Failure('E_VERSION', 'the relay speaks protocol %r, this client %d' % (hello.get('protocol'), PROTOCOL_VERSION), 3)
    return hello


def new_message_id() -> str:
    return b64u(secrets.token_bytes(16))


class Session:
    def __init__(self, args, identity: Identity):
        self.args = args
        self.identity = identity
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.seen = set()                     # (from, id) of stored messages: section 7.4
        self.messages = []                    # stored messages, in arrival order
        self.outgoing = {}                    # id -> {'to', 'state', 'seq'}
        self.reads_pending = []               # (peer, id) to acknowledge as read
        self.reads_done = 0
        self.fatal = None
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=5)
        self.sio.on('message:deliver', self.on_deliver)
        self.sio.on('presence:update', self.on_presence)
        self.sio.on('directory:changed', self.on_directory_changed)
        self.directory_rev = 0                # highest rev seen in the directory: section 9
        self.sio.on('typing:update', lambda update: emit_line('typing', **update))
        self.sio.on('connect_error', self.on_connect_error)
        self.sio.on('disconnect', lambda: emit_line('disconnected'))
        self.refusal = None
        self.next_hello = None
        self.answered = threading.Event()
        self.sio.on('connect', self.on_connect)

    # -- handshake (section 5) --

    def auth(self):
        """Called by python-socketio on every connection attempt: a fresh hello each time.

        The first attempt uses the hello fetched by connect(). On a reconnection a failed
        hello raises here: the library then sends no CONNECT at all (better than an auth
        object that would count as a failed handshake), the relay closes the connection at
        its handshake deadline, and the library tries again.
        """
        hello, self.next_hello = self.next_hello, None
        if hello is None:
            hello = fetch_hello(self.args.url)
        if hello.get('accessCode') and self.args.access_code is None:
            emit_line('warning', message='the relay needs an access code')
        auth = {
            'v': PROTOCOL_VERSION,
            'idKey': self.identity.id_key,
            'kaKey': self.identity.ka_key,
            'kaSig': self.identity.ka_sig,
            'name': self.args.name,
            'challenge': hello['challenge'],
            'sig': self.identity.sign(auth_statement(hello['relayId'], hello['challenge'], self.identity.id_key, self.identity.ka_key)),
        }
        if self.args.access_code is not None:
            auth['accessCode'] = self.args.access_code
        return auth

    def on_connect_error(self, data=None):
        code = None
        message = None
        if isinstance(data, dict):
            detail = data.get('data') if isinstance(data.get('data'), dict) else {}
            code = detail.get('code') or data.get('message')
            message = detail.get('message') or data.get('message')
        self.refusal = (code or 'E_CONNECT', message or str(data))
        self.answered.set()
        emit_line('connect_error', code=self.refusal[0], message=self.refusal[1])

    def on_connect(self):
        self.answered.set()

    def connect(self):
        """Opens the WebSocket, sends CONNECT with a fresh auth object, waits for the answer."""
        # Section 5.1 step 1, before any WebSocket: a refusal here (E_THROTTLED, a protocol
        # we do not speak) ends the attempt without counting as a failed handshake.
        self.next_hello = fetch_hello(self.args.url)
        try:
            # wait=False: python-socketio would otherwise sit out its whole wait_timeout after
            # a refusal; the relay answers CONNECT with either CONNECT or CONNECT_ERROR.
            self.sio.connect(self.args.url, auth=self.auth, transports=['websocket'], wait=False)
        except socketio.exceptions.ConnectionError as error:
            code, message = self.refusal or ('E_CONNECT', str(error))
            raise Failure(code, message) from None
        admitted = self.answered.wait(timeout=10) and self.refusal is None
        if not admitted:
            self.sio.disconnect()  # section 2.2: after a refusal, close the WebSocket ourselves
            code, message = self.refusal or ('E_TIMEOUT', 'the relay did not answer CONNECT within 10 s')
            raise Failure(code, message)
        emit_line('connected', userId=self.identity.user_id)

    # -- requests (section 6) --

    def request(self, event, payload, timeout=10):
        """Returns the Result, or None when no answer came (timeout or no connection)."""
        try:
            return self.sio.call(event, payload, timeout=timeout)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return None

    def directory(self):
        """Pages the whole directory (section 6.4), then looks ourselves up (section 6.5)."""
        users = []
        after = None
        while True:
            payload = {'limit': 100} if after is None else {'after': after, 'limit': 100}
            result = self.request('directory:page', payload)
            if not result or not result.get('ok'):
                emit_line('directory_failed', result=result)
                return
            users.extend(result['value']['users'])
            after = result['value']['next']
            if after is None:
                break
        emit_line('directory', users=[{'id': u['id'], 'name': u['name'], 'online': u['online'], 'genuine': entry_is_genuine(u)} for u in users])
        self.directory_rev = max([self.directory_rev] + [u['rev'] for u in users])
        self.watch([u['id'] for u in users if u['id'] != self.identity.user_id])
        result = self.request('directory:get', {'ids': [self.identity.user_id]})
        if result and result.get('ok') and result['value']['users']:
            me = result['value']['users'][0]
            emit_line('self', entry=me, genuine=entry_is_genuine(me), matches=me['idKey'] == self.identity.id_key)

    def send(self, to, bodies):
        """The outbox of section 13.1: ids fixed first, then resent until an ok or a
        non-retryable error. One message goes in a message:send (6.2); several in one
        message:send-many (6.2a), each answer applying to its own message, in order."""
        now = int(time.time() * 1000)
        payloads = [{'id': new_message_id(), 'to': to, 'body': body, 'sentAt': now} for body in bodies]
        event = 'message:send' if len(payloads) == 1 else 'message:send-many'
        for payload in payloads:
            if utf8_length(payload['body']) > MAX_BODY_BYTES:
                raise Failure('E_TOO_LARGE', 'body over %d bytes of UTF-8' % MAX_BODY_BYTES)
        with self.lock:
            for payload in payloads:
                self.outgoing[payload['id']] = {'to': to, 'state': 'queued', 'seq': None}
        pending = payloads
        delay = 1.0  # at least 1 s: after E_RATE_LIMITED a shorter pause risks a disconnect (6.1)
        attempts = 0
        while pending:
            attempts += 1
            request = pending[0] if event == 'message:send' else {'messages': pending}
            frame = '42999' + json.dumps([event, request])
            if len(frame.encode('utf-8')) > MAX_FRAME_BYTES:
                raise Failure('E_TOO_LARGE', 'the frame would exceed %d bytes' % MAX_FRAME_BYTES)
            result = self.request(event, request)
            if event == 'message:send-many' and result is not None and result.get('ok'):
                results = result['value']['results']
            else:
                results = [result] * len(pending)
            retry = []
            for payload, answer in zip(pending, results):
                if answer is not None and answer.get('ok'):
                    self.sent(payload, answer['value'], attempts, event)
                    continue
                code = answer['error']['code'] if answer is not None else None
                if code is not None and code not in RETRYABLE:
                    emit_line('send_failed', id=payload['id'], code=code, message=answer['error'].get('message'))
                    raise Failure(code, 'send failed for good')
                emit_line('send_retry', id=payload['id'], code=code, attempt=attempts, inSeconds=round(delay, 2))
                retry.append(payload)
            pending = retry
            if pending:
                time.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, 60)
        return [payload['id'] for payload in payloads]

    def sent(self, payload, value, attempts, via):
        with self.changed:
            entry = self.outgoing[payload['id']]
            entry['seq'] = value['seq']
            # deliveredAt: the recipient took it before the relay answered (6.2, 13.1).
            reached = 'delivered' if 'deliveredAt' in value else 'sent'
            if STATE_RANK.get(entry['state'], 0) < STATE_RANK[reached]:
                entry['state'] = reached
            self.changed.notify_all()
        emit_line('sent', id=payload['id'], to=payload['to'], seq=value['seq'], attempts=attempts,
                  deliveredAt=value.get('deliveredAt'), via=via)

    # -- the delivery stream (sections 7 and 8) --

    def on_deliver(self, batch):
        if not isinstance(batch, list):
            return {'ok': False}
        with self.changed:
            for envelope in batch:
                kind = envelope.get('kind')
                if kind == 'message':
                    key = (envelope['from'], envelope['id'])
                    duplicate = key in self.seen
                    emit_line('message', seq=envelope['seq'], id=envelope['id'], body=envelope['body'],
                              sentAt=envelope['sentAt'], at=envelope['at'], duplicate=duplicate, **{'from': envelope['from']})
                    if not duplicate:
                        self.seen.add(key)
                        self.messages.append(envelope)
                        if self.args.read:
                            self.reads_pending.append((envelope['from'], envelope['id']))
                elif kind == 'receipt':
                    self.apply_receipt(envelope)
                else:
                    emit_line('unknown_envelope', envelope=envelope)
            self.changed.notify_all()
        emit_line('acked', seqs=[e.get('seq') for e in batch])
        return {'ok': True}

    def apply_receipt(self, receipt):
        applied = []
        for message_id in receipt.get('ids', []):
            mine = self.outgoing.get(message_id)
            # Only messages we sent to the receipt's author; states only move forward.
            if mine is None or mine['to'] != receipt['from']:
                continue
            if STATE_RANK.get(receipt['state'], 0) > STATE_RANK.get(mine['state'], 0):
                mine['state'] = receipt['state']
            applied.append(message_id)
        emit_line('receipt', seq=receipt['seq'], state=receipt['state'], ids=receipt['ids'], applied=applied, **{'from': receipt['from']})

    def watch(self, ids):
        """presence:watch (section 9), 500 ids per request."""
        for start in range(0, len(ids), 500):
            result = self.request('presence:watch', {'ids': ids[start:start + 500]})
            if result and result.get('ok'):
                emit_line('watching', ids=ids[start:start + 500], online=[u['id'] for u in result['value']['users'] if u['online']])
            else:
                emit_line('watch_failed', result=result)

    def on_directory_changed(self, hint):
        # A request must not wait on the thread that delivers its answer.
        self.sio.start_background_task(self.fetch_changes, hint.get('rev', 0))

    def fetch_changes(self, rev):
        """directory:changes since the highest rev seen (section 9); watches the new people."""
        if rev <= self.directory_rev:
            return
        changed = []
        while True:
            result = self.request('directory:changes', {'since': self.directory_rev, 'limit': 100})
            if not result or not result.get('ok'):
                emit_line('changes_failed', result=result)
                return
            users = [u for u in result['value']['users'] if entry_is_genuine(u)]
            changed.extend(users)
            self.directory_rev = max([self.directory_rev] + [u['rev'] for u in result['value']['users']])
            if result['value']['next'] is None:
                break
        emit_line('changes', users=[{'id': u['id'], 'name': u['name'], 'online': u['online']} for u in changed])
        self.watch([u['id'] for u in changed if u['id'] != self.identity.user_id])

    def on_presence(self, entry):
        emit_line('presence', id=entry.get('id'), name=entry.get('name'), online=entry.get('online'), rev=entry.get('rev'),
                  genuine=entry_is_genuine(entry))

    # -- goals --

    def goals_met(self):
        args = self.args
        if args.to is not None:
            sent = [m for m in self.outgoing.values() if m['to'] == args.to]
            if not sent or any(STATE_RANK.get(m['state'], 0) < STATE_RANK[args.receipt] for m in sent):
                return False
        if len(self.messages) < args.expect:
            return False
        if args.read and (self.reads_pending or self.reads_done < len(self.messages)):
            return False
        return True

    def missing(self):
        return {
            'outgoing': {k: v['state'] for k, v in self.outgoing.items()},
            'messages': len(self.messages),
            'expected': self.args.expect,
            'readsDone': self.reads_done,
        }


def run(args):
    identity = Identity.generate()
    emit_line('identity', **identity.describe())
    session = Session(args, identity)
    deadline = time.monotonic() + args.timeout
    session.connect()
    session.directory()

    def sender():
        try:
            bodies = [args.body] if args.count == 1 else ['%s #%d' % (args.body, i + 1) for i in range(args.count)]
            session.send(args.to, bodies)
        except Failure as failure:
            session.fatal = failure
        finally:
            with session.changed:
                session.changed.notify_all()

    if args.to is not None:
        threading.Thread(target=sender, daemon=True).start()

    while True:
        with session.changed:
            if session.fatal is not None:
                raise session.fatal
            if session.goals_met():
                break
            reads = session.reads_pending[:]
            session.reads_pending.clear()
            left = deadline - time.monotonic()
            if not reads:
                if left <= 0:
                    emit_line('timeout', missing=session.missing())
                    return 2
                session.changed.wait(timeout=min(left, 0.5))
                continue
        by_peer = {}
        for peer, message_id in reads:
            by_peer.setdefault(peer, []).append(message_id)
        for peer, ids in by_peer.items():
            result = session.request('message:read', {'peer': peer, 'ids': ids})
            if result is not None and result.get('ok'):
                emit_line('read_sent', peer=peer, ids=ids)
                with session.changed:
                    session.reads_done += len(ids)
            else:
                emit_line('read_retry', peer=peer, result=result)
                with session.changed:
                    session.reads_pending.extend((peer, i) for i in ids)
                time.sleep(0.5)
    emit_line('done', **session.missing())
    closer = threading.Thread(target=session.sio.disconnect, daemon=True)
    closer.start()
    closer.join(timeout=3)
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description='A Parley relay client written from relay/PROTOCOL.md.')
    parser.add_argument('role', choices=['vector', 'send', 'receive', 'chat'])
    parser.add_argument('--url', help='relay base URL, e.g. http://127.0.0.1:4500')
    parser.add_argument('--name', default='Python', help='display name')
    parser.add_argument('--access-code', dest='access_code')
    parser.add_argument('--to', help='user id to send --body to (send, chat)')
    parser.add_argument('--body', default='hello from Python')
    parser.add_argument('--count', type=int, default=1, help='messages to send (send, chat); several go in one message:send-many')
    parser.add_argument('--receipt', choices=['sent', 'delivered', 'read'], default='delivered',
                        help='state the sent message must reach before we are done')
    parser.add_argument('--expect', type=int, default=None, help='messages to receive (receive, chat; default 1)')
    parser.add_argument('--read', action='store_true', help='send read receipts for received messages')
    parser.add_argument('--timeout', type=float, default=30.0, help='seconds before giving up')
    args = parser.parse_args(argv)

    if args.role == 'vector':
        return vector()
    if not args.url:
        parser.error('--url is required')
    if args.url.startswith('ws://'):
        args.url = 'http://' + args.url[len('ws://'):]
    elif args.url.startswith('wss://'):
        args.url = 'https://' + args.url[len('wss://'):]
    elif '://' not in args.url:
        args.url = 'http://' + args.url
    if args.role in ('send', 'chat') and not args.to:
        parser.error('--to is required for %s' % args.role)
    if args.role == 'receive':
        args.to = None
    if args.expect is None:
        args.expect = 0 if args.role == 'send' else 1
    try:
        return run(args)
    except Failure as failure:
        emit_line('failed', code=failure.code, message=str(failure))
        return failure.exit_code


if __name__ == '__main__':
    code = main(sys.argv[1:])
    emit_line('exit', code=code)
    sys.stdout.flush()
    # python-socketio may leave non-daemon threads behind; the exit must not wait for them.
    os._exit(code)
