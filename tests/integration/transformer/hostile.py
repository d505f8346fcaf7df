"""Hostile HTTP requests for test_hostile_requests.py: a seeded generator and a raw-socket client.

Each request is written byte for byte (no client library cleans it up) and sent on its own
connection. Cases come from one seeded RNG, so a failing run replays exactly.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import random
import select
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from model.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from tests.strategies import NOT_NUMBER_TEXTS

MODEL = "churn"
INFER = f"/v2/models/{MODEL}/infer"
# Answered without a token, by design.
OPEN_PATHS = frozenset(
    {"/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready", "/metrics"}
)
KB = 1024
# Pre-rendered JSON spliced into a request where the placeholder string stands (JSON has no
# way to say NaN, and orjson refuses to write it).
SPLICE = "@@splice@@"

Headers = list[tuple[str, str]]
# Printable ASCII to its full-width twin (U+FF01 to U+FF5E).
FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


@dataclass(frozen=True)
class Draft:
    """A request before the token goes in. ``raw`` (framing cases) holds the whole request
    with AUTH_MARK where the Authorization line goes."""

    method: str = "POST"
    target: str = INFER
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False
    trailers: Headers = field(default_factory=list)
    version: str = "HTTP/1.1"
    raw: bytes | None = None
    # Statuses allowed when the request carries the valid token; None: any non-5xx.
    expected: frozenset[int] | None = None
    # An input the error details must name (input and, when known, row).
    names: tuple[str, int | None] | None = None


AUTH_MARK = b"<<authorization>>\r\n"


@dataclass(frozen=True)
class Case:
    category: str
    draft: Draft
    # Exactly one "Authorization: Bearer <valid token>" line in the header block.
    authorized: bool
    # Statuses allowed; None: any that keeps the suite-wide rules.
    expected: frozenset[int] | None

    @property
    def open_path(self) -> bool:
        return self.draft.raw is None and self.draft.target.split("?")[0] in OPEN_PATHS


def wire(draft: Draft) -> bytes:
    """The request as bytes on the wire (header text is sent as latin-1, byte for byte)."""
    if draft.raw is not None:
        return draft.raw
    lines = [f"{draft.method} {draft.target} {draft.version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in draft.headers]
    if draft.chunked:
        lines.append("Transfer-Encoding: chunked")
        body = _chunks(draft.body) + b"0\r\n"
        body += b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in draft.trailers)
        body += b"\r\n"
    else:
        if draft.body or draft.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(draft.body)}")
        body = draft.body
    if not any(name.lower() == "connection" for name, _ in draft.headers):
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _chunks(body: bytes, size: int = 64 * KB) -> bytes:
    return b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def exchange(port: int, request: bytes, *, head: bool, timeout: float) -> Answer | None:
    """Send the request, stopping early if the server answers first (a refused upload); the
    parsed response, or None if the connection ended without one."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    with sock:
        view = memoryview(request)
        sent = 0
        try:
            while sent < len(view):
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sent += sock.send(view[sent : sent + 64 * KB])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer may still be there
        response = http.client.HTTPResponse(sock, method="HEAD" if head else "POST")
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, OSError):
            return None
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


# ---------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class Context:
    token: str
    customers: list[dict[str, Any]]
    max_body_bytes: int
    v2_request: Callable[[list[dict[str, Any]]], dict[str, Any]]


def _json(document: Any, splice: bytes = b"") -> bytes:
    """The document as JSON, with ``splice`` written verbatim where SPLICE stands."""
    # The standard library writes integers of any size (orjson stops at 64 bits).
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode().replace(f'"{SPLICE}"'.encode(), splice)


