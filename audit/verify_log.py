#!/usr/bin/env python3
"""Independent verifier of Partida's hash-chained event log, its Merkle tree and its signed
checkpoints, written from docs/LOG-FORMAT.md.

Python 3.11 standard library only; it shares no code with the Rust implementation on purpose.

    python3 audit/verify_log.py --vectors docs/log-format-vectors.json
    python3 audit/verify_log.py --export events.ndjson [--prev-hash HEX] [--checkpoints DIR] [--json]

Exit status: 0 all good, 1 a check failed, 2 unusable input.
"""

import argparse
import calendar
import datetime
import hashlib
import json
import math
import pathlib
import re
import struct
import sys
import uuid

DOMAIN_TAG = b"partida.event.v1\x00"
CHECKPOINT_TAG = b"partida.checkpoint.v1\x00"
GENESIS_HEX = "0" * 64
I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")
HEX32 = re.compile(r"[0-9a-f]{64}")
HEX64 = re.compile(r"[0-9a-f]{128}")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Invalid(Exception):
    """A record or value that breaks the format."""


class Failure(Exception):
    """A chain check the log fails."""


class Num:
    """A JSON number kept as its source text, so that no integer is rounded through a double."""

    __slots__ = ("text", "is_integer_literal")

    def __init__(self, text, is_integer_literal):
        self.text, self.is_integer_literal = text, is_integer_literal


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(text):
    """Parses JSON text, keeping every number as a `Num` (NaN and Infinity are rejected)."""
    return json.loads(text, parse_int=lambda t: Num(t, True), parse_float=lambda t: Num(t, False),
                      parse_constant=_no_constant)


def format_double(x):
    """ECMAScript `Number.prototype.toString` of a finite double, except that -0 gives "0"."""
    if x == 0:
        return "0"
    mantissa, _, exp = repr(abs(x)).partition("e")  # repr has the shortest round-trip digits
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    significant = all_digits.lstrip("0")
    n = len(int_part) + (int(exp) if exp else 0) - (len(all_digits) - len(significant))
    digits = significant.rstrip("0")  # the value is 0.<digits> * 10^n
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        fraction = "." + digits[1:] if k > 1 else ""
        body = f"{digits[0]}{fraction}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return "-" + body if x < 0 else body


def canonical_number(num):
    """An integer literal within the i64 or u64 range exactly; any other number as the nearest double."""
    if num.is_integer_literal and len(num.text) <= 21 and I64_MIN <= int(num.text) <= U64_MAX:
        return str(int(num.text))
    value = float(num.text)
    if not math.isfinite(value):
        raise Invalid(f"number out of range: {num.text[:40]}")
    return format_double(value)


def canonical_string(s):
    """Quotes a string, escaping only `"`, `\\` and the control characters below U+0020."""
    return '"' + "".join(ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in s) + '"'


def canonical(value):
    """The canonical JSON text of a parsed value: keys sorted by code point, no whitespace."""
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, Num):
        return canonical_number(value)
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):  # Python orders str by code point
        return "{" + ",".join(canonical_string(k) + ":" + canonical(value[k]) for k in sorted(value)) + "}"
    raise Invalid(f"not a JSON value: {value!r}")


def field(record, name, kind):
    """A member of the record that must be of the given kind: "int", "str", "object" or "hash"."""
    value = record.get(name)
    ok = {"int": isinstance(value, Num) and value.is_integer_literal, "str": isinstance(value, str),
          "object": isinstance(value, dict), "hash": isinstance(value, str) and HEX32.fullmatch(value)}[kind]
    if not ok:
        wanted = {"int": "an integer", "str": "a string", "object": "an object", "hash": "64 lowercase hex digits"}
        raise Invalid(f"{name} is missing or not {wanted[kind]}")
    return int(value.text) if kind == "int" else value


def utf8(s, name):
    """The UTF-8 bytes of a string (lone surrogates are not text)."""
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Invalid(f"{name} is not valid Unicode text") from e


