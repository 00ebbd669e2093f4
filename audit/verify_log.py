#!/usr/bin/env python3
"""Independent verifier of Partida's hash-chained event log, written from docs/LOG-FORMAT.md.

Python 3.11 standard library only; it shares no code with the Rust implementation on purpose.

    python3 audit/verify_log.py --vectors docs/log-format-vectors.json
    python3 audit/verify_log.py --export events.ndjson [--prev-hash HEX] [--json]

Exit status: 0 all good, 1 a check failed, 2 unusable input.
"""

import argparse
import calendar
import datetime
import hashlib
import json
import math
import re
import struct
import sys
import uuid

DOMAIN_TAG = b"partida.event.v1\x00"
GENESIS_HEX = "0" * 64
I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")
HEX32 = re.compile(r"[0-9a-f]{64}")
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


def micros(recorded_at):
    """Microseconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without float arithmetic."""
    m = TIMESTAMP.fullmatch(recorded_at)
    if not m:
        raise Invalid(f"recorded_at {recorded_at!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    parts = tuple(int(g) for g in m.groups()[:6])
    try:
        datetime.datetime(*parts)
    except ValueError as e:
        raise Invalid(f"recorded_at {recorded_at!r}: {e}") from e
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


def verify_export(path, prev_hash=None):
    """Streams an NDJSON export, stopping at the first problem; returns (exit status, summary)."""
    summary = {"ok": True, "events": 0, "first": None, "last": None, "head_hash": None, "error": None}
    last_time = None
    try:
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    record = parse_json(raw.decode("utf-8"))
                except (ValueError, RecursionError) as e:  # ValueError includes invalid UTF-8
                    summary.update(ok=False, error=f"line {line_no} is not JSON: {e}")
                    return 2, summary
                try:
                    position, prev_hash, last_time = check_record(record, summary["last"], prev_hash, last_time)
                except Failure as e:
                    summary.update(ok=False, error=str(e))
                    return 1, summary
                except Invalid as e:
                    named = isinstance(record, dict) and isinstance(record.get("position"), Num)
                    where = f"position {record['position'].text}" if named else f"line {line_no}"
                    summary.update(ok=False, error=f"{where}: {e}")
                    return 1, summary
                summary["events"] += 1
                summary["first"] = summary["first"] or position
                summary["last"], summary["head_hash"] = position, prev_hash
    except OSError as e:
        summary.update(ok=False, error=f"cannot read {path}: {e}")
        return 2, summary
    return 0, summary


def main(argv=None):
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(description="Verify Partida's log test vectors or an NDJSON log export.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--vectors", metavar="FILE", help="check the test vectors (docs/log-format-vectors.json)")
    mode.add_argument("--export", metavar="FILE", help="verify an NDJSON export")
    parser.add_argument("--prev-hash", metavar="HEX", help="trusted hash of the position before the export's first")
    parser.add_argument("--json", action="store_true", help="with --export: print a JSON summary")
    args = parser.parse_args(argv)
    if args.vectors:
        try:
            return 0 if check_vectors(args.vectors) else 1
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"unusable vectors file: {e!r}", file=sys.stderr)
            return 2
    if args.prev_hash is not None and not HEX32.fullmatch(args.prev_hash):
        parser.error("--prev-hash must be 64 lowercase hex digits")
    status, s = verify_export(args.export, args.prev_hash)
    if args.json:
        print(json.dumps(s))
        return status
    if s["error"]:
        print(f"{'FAILED' if status == 1 else 'UNUSABLE INPUT'}: {s['error']}")
    line = f"{s['events']} event{'' if s['events'] == 1 else 's'} verified"
    if s["events"]:
        line += f" (positions {s['first']}..{s['last']}, last hash {s['head_hash']})"
    print(line + ("" if s["ok"] else " before the problem"))
    if s["ok"] and s["first"] not in (None, 1) and args.prev_hash is None:
        print(f"note: the export starts at position {s['first']}; its first prev_hash is trusted, not verified")
    return status


if __name__ == "__main__":
    sys.exit(main())