class Generator:
    """Hostile drafts by category, all drawn from one seeded RNG."""

    def __init__(self, rng: random.Random, context: Context) -> None:
        self.rng = rng
        self.ctx = context
        self.categories: dict[str, tuple[float, Callable[[], Draft]]] = {
            "routes": (12, self.routes),
            "malformed_json": (8, self.malformed_json),
            "field_types": (10, self.field_types),
            "shapes": (8, self.shapes),
            "datatypes": (8, self.datatypes),
            "duplicates": (5, self.duplicates),
            "long_strings": (5, self.long_strings),
            "number_text": (10, self.number_text),
            "json_literals": (4, self.json_literals),
            "unicode": (6, self.unicode),
            "oversize": (0.5, self.oversize),
            "framing": (6, self.framing),
            "trailers": (3, self.trailers),
            "binary_ext": (4, self.binary_extension),
            "junk_headers": (5, self.junk_headers),
            "outputs": (4, self.outputs),
            "valid": (5, self.valid),
            "big_batch": (0.3, self.big_batch),
        }

    # -- plumbing

    def case(self) -> Case:
        names = list(self.categories)
        weights = [self.categories[n][0] for n in names]
        category = self.rng.choices([*names, "auth"], [*weights, 8])[0]
        if category == "auth":
            return self.auth()
        draft = self.categories[category][1]()
        # Some of every category go out without a usable token in the header block.
        if self.rng.random() < 0.12:
            return self._unauthorized(category, draft)
        authorized = self._with_header(draft, f"Bearer {self.ctx.token}")
        return Case(category, authorized, True, draft.expected)

    def _with_header(self, draft: Draft, authorization: str | None) -> Draft:
        line = b"" if authorization is None else f"Authorization: {authorization}\r\n".encode()
        if draft.raw is not None:
            return replace(draft, raw=draft.raw.replace(AUTH_MARK, line))
        extra = [] if authorization is None else [("Authorization", authorization)]
        return replace(draft, headers=[*extra, *draft.headers])

    def _unauthorized(self, category: str, draft: Draft) -> Case:
        token = self.ctx.token
        mode = self.rng.choice(
            ["none", "wrong", "query", "trailer", "basic", "cookie", "api-key", "scheme"]
        )
        if draft.raw is not None and mode in {"query", "trailer"}:
            mode = "none"
        if mode == "query":
            key = self.rng.choice(["token", "access_token", "authorization", "bearer"])
            sep = "&" if "?" in draft.target else "?"
            draft = replace(draft, target=f"{draft.target}{sep}{key}={token}")
            return Case(category, self._with_header(draft, None), False, None)
        if mode == "trailer":
            trailers = [*draft.trailers, ("Authorization", f"Bearer {token}")]
            draft = replace(draft, chunked=True, trailers=trailers)
            return Case(category, self._with_header(draft, None), False, None)
        authorization = {
            "none": None,
            "wrong": f"Bearer {self._word(32)}",
            "basic": "Basic " + base64.b64encode(f"alpha:{token}".encode()).decode(),
            "scheme": self.rng.choice([f"Token {token}", f"Bearer{token}", f"Bearer\t{token}"]),
        }.get(mode)
        if mode in {"cookie", "api-key"}:
            name = "Cookie" if mode == "cookie" else "X-Api-Key"
            value = f"token={token}" if mode == "cookie" else token
            draft = replace(draft, headers=[(name, value), *draft.headers])
        return Case(category, self._with_header(draft, authorization), False, None)

    def _word(self, size: int) -> str:
        return "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789", k=size))

    def _document(self, rows: int | None = None) -> dict[str, Any]:
        rows = rows or self.rng.randint(1, 4)
        start = self.rng.randrange(len(self.ctx.customers) - rows)
        return self.ctx.v2_request(self.ctx.customers[start : start + rows])

    def _tensor(self, document: dict[str, Any], name: str) -> dict[str, Any]:
        return next(t for t in document["inputs"] if t["name"] == name)

    def _post(self, document: Any, **fields: Any) -> Draft:
        body = document if isinstance(document, bytes) else _json(document)
        return Draft(body=body, headers=[("Content-Type", "application/json")], **fields)

    def _wrong_value(self, *, exclude: Sequence[type] = ()) -> Any:
        values: list[Any] = [
            None, True, 0, -1, 2**63, 1.5, "", "x" * self.rng.choice([1, 100]), [], [[]], {},
            {"a": [1]}, [None], ["FP64"], {"name": "tenure"},
        ]  # fmt: skip
        return self.rng.choice([v for v in values if not isinstance(v, tuple(exclude))])

    # -- categories

    def routes(self) -> Draft:
        kserve_routes = [
            ("GET", "/"),
            ("POST", f"/v2/repository/models/{MODEL}/unload"),
            ("POST", f"/v2/repository/models/{MODEL}/load"),
            ("POST", "/v2/repository/index"),
            ("GET", "/v1/models"),
            ("GET", f"/v1/models/{MODEL}"),
            ("POST", f"/v1/models/{MODEL}:predict"),
            ("POST", f"/v1/models/{MODEL}:explain"),
            ("POST", f"/v2/models/{MODEL}/versions/1/infer"),
            ("GET", f"/v2/models/{MODEL}/versions/1"),
            ("GET", f"/v2/models/{MODEL}/versions/1/ready"),
            ("GET", "/docs"),
            ("GET", "/docs/oauth2-redirect"),
            ("GET", "/redoc"),
            ("GET", "/openapi.json"),
            ("POST", f"/v2/models/{MODEL}/generate"),
            ("POST", f"/v2/models/{MODEL}/generate_stream"),
            ("POST", "/openai/v1/completions"),
            ("POST", "/openai/v1/chat/completions"),
            ("GET", "/openai/v1/models"),
            ("POST", "/v2/models/other/infer"),
            ("POST", f"/v2/models/{MODEL}/infer/"),
            ("POST", f"/v2/models/{MODEL}//infer"),
            ("POST", f"//v2/models/{MODEL}/infer"),
            ("POST", f"/v2/models/{MODEL.upper()}/infer"),
            ("POST", f"/v2/models/{MODEL}/explain"),
            ("GET", "/v2/models"),
            ("GET", "/metrics/"),
            ("GET", "/favicon.ico"),
            ("GET", "/%00"),
            ("GET", "/%zz"),
            ("POST", f"/v2/models/{MODEL}/infer%00"),
            ("GET", "/" + "a" * 8 * KB),
            ("OPTIONS", "*"),
        ]
        # Every allowed route answers one method: POST for infer, GET for the rest.
        wrong_methods = [
            (method, path)
            for path in (INFER, "/v2", f"/v2/models/{MODEL}", *sorted(OPEN_PATHS))
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND")
            if method != ("POST" if path == INFER else "GET")
        ]
        allowed = [
            ("GET", "/v2"),
            ("GET", f"/v2/models/{MODEL}"),
            *(("GET", path) for path in sorted(OPEN_PATHS)),
        ]
        pick = self.rng.random()
        if pick < 0.6:
            method, path = self.rng.choice(kserve_routes)
            expected: frozenset[int] | None = frozenset({404, 405})
        elif pick < 0.9:
            method, path = self.rng.choice(wrong_methods)
            expected = frozenset({404, 405})
        else:
            method, path = self.rng.choice(allowed)
            expected = frozenset({200})
        if self.rng.random() < 0.1:
            method, expected = "HEAD", None
        if self.rng.random() < 0.05:
            upgrade = [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ]
            target = self.rng.choice([INFER, "/v2/health/live", "/metrics", "/ws"])
            return Draft(method="GET", target=target, headers=upgrade)
        headers: Headers = [("Content-Type", "application/json")]
        body = b""
        if method in {"POST", "PUT", "PATCH"}:
            body = self.rng.choice(
                [_json(self._document()), b'{"instances": [[1, 2, 3]]}', b"{}", b""]
            )
        if path.startswith("/v1/") and self.rng.random() < 0.5:
            # CloudEvents, binary mode (ce-* headers) or structured (the event is the body).
            headers = [
                ("ce-specversion", "1.0"),
                ("ce-type", "io.kserve.inference.request"),
                ("ce-source", "hostile"),
                ("ce-id", self._word(8)),
                ("Content-Type", "application/json"),
            ]
            if self.rng.random() < 0.5:
                headers = [("Content-Type", "application/cloudevents+json")]
                event = {"specversion": "1.0", "type": "x", "source": "y", "id": "1", "data": {}}
                body = _json(event)
        return Draft(method=method, target=path, headers=headers, body=body, expected=expected)

    def malformed_json(self) -> Draft:
        valid = _json(self._document())
        depth = self.rng.choice([100, 1000, 100_000])
        body = self.rng.choice(
            [
                b"", b"{", b"}", b"[]", b"null", b"0", b'"inputs"', b"true",
                b"{'inputs': []}", b'{"inputs": [],}', b"/* c */ {}", b'{"inputs": [] // c\n}',
                valid + b"garbage", valid + b"}", b"\xef\xbb\xbf" + valid,
                valid[: self.rng.randrange(1, len(valid))],
                bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 300))),
                valid.replace(b'"tenure"', b'"ten\xffure"'),
                valid.replace(b'"inputs"', b"inputs"),
                b"[" * depth + b"]" * depth,
                b'{"a":' * depth + b"1" + b"}" * depth,
                b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}",
            ]
        )  # fmt: skip
        content_type = self.rng.choice(
            [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/json; charset=utf-16",
            ]
        )
        expected = frozenset({400, 415} if content_type != "application/json" else {400})
        return Draft(body=body, headers=[("Content-Type", content_type)], expected=expected)

    def field_types(self) -> Draft:
        document = self._document()
        tensor = self.rng.choice(document["inputs"])
        target = self.rng.choice(
            ["id", "outputs", "inputs", "name", "datatype", "shape", "data", "output-name",
             "parameters"]
        )  # fmt: skip
        if target == "parameters":
            # Parameters of any shape are ignored or refused.
            self.rng.choice([document, tensor])["parameters"] = self._wrong_value()
            return self._post(document, expected=frozenset({200, 400}))
        if target == "id":
            document["id"] = self._wrong_value(exclude=(str, type(None)))
        elif target == "outputs":
            document["outputs"] = self._wrong_value(exclude=(type(None), list))
        elif target == "inputs":
            document["inputs"] = self._wrong_value(exclude=(list,))
        elif target == "output-name":
            document["outputs"] = [{"name": self._wrong_value(exclude=(str,))}]
        else:
            key = target
            excluded: tuple[type, ...] = {"name": (str,), "datatype": (str,)}.get(key, (list,))
            tensor[key] = self._wrong_value(exclude=excluded)
        return self._post(document, expected=frozenset({400}))

    def shapes(self) -> Draft:
        document = self._document()
        tensor = self.rng.choice(document["inputs"])
        rows = len(tensor["data"])
        shape = self.rng.choice(
            [
                [2**63 - 1], [2**64 - 1], [10**30], [-1], [-rows], [1.0 * rows], [str(rows)],
                [True], [], [rows, 1], [1, rows], [rows + 1], [max(rows - 1, 0)], [[rows]],
                None, {"0": rows},
            ]
        )  # fmt: skip
        tensor["shape"] = shape
        name = tensor["name"]
        if self.rng.random() < 0.2:
            # Data that does not match a correct shape: nested, short or empty.
            tensor["shape"] = [rows]
            tensor["data"] = self.rng.choice(
                [[tensor["data"]], tensor["data"][:-1], [], [[v] for v in tensor["data"]]]
            )
        return self._post(document, expected=frozenset({400}), names=(name, None))

    def datatypes(self) -> Draft:
        document = self._document()
        numeric = [f.name for f in NUMERIC_FEATURES if f.name != "TotalCharges"]
        if self.rng.random() < 0.5:
            tensor = self._tensor(document, self.rng.choice(numeric))
            rows = len(tensor["data"])
            tensor["datatype"], tensor["data"] = self.rng.choice(
                [
                    ("BYTES", tensor["data"]),
                    ("BOOL", [True] * rows),
                    ("FP64", [True] * rows),
                    ("FP64", ["1"] * rows),
                    ("INT64", [1.5] * rows),
                    ("INT64", ["1"] * rows),
                    ("FP64", [[1.0]] * rows),
                    ("FP64", [{"v": 1}] * rows),
                    ("fp64", tensor["data"]),
                    ("", tensor["data"]),
                    ("FP8", tensor["data"]),
                    ("STRING", tensor["data"]),
                    ("INT64 ", tensor["data"]),
                ]
            )
        else:
            tensor = self._tensor(document, self.rng.choice(CATEGORICAL_FEATURES).name)
            rows = len(tensor["data"])
            tensor["datatype"], tensor["data"] = self.rng.choice(
                [
                    ("FP64", tensor["data"]),
                    ("INT64", [1] * rows),
                    ("BYTES", [1] * rows),
                    ("BYTES", [True] * rows),
                    ("BYTES", [1.5] * rows),
                    ("BYTES", [["Male"]] * rows),
                    ("BYTES", [{"v": "Male"}] * rows),
                    ("BOOL", [False] * rows),
                    ("bytes", tensor["data"]),
                ]
            )
        return self._post(document, expected=frozenset({400}), names=(tensor["name"], None))

    def duplicates(self) -> Draft:
        document = self._document()
        body = _json(document)
        kind = self.rng.choice(["tensor", "key-last-bad", "key-last-good", "inner-key", "id"])
        if kind == "tensor":
            tensor = self.rng.choice(document["inputs"])
            document["inputs"].append(copy.deepcopy(tensor))
            return self._post(document, expected=frozenset({400}), names=(tensor["name"], None))
        if kind == "key-last-bad":
            body = body[:-1] + b',"inputs":"x"}'
            return self._post(body, expected=frozenset({400}))
        if kind == "key-last-good":
            body = b'{"inputs":"x",' + body[1:]
        elif kind == "inner-key":
            body = body.replace(b'"datatype":"BYTES"', b'"datatype":"FP64","datatype":"BYTES"', 1)
        else:
            body = b'{"id":1,"id":"x",' + body[1:]
        # Duplicate JSON names: whichever the parser keeps, never a 5xx.
        return self._post(body, expected=frozenset({200, 400}))

    def long_strings(self) -> Draft:
        document = self._document()
        size = self.rng.choice([100 * KB, 100 * KB + 1, 1 * KB * KB])
        where = self.rng.choice(
            ["category", "category-padded", "number", "number-zeros", "customerID", "name",
             "datatype", "id", "output", "many-cells"]
        )  # fmt: skip
        category = self.rng.choice(CATEGORICAL_FEATURES)
        expected: frozenset[int] = frozenset({400})
        names: tuple[str, int | None] | None = None
        if where in {"category", "category-padded"}:
            tensor = self._tensor(document, category.name)
            row = self.rng.randrange(len(tensor["data"]))
            # Padded: a valid category lost in whitespace, which normalizing would accept.
            value = category.values[0] + " " * size if where == "category-padded" else "x" * size
            tensor["data"][row] = value
            names = (category.name, row)
        elif where in {"number", "number-zeros"}:
            tensor = self._tensor(document, "TotalCharges")
            row = self.rng.randrange(len(tensor["data"]))
            tensor["data"][row] = "9" * size if where == "number" else "0" * size + "5"
            names = ("TotalCharges", row)
        elif where == "customerID":
            self._tensor(document, "customerID")["data"][0] = "c" * size
            expected = frozenset({200, 400})
        elif where == "name":
            self.rng.choice(document["inputs"])["name"] = "n" * size
        elif where == "datatype":
            self.rng.choice(document["inputs"])["datatype"] = "FP64" * (size // 4)
        elif where == "id":
            document["id"] = "i" * size
            expected = frozenset({200, 400})
        elif where == "output":
            document["outputs"] = [{"name": "o" * size}]
        else:
            # Every cell of one categorical column a 10 kB string, 200 rows.
            rows = 200
            document = self._document(rows)
            self._tensor(document, category.name)["data"] = [
                self._word(16) * (10 * KB // 16) for _ in range(rows)
            ]
            names = (category.name, None)
        return self._post(document, expected=expected, names=names)

    # Numbers sent as text. The grammar: ASCII digits, optional sign, one decimal point,
    # optional exponent. Everything else is not a number (or out of range), named by row.
    ODD_BUT_MAYBE = ("+5", ".5", "5.", " 12 ", "\t7", "1e-400", "-0", "00012", "1E2")
    NUMBERS = ("29.85", "1e2", "0.5", "100", "0")

    def number_text(self) -> Draft:
        document = self._document()
        name = self.rng.choice(["TotalCharges", "MonthlyCharges"])
        tensor = self._tensor(document, name)
        tensor["datatype"] = "BYTES"
        tensor["data"] = [str(v) for v in tensor["data"]]
        row = self.rng.randrange(len(tensor["data"]))
        pick = self.rng.random()
        if pick < 0.7:
            tensor["data"][row] = self.rng.choice(NOT_NUMBER_TEXTS)
            return self._post(document, expected=frozenset({400}), names=(name, row))
        if pick < 0.9:
            tensor["data"][row] = self.rng.choice(self.ODD_BUT_MAYBE)
            return self._post(document, expected=frozenset({200, 400}))
        tensor["data"][row] = self.rng.choice(self.NUMBERS)
        return self._post(document, expected=frozenset({200}))

    def json_literals(self) -> Draft:
        document = self._document()
        name = self.rng.choice([f.name for f in NUMERIC_FEATURES])
        tensor = self._tensor(document, name)
        tensor["datatype"] = "FP64"
        tensor["data"][0] = SPLICE
        literal = self.rng.choice(
            [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"nan", b"inf", b"0x10",
             b"1_0", b"+1", b".5", b"01", b"1.", b"-"]
        )  # fmt: skip
        return self._post(_json(document, literal), expected=frozenset({400}))

    def unicode(self) -> Draft:
        document = self._document()
        category = self.rng.choice(CATEGORICAL_FEATURES)
        tensor = self._tensor(document, category.name)
        good = category.values[-1]
        value, expected = self.rng.choice(
            [
                (SPLICE, {400}),  # a lone surrogate, spliced as a JSON escape below
                ("\x00", {400}),
                (good + "\x00", {400}),
                (good[:1] + "\u200b" + good[1:], {400}),
                ("\u202e" + good, {400}),
                (good.translate(FULL_WIDTH), {400}),
                ("\u0130", {400}),
                (good.upper(), {200}),
                (f"  {good.lower()}  ", {200}),
                ("\U0001f600", {400}),
                ("e\u0301", {400}),
            ]
        )  # fmt: skip
        tensor["data"][0] = value
        surrogates = self.rng.choice([b'"\\ud800"', b'"\\udc00\\ud800"', b'"a\\ud83d"'])
        body = _json(document, surrogates)
        names = (category.name, 0) if expected == {400} and value != SPLICE else None
        if self.rng.random() < 0.1:
            body = body.replace(b'"datatype"', b'"data\xc0\xafype"', 1)  # overlong UTF-8
            expected, names = {400}, None
        return self._post(body, expected=frozenset(expected), names=names)

    def oversize(self) -> Draft:
        limit = self.ctx.max_body_bytes
        kind = self.rng.choice(["declared", "chunked", "declared-lie"])
        body = b'{"inputs": [' + b" " * (limit - 13) + b"]}"  # limit + 1 bytes
        if kind == "declared":
            return self._post(body, expected=frozenset({413}))
        if kind == "chunked":
            return replace(self._post(body), chunked=True, expected=frozenset({413}))
        declared = self.rng.choice([limit + 1, 10**12])
        head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
        raw = head.encode() + AUTH_MARK + b"Connection: close\r\n\r\n{}"
        return Draft(raw=raw, expected=frozenset({413}))

    def framing(self) -> Draft:
        body = _json(self._document())
        length = len(body)
        start = f"POST {INFER} HTTP/1.1\r\nHost: x\r\n".encode()

        def request(headers: bytes, payload: bytes = body, first: bytes = start) -> bytes:
            return first + AUTH_MARK + headers + b"Connection: close\r\n\r\n" + payload

        chunked = b"Transfer-Encoding: chunked\r\n"
        raw = self.rng.choice(
            [
                request(b"Content-Length: 2\r\n", body),  # shorter than the body
                request(b"Content-Length: abc\r\n"),
                request(b"Content-Length: -1\r\n"),
                request(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (length, length + 1)),
                request(b"Content-Length: %d\r\n" % length + chunked),
                request(b"Transfer-Encoding: gzip\r\n"),
                request(b"Transfer-Encoding: chunked, gzip\r\n"),
                request(chunked, b"zz\r\n" + body + b"\r\n0\r\n\r\n"),
                request(chunked, b"FFFFFFFFFFFFFFFFFF\r\n" + body + b"\r\n0\r\n\r\n"),
                request(chunked, b"%x;ext=1\r\n%s\r\n0\r\n\r\n" % (length, body)),
                request(b"Content-Length: %d\r\nContent-Encoding: gzip\r\n" % length),
                request(b"Expect: 100-continue\r\nContent-Length: %d\r\n" % length),
                request(b"Expect: 999-bogus\r\nContent-Length: %d\r\n" % length),
                request(b"NoColon\r\nContent-Length: %d\r\n" % length),
                request(b"X-Fold: a\r\n  folded\r\nContent-Length: %d\r\n" % length),
                request(b"X-Nul: a\x00b\r\nContent-Length: %d\r\n" % length),
                request(b"X-Del: a\x7fb\r\nContent-Length: %d\r\n" % length),
                request(b"Bad Name: v\r\nContent-Length: %d\r\n" % length),
                request(b"Authorization : Bearer %s\r\n" % self.ctx.token.encode()),
                request(b"Content-Length: %d\r\n" % length, body, start.replace(b"1.1", b"1.0")),
                request(b"", b"", f"GET {INFER}\r\n".encode()),
                request(b"", b"", b"PRI * HTTP/2.0\r\n\r\nSM\r\n"),
                request(b"", b"", f"CONNECT 127.0.0.1:{80} HTTP/1.1\r\nHost: x\r\n".encode()),
                request(b"Content-Length: 2\r\n", b"{}", b"FOO /v2 HTTP/1.1\r\nHost: x\r\n"),
                request(b"", b"", b"GET /v2/\xe9 HTTP/1.1\r\nHost: x\r\n"),
                request(b"", b"", b"GET /v2 HTTP/9.9\r\nHost: x\r\n"),
                f"POST {INFER} HTTP/1.1\nHost: x\n".encode() + b"Content-Length: 2\n\n{}",
            ]
        )
        return Draft(raw=raw)

    def trailers(self) -> Draft:
        trailer = self.rng.choice(
            [("X-Trailer", "1"), ("Content-Length", "0"), ("X-Request-Id", "t"), ("Host", "e")]
        )
        # Refused by the gateway, or first by the parser (a framing field in a trailer).
        draft = self._post(_json(self._document()), chunked=True, trailers=[trailer])
        if self.rng.random() < 0.5:
            draft = replace(draft, headers=[*draft.headers, ("Trailer", trailer[0])])
        return replace(draft, expected=frozenset({400}))

    def auth(self) -> Case:
        """A valid body to infer, with the token missing, wrong, misplaced or doubled."""
        draft = self._post(_json(self._document()))
        if self.rng.random() < 0.1:
            good = f"Bearer {self.ctx.token}"
            pair = [("Authorization", f"Bearer {self._word(32)}"), ("Authorization", good)]
            if self.rng.random() < 0.5:
                pair.reverse()
            doubled = replace(draft, headers=[*pair, *draft.headers])
            # Ambiguous whichever line holds the token: refused, never a pick.
            return Case("auth", doubled, False, frozenset({400}))
        case = self._unauthorized("auth", draft)
        # A token in a trailer is refused as a trailer or as no token at all.
        expected = {400, 401} if case.draft.chunked else {401}
        return replace(case, expected=frozenset(expected))

    def binary_extension(self) -> Draft:
        document = self._document()
        body = _json(document)
        length = self.rng.choice(
            ["-1", "abc", "0", str(len(body) + 100), "99999999999999999999", "", " 5", "1.5"]
        )
        content_type = self.rng.choice(["application/octet-stream", "application/json"])
        headers = [("Inference-Header-Content-Length", length), ("Content-Type", content_type)]
        if self.rng.random() < 0.5:
            # A JSON header announcing binary data, then raw bytes.
            tensor = self.rng.choice(document["inputs"])
            raw = bytes(self.rng.randrange(256) for _ in range(8 * len(tensor["data"])))
            tensor.pop("data")
            tensor["parameters"] = {"binary_data_size": self.rng.choice([len(raw), -1, 10**9])}
            header = _json(document)
            headers[0] = ("Inference-Header-Content-Length", str(len(header)))
            return Draft(body=header + raw, headers=headers, expected=frozenset({400}))
        return Draft(body=body, headers=headers, expected=frozenset({200, 400}))

    def junk_headers(self) -> Draft:
        value = self.rng.choice(
            [
                "x" * 10 * KB, "é✓".encode().decode("latin-1"), "\xff\xfe\xfd", "../../etc/passwd",
                '"}{"a":1', "\t", "%00", "' OR 1=1 --", "${jndi:ldap://127.0.0.1/a}",
                "a" * 129, "ok-id.1:2",
            ]
        )  # fmt: skip
        name = self.rng.choice(
            ["X-Request-Id", "x-churn-arm", "Content-Type", "Accept", "Accept-Encoding",
             "User-Agent", "X-Forwarded-For", "Traceparent", "X-" + self._word(200)]
        )  # fmt: skip
        headers = [(name, value), ("Content-Type", "application/json")]
        expected = {200}
        if name in {"Content-Type", "Accept"}:
            headers = headers[:1] if name == "Content-Type" else headers
            expected = {200, 400, 406, 415}
        if self.rng.random() < 0.2:
            headers += [(f"X-H{i}", self._word(8)) for i in range(self.rng.choice([100, 1000]))]
        return Draft(body=_json(self._document()), headers=headers, expected=frozenset(expected))

    def outputs(self) -> Draft:
        document = self._document()
        outputs, expected = self.rng.choice(
            [
                ([{"name": "nope"}], {400}),
                ([{"name": ""}], {400}),
                ([{"name": "output-0"}], {400}),
                ([{"name": "predict_proba"}], {400}),
                ([{"name": "churn\u0000"}], {400}),
                ([{"name": "churn"}, {"name": "nope"}], {400}),
                ("churn", {400}),
                ([{}], {400}),
                ([], {200, 400}),
                ([{"name": "churn"}, {"name": "churn"}], {200, 400}),
                ([{"name": "churn", "parameters": {"binary_data": True}}], {200, 400}),
                ([{"name": "churn_probability", "parameters": "x"}], {200, 400}),
            ]
        )
        document["outputs"] = outputs
        return self._post(document, expected=frozenset(expected))

    def valid(self) -> Draft:
        return self._post(self._document(self.rng.randint(1, 20)), expected=frozenset({200}))

    def big_batch(self) -> Draft:
        """A large valid batch: scored while the readiness probes keep being answered."""
        rows = self.rng.choice([5_000, 20_000])
        customers = self.ctx.customers * (rows // len(self.ctx.customers) + 1)
        return self._post(self.ctx.v2_request(customers[:rows]), expected=frozenset({200}))