def micros(text, name="recorded_at"):
    """Microseconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without float arithmetic."""
    m = TIMESTAMP.fullmatch(text)
    if not m:
        raise Invalid(f"{name} {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    parts = tuple(int(g) for g in m.groups()[:6])
    try:
        datetime.datetime(*parts)
    except ValueError as e:
        raise Invalid(f"{name} {text!r}: {e}") from e
    return calendar.timegm(parts + (0, 0, 0)) * 1_000_000 + int(m.group(7))


def packed(fmt, value, name):
    """A fixed-width big-endian integer."""
    try:
        return struct.pack(fmt, value)
    except struct.error as e:
        raise Invalid(f"{name} is out of range") from e


def prefixed(data):
    """A u32 big-endian byte length, then the bytes."""
    if len(data) > 0xFFFFFFFF:
        raise Invalid("a field is 4 GiB or longer")
    return struct.pack(">I", len(data)) + data


def encode(record):
    """The exact bytes whose SHA-256 is the record's hash."""
    if not isinstance(record, dict):
        raise Invalid("the record is not a JSON object")
    event_id = field(record, "event_id", "str")
    if not UUID_TEXT.fullmatch(event_id):
        raise Invalid("event_id is not a hyphenated lowercase UUID")
    return b"".join([
        DOMAIN_TAG,
        packed(">q", field(record, "position", "int"), "position"),
        uuid.UUID(event_id).bytes,
        prefixed(utf8(field(record, "stream_id", "str"), "stream_id")),
        packed(">q", field(record, "stream_version", "int"), "stream_version"),
        prefixed(utf8(field(record, "event_type", "str"), "event_type")),
        packed(">i", field(record, "schema_version", "int"), "schema_version"),
        prefixed(utf8(canonical(field(record, "data", "object")), "data")),
        prefixed(utf8(canonical(field(record, "metadata", "object")), "metadata")),
        struct.pack(">q", micros(field(record, "recorded_at", "str"))),
        bytes.fromhex(field(record, "prev_hash", "hash")),
    ])


def leaf_hash(record_hash):
    """RFC 6962 leaf hash of a record's 32-byte hash."""
    return hashlib.sha256(b"\x00" + record_hash).digest()


def node_hash(left, right):
    """RFC 6962 inner node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    """The root over leaf hashes straight from the definition: split at the largest power of two below n."""
    if len(leaves) <= 1:
        return leaves[0] if leaves else hashlib.sha256(b"").digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


class Frontier:
    """The roots of the perfect subtrees on the tree's right edge: the root at any size in one pass."""

    def __init__(self):
        self.size, self.peaks = 0, []

    def push(self, record_hash):
        node, size = leaf_hash(record_hash), self.size
        while size & 1:  # each trailing 1 bit of the size is a subtree of the new leaf's height
            node, size = node_hash(self.peaks.pop(), node), size >> 1
        self.peaks.append(node)
        self.size += 1

    def root(self):
        if not self.peaks:
            return hashlib.sha256(b"").digest()
        root = self.peaks[-1]
        for left in reversed(self.peaks[:-1]):
            root = node_hash(left, root)
        return root


# Ed25519 verification (RFC 8032 §5.1.7), after the reference code of RFC 8032 §6.
ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, -1, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def ed_add(a, b):
    """Sum of two points in extended coordinates (X, Y, Z, T)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    p, q = (y1 - x1) * (y2 - x2) % ED_P, (y1 + x1) * (y2 + x2) % ED_P
    r, s = 2 * t1 * t2 * ED_D % ED_P, 2 * z1 * z2 % ED_P
    e, f, g, h = q - p, s - r, s + r, q + p
    return e * f % ED_P, g * h % ED_P, f * g % ED_P, e * h % ED_P


def ed_mul(n, point):
    result = (0, 1, 1, 0)
    while n:
        if n & 1:
            result = ed_add(result, point)
        point, n = ed_add(point, point), n >> 1
    return result


def ed_decode(encoded):
    """A point from its 32 bytes; None for a non-canonical (y >= p, or x = 0 with the sign bit) or invalid one."""
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if len(encoded) != 32 or y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, -1, ED_P) % ED_P
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = ED_P - x
    return x, y, 1, x * y % ED_P


ED_B = ed_decode((4 * pow(5, -1, ED_P) % ED_P).to_bytes(32, "little"))


def ed25519_verify(public_key, message, signature):
    """Whether `signature` (64 bytes) over `message` verifies with `public_key` (32 bytes); S >= L is rejected."""
    a, r = ed_decode(public_key), ed_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or len(signature) != 64 or s >= ED_L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % ED_L
    (x1, y1, z1, _), (x2, y2, z2, _) = ed_mul(s, ED_B), ed_add(r, ed_mul(k, a))  # [S]B == R + [k]A
    return (x1 * z2 - x2 * z1) % ED_P == 0 and (y1 * z2 - y2 * z1) % ED_P == 0


def key_id(public_key):
    """`ed25519:` and the first 16 hex digits of the SHA-256 of the 32-byte public key."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


def read_checkpoint(value):
    """A published checkpoint object, checked and with its signed bytes under "statement"."""
    if not isinstance(value, dict):
        raise Invalid("the checkpoint is not a JSON object")
    cp = {"position": field(value, "position", "int"), "chain_hash": field(value, "chain_hash", "hash"),
          "merkle_root": field(value, "merkle_root", "hash"), "key_id": field(value, "key_id", "str"),
          "signature": field(value, "signature", "str")}
    if not HEX64.fullmatch(cp["signature"]):
        raise Invalid("signature is not 128 lowercase hex digits")
    cp["signature"] = bytes.fromhex(cp["signature"])
    cp["statement"] = b"".join([
        CHECKPOINT_TAG,
        packed(">q", cp["position"], "position"),
        bytes.fromhex(cp["chain_hash"]),
        bytes.fromhex(cp["merkle_root"]),
        packed(">q", micros(field(value, "signed_at", "str"), "signed_at"), "signed_at"),
        prefixed(utf8(cp["key_id"], "key_id")),
    ])
    return cp


def load_checkpoints(directory):
    """The checkpoints of `DIR/checkpoint-*.json` by position, and the keys of `DIR/keys.json` by id."""
    keys_file = pathlib.Path(directory, "keys.json")
    keys = {}
    for key in json.loads(keys_file.read_text(encoding="utf-8"))["keys"]:
        public = key["public_key"]
        if key["algorithm"] != "ed25519" or not HEX32.fullmatch(public):
            raise Invalid(f"{keys_file}: key {key['key_id']} is not an Ed25519 key in 64 lowercase hex digits")
        if key_id(bytes.fromhex(public)) != key["key_id"]:
            raise Invalid(f"{keys_file}: key {key['key_id']} has the id {key_id(bytes.fromhex(public))}")
        keys[key["key_id"]] = bytes.fromhex(public)
    checkpoints = {}
    for path in sorted(pathlib.Path(directory).glob("checkpoint-*.json")):
        try:
            cp = read_checkpoint(parse_json(path.read_text(encoding="utf-8")))
        except (Invalid, ValueError) as e:  # ValueError: not JSON
            raise Invalid(f"{path}: {e}") from e
        checkpoints.setdefault(cp["position"], []).append(cp)
    return checkpoints, keys, str(keys_file)


def check_checkpoint(cp, keys, keys_from, chain_hash, root):
    """Checks a checkpoint against the log's hash and Merkle root (None: unknown) at its position."""
    position, public = cp["position"], keys.get(cp["key_id"])
    if public is None:
        raise Failure(f"checkpoint at position {position}: signed by key {cp['key_id']}, which is not in {keys_from}")
    if not ed25519_verify(public, cp["statement"], cp["signature"]):
        raise Failure(f"checkpoint at position {position}: the signature does not verify")
    mismatch = f"position {position}: the log no longer matches the checkpoint signed there"
    if chain_hash != cp["chain_hash"]:
        raise Failure(f"{mismatch}: chain hash {chain_hash} in the log, {cp['chain_hash']} signed")
    if root is not None and root != cp["merkle_root"]:
        raise Failure(f"{mismatch}: Merkle root {root} of the log, {cp['merkle_root']} signed")


def checkpoint_vector_problem(case, hashes, roots):
    """What is wrong with a checkpoint vector, or None."""
    public = bytes.fromhex(case["public_key"])
    try:
        cp = read_checkpoint(case["checkpoint"])
    except Invalid as e:
        return str(e)
    if key_id(public) != cp["key_id"]:
        return f"key id: the public key's is {key_id(public)}, the checkpoint's {cp['key_id']}"
    if cp["statement"].hex() != case["statement_hex"]:
        return f"statement: expected {case['statement_hex']}, got {cp['statement'].hex()}"
    if not ed25519_verify(public, cp["statement"], cp["signature"]):
        return "the signature does not verify"
    n = cp["position"]
    if 1 <= n <= len(hashes) and (hashes[n - 1].hex(), roots[n].hex()) != (cp["chain_hash"], cp["merkle_root"]):
        return f"it does not hold against the records vectors at position {n}"
    return None


def check_vectors(path):
    """Checks every canonical and record vector, printing each failure; returns True if all pass."""
    with open(path, encoding="utf-8") as f:
        vectors = parse_json(f.read())
    failures, total = [], 0
    for i, case in enumerate(vectors["canonical"]):
        total += 1
        try:
            got = canonical(parse_json(case["json"]))
        except (Invalid, ValueError) as e:
            got = f"<error: {e}>"
        if got != case["canonical"]:
            failures.append(f"canonical[{i}]: {case['json']!r}: expected {case['canonical']!r}, got {got!r}")
    for i, case in enumerate(vectors["records"]):
        total += 1
        try:
            encoding = encode(case["record"])
        except Invalid as e:
            failures.append(f"records[{i}]: {e}")
            continue
        if encoding.hex() != case["encoding_hex"]:
            failures.append(f"records[{i}]: encoding: expected {case['encoding_hex']}, got {encoding.hex()}")
        elif hashlib.sha256(encoding).hexdigest() != case["hash"]:
            failures.append(f"records[{i}]: hash: expected {case['hash']}, got {hashlib.sha256(encoding).hexdigest()}")
        elif case["record"].get("hash", case["hash"]) != case["hash"]:
            failures.append(f"records[{i}]: the record's hash member is not the vector's hash")
    hashes = [bytes.fromhex(case["hash"]) for case in vectors["records"]]
    leaves, frontier, roots = [leaf_hash(h) for h in hashes], Frontier(), [hashlib.sha256(b"").digest()]
    for h in hashes:
        frontier.push(h)
        roots.append(frontier.root())
    for i, case in enumerate(vectors.get("merkle", [])):
        total += 1
        size = int(case["size"].text)
        if not 0 <= size <= len(leaves):
            failures.append(f"merkle[{i}]: size {size} is not between 0 and {len(leaves)}")
        elif (merkle_root(leaves[:size]).hex(), roots[size].hex()) != (case["root"], case["root"]):
            failures.append(f"merkle[{i}]: root of {size}: expected {case['root']}, got "
                            f"{merkle_root(leaves[:size]).hex()} (streamed: {roots[size].hex()})")
    for i, case in enumerate(vectors.get("checkpoints", [])):
        total += 1
        problem = checkpoint_vector_problem(case, hashes, roots)
        if problem:
            failures.append(f"checkpoints[{i}]: {problem}")
    print("\n".join(failures + [f"{total - len(failures)} of {total} vectors pass"]))
    return total > 0 and not failures


def check_record(record, last, prev_hash, last_time):
    """Checks one record after its predecessor (`last` position, `prev_hash`, `last_time` micros).

    Before the first line `last` and `last_time` are None and `prev_hash` is None or trusted.
    Returns the record's (position, hash, micros).
    """
    encoding = encode(record)
    position, stored = field(record, "position", "int"), field(record, "hash", "hash")
    at = micros(record["recorded_at"])
    if last is not None and position != last + 1:
        raise Failure(f"position {position} follows position {last}: {'a gap' if position > last else 'out of order'}")
    if position < 1:
        raise Failure(f"position {position}: positions start at 1")
    if last is None and position == 1 and record["prev_hash"] != GENESIS_HEX:
        raise Failure("position 1: prev_hash is not the genesis hash (64 zeros)")
    if prev_hash is not None and record["prev_hash"] != prev_hash:
        of = f"the hash of position {last}" if last is not None else "the --prev-hash given"
        raise Failure(f"position {position}: prev_hash does not match {of}")
    recomputed = hashlib.sha256(encoding).hexdigest()
    if recomputed != stored:
        raise Failure(f"position {position}: hash mismatch: recomputed {recomputed}, stored {stored}")
    if last_time is not None and at < last_time:
        raise Failure(f"position {position}: recorded_at is earlier than that of position {last}")
    return position, stored, at


def verify_export(path, prev_hash=None, checkpoint_dir=None):
    """Streams an NDJSON export, stopping at the first problem; returns (exit status, summary).

    With `checkpoint_dir`, every checkpoint published there whose position is within the export is
    checked when its position is reached; those after the export's end are counted as beyond it.
    """
    summary = {"ok": True, "events": 0, "first": None, "last": None, "head_hash": None, "merkle_root": None,
               "checkpoints_verified": 0, "checkpoints_beyond": 0, "error": None}
    last_time, tree, checkpoints, keys, keys_from = None, Frontier(), {}, {}, None

    def done(status, error=None):
        whole = status == 0 and summary["first"] in (None, 1)  # the tree needs every record from position 1
        summary.update(ok=status == 0, error=error, merkle_root=tree.root().hex() if whole else None)
        return status, summary

    if checkpoint_dir is not None:
        try:
            checkpoints, keys, keys_from = load_checkpoints(checkpoint_dir)
        except OSError as e:
            return done(2, f"cannot read {e.filename or checkpoint_dir}: {e.strerror or e}")
        except (Invalid, ValueError, KeyError, TypeError) as e:
            return done(2, f"unusable checkpoints in {checkpoint_dir}: {e if isinstance(e, Invalid) else repr(e)}")
    try:
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    record = parse_json(raw.decode("utf-8"))
                except (ValueError, RecursionError) as e:  # ValueError includes invalid UTF-8
                    return done(2, f"line {line_no} is not JSON: {e}")
                try:
                    position, prev_hash, last_time = check_record(record, summary["last"], prev_hash, last_time)
                    summary["first"] = summary["first"] or position
                    if summary["first"] == 1:
                        tree.push(bytes.fromhex(prev_hash))
                    for cp in checkpoints.get(position, []):
                        root = tree.root().hex() if summary["first"] == 1 else None
                        check_checkpoint(cp, keys, keys_from, prev_hash, root)
                        summary["checkpoints_verified"] += 1
                except Failure as e:
                    return done(1, str(e))
                except Invalid as e:
                    named = isinstance(record, dict) and isinstance(record.get("position"), Num)
                    where = f"position {record['position'].text}" if named else f"line {line_no}"
                    return done(1, f"{where}: {e}")
                summary["events"] += 1
                summary["last"], summary["head_hash"] = position, prev_hash
    except OSError as e:
        return done(2, f"cannot read {path}: {e}")
    summary["checkpoints_beyond"] = sum(len(cps) for at, cps in checkpoints.items() if at > (summary["last"] or 0))
    return done(0)


def main(argv=None):
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(description="Verify Partida's log test vectors or an NDJSON log export.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--vectors", metavar="FILE", help="check the test vectors (docs/log-format-vectors.json)")
    mode.add_argument("--export", metavar="FILE", help="verify an NDJSON export")
    parser.add_argument("--prev-hash", metavar="HEX", help="trusted hash of the position before the export's first")
    parser.add_argument("--checkpoints", metavar="DIR", help="with --export: check the signed checkpoints "
                        "published in DIR (checkpoint-*.json, keys.json)")
    parser.add_argument("--json", action="store_true", help="with --export: print a JSON summary")
    args = parser.parse_args(argv)
    if args.checkpoints is not None and not args.export:
        parser.error("--checkpoints needs --export")
    if args.vectors:
        try:
            return 0 if check_vectors(args.vectors) else 1
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"unusable vectors file: {e!r}", file=sys.stderr)
            return 2
    if args.prev_hash is not None and not HEX32.fullmatch(args.prev_hash):
        parser.error("--prev-hash must be 64 lowercase hex digits")
    status, s = verify_export(args.export, args.prev_hash, args.checkpoints)
    if args.json:
        print(json.dumps(s))
        return status
    if s["error"]:
        print(f"{'FAILED' if status == 1 else 'UNUSABLE INPUT'}: {s['error']}")
    line = f"{s['events']} event{'' if s['events'] == 1 else 's'} verified"
    if s["events"]:
        line += f" (positions {s['first']}..{s['last']}, last hash {s['head_hash']})"
    print(line + ("" if s["ok"] else " before the problem"))
    if s["ok"]:
        print(f"merkle root {s['merkle_root'] or 'null (a partial export: it needs every record from position 1)'}")
    if args.checkpoints is not None and status != 2:
        print(f"checkpoints: {s['checkpoints_verified']} verified, {s['checkpoints_beyond']} beyond the export")
    if s["ok"] and s["first"] not in (None, 1):
        if args.prev_hash is None:
            print(f"note: the export starts at position {s['first']}; its first prev_hash is trusted, not verified")
        if args.checkpoints is not None:
            print("note: in a partial export, checkpoints are checked without their Merkle root, "
                  f"and those before position {s['first']} not at all")
    return status


if __name__ == "__main__":
    sys.exit(main())
