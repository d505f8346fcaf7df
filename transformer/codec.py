"""Open Inference Protocol (v2) tensors to numpy columns and back, without per-row Python loops.

Client requests carry one tensor of shape [N] per feature column. Strings (categories, and
numbers sent as text) use BYTES; numbers may also use any numeric datatype. Values are
converted column-wise by numpy; only a column that fails the fast path is walked row by row,
to name the rows at fault.
"""

from __future__ import annotations

import reprlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from model.errors import MAX_REPORTED_ERRORS
from model.schema import MAX_CATEGORY_CHARS, MAX_CUSTOMER_ID_CHARS, MAX_NUMBER_TEXT_CHARS
from transformer.errors import (
    PredictorProtocolError,
    Problem,
    Reason,
    RequestRejected,
)

CUSTOMER_ID_INPUT = "customerID"
PROBABILITY_OUTPUT = "churn_probability"
CLASS_OUTPUT = "churn"
OUTPUT_NAMES = (PROBABILITY_OUTPUT, CLASS_OUTPUT, CUSTOMER_ID_INPUT)
# The single FP64 [N, F] tensor sent to the predictor (the name the sklearn runtimes expect).
PREDICTOR_INPUT = "input-0"
# v2 binary tensor extension: length of the JSON header that precedes the raw tensor bytes.
BINARY_HEADER = "inference-header-content-length"
# The request "id" is echoed in the response: as long as an x-request-id header may be.
MAX_REQUEST_ID_CHARS = 128
# Client-chosen names (unknown inputs and outputs, datatypes) are cut to this in error messages,
# so a refusal never mirrors a large body back.
MAX_ECHOED_CHARS = 64

INTEGER_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_DATATYPES = INTEGER_DATATYPES | FLOAT_DATATYPES
PROBABILITY_DATATYPES = frozenset({"FP32", "FP64"})

# Numbers as float64 arrays; strings as the decoded list itself (the feature spec reads lists
# of str directly: an object array would cost two more passes over every value).
Column = npt.NDArray[Any] | list[str]


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """A validated v2 request: numeric columns as float64 (NaN = missing), string columns as
    lists of str ("" = missing), ready for FeatureSpec.transform."""

    rows: int
    columns: dict[str, Column]
    request_id: str | None = None
    customer_ids: list[str] | None = None
    requested_outputs: tuple[str, ...] | None = None


class _Problems:
    """Problems across all inputs, examples capped, count exact."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.total = 0

    def add(self, name: str | None, row: int | None, reason: str, kind: Reason) -> None:
        self.total += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(Problem(name, row, reason, kind))

    def add_rows(self, name: str, rows: npt.NDArray[np.intp], reason: str, kind: Reason) -> None:
        room = MAX_REPORTED_ERRORS - len(self.items)
        self.items.extend(Problem(name, int(r), reason, kind) for r in rows[: max(room, 0)])
        self.total += int(rows.size)


def _reject(reason: str, kind: Reason, name: str | None = None) -> RequestRejected:
    return RequestRejected(HTTPStatus.BAD_REQUEST, reason, [Problem(name, None, reason, kind)])


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _shown(text: str) -> str:
    """A client-chosen string as an error message echoes it: cut when long."""
    return text if len(text) <= MAX_ECHOED_CHARS else text[:MAX_ECHOED_CHARS] + "…"


class RequestDecoder:
    """Decodes v2 requests for one feature layout (numeric and categorical input names)."""

    def __init__(
        self, numeric: Collection[str], categorical: Collection[str], max_rows: int
    ) -> None:
        self._numeric = frozenset(numeric)
        self._categorical = frozenset(categorical)
        self._features = (*numeric, *categorical)
        self._max_rows = max_rows

    def decode(self, body: bytes) -> DecodedRequest:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _reject(f"malformed JSON: {exc}", Reason.MALFORMED_JSON) from None
        if not isinstance(document, dict):
            raise _reject("the body must be a v2 inference request object", Reason.INVALID_REQUEST)
        request_id = self._request_id(document)
        requested_outputs = self._requested_outputs(document)
        inputs = document.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise _reject(
                '"inputs" must be a non-empty list of tensors, one per feature',
                Reason.INVALID_REQUEST,
            )

        problems = _Problems()
        tensors, given = self._index_tensors(inputs, problems)
        rows = self._batch_rows(tensors, problems)
        if rows > self._max_rows:
            raise RequestRejected(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"batch of {rows} rows exceeds the limit of {self._max_rows}",
                [Problem(None, None, f"at most {self._max_rows} rows", Reason.TOO_MANY_ROWS)],
            )

        columns: dict[str, Column] = {}
        for name in self._features:
            if name not in tensors:
                if name not in given:  # a malformed tensor was reported already
                    problems.add(name, None, "required input is missing", Reason.MISSING_INPUT)
                continue
            datatype, data = tensors[name]
            column = (
                self._numeric_column(name, datatype, data, problems)
                if name in self._numeric
                else self._string_column(
                    name, datatype, data, MAX_CATEGORY_CHARS, problems, repeats=True
                )
            )
            if column is not None:
                columns[name] = column
        customer_ids = None
        if CUSTOMER_ID_INPUT in tensors:
            datatype, data = tensors[CUSTOMER_ID_INPUT]
            customer_ids = self._customer_ids(datatype, data, problems)
        if problems.total:
            raise RequestRejected(
                HTTPStatus.BAD_REQUEST, "invalid inference request", problems.items, problems.total
            )
        return DecodedRequest(rows, columns, request_id, customer_ids, requested_outputs)

    @staticmethod
    def _request_id(document: dict[str, Any]) -> str | None:
        request_id = document.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise _reject('"id" must be a string', Reason.INVALID_REQUEST)
        if request_id is not None and len(request_id) > MAX_REQUEST_ID_CHARS:
            raise _reject(
                f'"id" is longer than {MAX_REQUEST_ID_CHARS} characters', Reason.TOO_LONG, "id"
            )
        return request_id

    @staticmethod
    def _requested_outputs(document: dict[str, Any]) -> tuple[str, ...] | None:
        outputs = document.get("outputs")
        if outputs is None:
            return None
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise _reject(
                '"outputs" must be a list of {"name": ...} objects', Reason.INVALID_REQUEST
            )
        names = tuple(o["name"] for o in outputs)
        unknown = [n for n in names if n not in OUTPUT_NAMES]
        if unknown:
            shown = _shown(unknown[0])
            raise _reject(
                f"unknown output {shown!r}; available: {', '.join(OUTPUT_NAMES)}",
                Reason.INVALID_REQUEST,
                shown,
            )
        return names

    def _index_tensors(
        self, inputs: list[Any], problems: _Problems
    ) -> tuple[dict[str, tuple[str, list[Any]]], set[str]]:
        """Name -> (datatype, data) for well-formed tensors, and every name given."""
        tensors: dict[str, tuple[str, list[Any]]] = {}
        given: set[str] = set()
        for position, tensor in enumerate(inputs):
            if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
                problems.add(
                    f"inputs[{position}]",
                    None,
                    'each input must be an object with a string "name"',
                    Reason.INVALID_REQUEST,
                )
                continue
            name: str = tensor["name"]
            if name in given:
                problems.add(
                    _shown(name), None, "input given more than once", Reason.INVALID_REQUEST
                )
                continue
            given.add(name)
            if name != CUSTOMER_ID_INPUT and name not in self._numeric | self._categorical:
                problems.add(
                    _shown(name),
                    None,
                    "unknown input; expected one tensor per feature: " + ", ".join(self._features),
                    Reason.UNKNOWN_INPUT,
                )
                continue
            datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
            if not isinstance(datatype, str):
                problems.add(name, None, '"datatype" must be a string', Reason.WRONG_DATATYPE)
                continue
            if not (isinstance(shape, list) and len(shape) == 1 and _is_count(shape[0])):
                problems.add(
                    name,
                    None,
                    f"shape must be [N] (one value per row), got {reprlib.repr(shape)}",
                    Reason.WRONG_SHAPE,
                )
                continue
            if not isinstance(data, list):
                reason = (
                    'binary tensor data is not accepted here; send the values in "data"'
                    if data is None
                    and isinstance(tensor.get("parameters"), dict)
                    and "binary_data_size" in tensor["parameters"]
                    else '"data" must be a list of values'
                )
                problems.add(name, None, reason, Reason.INVALID_REQUEST)
                continue
            if len(data) != shape[0]:
                problems.add(
                    name,
                    None,
                    f"shape says {shape[0]} values but data holds {len(data)}",
                    Reason.WRONG_SHAPE,
                )
                continue
            tensors[name] = (datatype, data)
        return tensors, given

    @staticmethod
    def _batch_rows(tensors: Mapping[str, tuple[str, list[Any]]], problems: _Problems) -> int:
        lengths = {name: len(data) for name, (_, data) in tensors.items()}
        if not lengths:
            return 0
        # The majority is most likely intended.
        rows = Counter(lengths.values()).most_common(1)[0][0]
        for name, length in lengths.items():
            if length != rows:
                problems.add(
                    name,
                    None,
                    f"has {length} rows, the other inputs have {rows}",
                    Reason.WRONG_SHAPE,
                )
        if rows == 0:
            problems.add(
                None, None, "the batch is empty; send at least one row", Reason.WRONG_SHAPE
            )
        return rows

    def _numeric_column(
        self, name: str, datatype: str, data: list[Any], problems: _Problems
    ) -> Column | None:
        if datatype == "BYTES":
            # Numbers as text (Telco exports leave TotalCharges blank): the spec parses them.
            return self._string_column(name, datatype, data, MAX_NUMBER_TEXT_CHARS, problems)
        if datatype not in NUMERIC_DATATYPES:
            problems.add(
                name,
                None,
                f"datatype {_shown(datatype)} is not accepted; use FP64 (or another numeric "
                "datatype) or BYTES",
                Reason.WRONG_DATATYPE,
            )
            return None
        # One C-level pass over the types decides the path; null is a missing value.
        types = set(map(type, data))
        if not types <= _NUMBER_TYPES:
            _report_rows(
                name,
                data,
                lambda v: type(v) not in _NUMBER_TYPES,
                f"{datatype} tensor holds a value that is not a number (send text as BYTES)",
                problems,
            )
            return None
        try:
            values = np.array(data, dtype=np.float64)
        except OverflowError:
            problems.add(name, None, "a value is too large for FP64", Reason.OUT_OF_RANGE)
            return None
        if float in types and datatype in INTEGER_DATATYPES:
            with np.errstate(invalid="ignore"):
                fractional = np.flatnonzero(np.isfinite(values) & (values != np.floor(values)))
            if fractional.size:
                problems.add_rows(
                    name,
                    fractional,
                    f"{datatype} tensor holds a non-integer value",
                    Reason.WRONG_DATATYPE,
                )
                return None
        return values

    @staticmethod
    def _string_column(
        name: str,
        datatype: str,
        data: list[Any],
        max_chars: int,
        problems: _Problems,
        *,
        repeats: bool = False,
    ) -> Column | None:
        if datatype != "BYTES":
            problems.add(
                name,
                None,
                f"datatype {_shown(datatype)} is not accepted; this input takes BYTES (strings)",
                Reason.WRONG_DATATYPE,
            )
            return None
        types = set(map(type, data))
        if not types <= _STRING_TYPES:
            _report_rows(
                name,
                data,
                lambda v: type(v) not in _STRING_TYPES,
                "BYTES tensor holds a value that is not a string",
                problems,
            )
            return None
        column = ["" if v is None else v for v in data] if type(None) in types else data
        return None if _too_long(name, column, max_chars, problems, repeats=repeats) else column

    @staticmethod
    def _customer_ids(datatype: str, data: list[Any], problems: _Problems) -> list[str] | None:
        if datatype != "BYTES" or not all(isinstance(v, str) for v in data):
            problems.add(
                CUSTOMER_ID_INPUT, None, "must be a BYTES tensor of strings", Reason.WRONG_DATATYPE
            )
            return None
        return None if _too_long(CUSTOMER_ID_INPUT, data, MAX_CUSTOMER_ID_CHARS, problems) else data


_NUMBER_TYPES = frozenset({int, float, type(None)})
_STRING_TYPES = frozenset({str, type(None)})


def _too_long(
    name: str, column: list[str], max_chars: int, problems: _Problems, *, repeats: bool = False
) -> bool:
    """Report the cells longer than max_chars, before any of them reaches numpy.

    A fixed-width numpy array of these strings would cost rows x longest x 4 bytes; the limits
    keep every later step proportional to the body. One C-level pass when nothing is too long.
    A column that ``repeats`` a few values (categories) is measured per distinct value: the
    hashing this costs is not extra, as the feature spec's lookups reuse the cached hashes.
    """
    if not column or max(map(len, set(column) if repeats else column)) <= max_chars:
        return False
    lengths = np.fromiter(map(len, column), dtype=np.int64, count=len(column))
    problems.add_rows(
        name,
        np.flatnonzero(lengths > max_chars),
        f"longer than {max_chars} characters",
        Reason.TOO_LONG,
    )
    return True


def _report_rows(
    name: str, data: list[Any], is_bad: Callable[[Any], bool], reason: str, problems: _Problems
) -> None:
    """The slow path, taken only for bad input: name the rows at fault."""
    rows = np.flatnonzero(np.fromiter(map(is_bad, data), dtype=bool, count=len(data)))
    nested = np.fromiter(
        (isinstance(data[r], list | dict) for r in rows), dtype=bool, count=rows.size
    )
    if nested.any():
        problems.add_rows(
            name,
            rows[nested],
            "must be a single value per row, not a list or object",
            Reason.WRONG_SHAPE,
        )
    problems.add_rows(name, rows[~nested], reason, Reason.WRONG_DATATYPE)


def encode_response(
    *,
    model_name: str,
    model_version: str,
    response_id: str,
    probabilities: npt.NDArray[np.float64],
    churn: npt.NDArray[np.bool_],
    customer_ids: list[str] | None,
    requested_outputs: tuple[str, ...] | None,
    parameters: Mapping[str, str | float | int | bool],
) -> bytes:
    rows = [int(probabilities.shape[0])]
    outputs: dict[str, dict[str, Any]] = {
        PROBABILITY_OUTPUT: {"datatype": "FP64", "data": probabilities},
        CLASS_OUTPUT: {"datatype": "BOOL", "data": churn},
    }
    if customer_ids is not None:
        outputs[CUSTOMER_ID_INPUT] = {"datatype": "BYTES", "data": customer_ids}
    names = requested_outputs or tuple(outputs)
    document = {
        "model_name": model_name,
        "model_version": model_version,
        "id": response_id,
        "parameters": dict(parameters),
        "outputs": [
            {"name": name, "shape": rows, **outputs[name]} for name in names if name in outputs
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_predictor_request(
    matrix: npt.NDArray[np.float64], request_id: str, binary: bool
) -> tuple[bytes, dict[str, str]]:
    """The FP64 [N, F] model matrix as a v2 request: JSON, or JSON header + raw bytes that
    also asks for the answer as raw bytes (``binary_data_output``)."""
    tensor: dict[str, Any] = {
        "name": PREDICTOR_INPUT,
        "datatype": "FP64",
        "shape": list(matrix.shape),
    }
    if not binary:
        tensor["data"] = matrix
        body = orjson.dumps(
            {"id": request_id, "inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        return body, {"content-type": "application/json"}
    raw = np.ascontiguousarray(matrix, dtype="<f8").tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(
        {"id": request_id, "inputs": [tensor], "parameters": {"binary_data_output": True}}
    )
    return header + raw, {
        "content-type": "application/octet-stream",
        BINARY_HEADER: str(len(header)),
    }


def not_class_probabilities(
    name: str, datatype: str, shape: list[int], rows: int
) -> PredictorProtocolError:
    """The refusal of a predictor output that is not [rows, 2] class probabilities."""
    return PredictorProtocolError(
        f"output {name!r} is {datatype} {shape}; expected class probabilities FP64 "
        f"[{rows}, 2] (set PREDICT_PROBA=true on kserve-sklearnserver, or "
        "predict_fn=predict_proba on MLServer)"
    )


def decode_predictor_response(
    body: bytes, headers: Mapping[str, str], rows: int
) -> npt.NDArray[np.float64]:
    """Positive-class probabilities [N] from a predict_proba output of shape [N, 2].

    kserve-sklearnserver (PREDICT_PROBA=true) names it ``output-0``; MLServer's sklearn
    runtime (predict_fn=predict_proba) names it ``predict_proba``. Any single FP32/FP64
    [N, 2] output is accepted; class labels ([N] integers) are refused, never guessed at.
    """
    header_length = headers.get(BINARY_HEADER)
    json_end = len(body) if header_length is None else int(header_length)
    try:
        document = orjson.loads(body[:json_end])
        outputs = document["outputs"]
        if not isinstance(outputs, list) or len(outputs) != 1:
            names = [o.get("name") for o in outputs] if isinstance(outputs, list) else outputs
            raise PredictorProtocolError(f"expected exactly one output, got {names!r}")
        output = outputs[0]
        name, shape, datatype = output["name"], output["shape"], output["datatype"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise PredictorProtocolError(f"not a v2 inference response ({exc!r})") from None
    if shape != [rows, 2] or datatype not in PROBABILITY_DATATYPES:
        raise not_class_probabilities(name, datatype, shape, rows)
    dtype = np.float64 if datatype == "FP64" else np.float32
    parameters = output.get("parameters") or {}
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        try:
            probabilities = np.frombuffer(
                body, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=json_end
            )
        except (ValueError, TypeError) as exc:
            raise PredictorProtocolError(f"output {name!r} has unusable data ({exc})") from None
    else:
        try:
            probabilities = np.asarray(output["data"], dtype=dtype)
        except (KeyError, ValueError, TypeError) as exc:
            raise PredictorProtocolError(f"output {name!r} has unusable data ({exc!r})") from None
    if probabilities.size != 2 * rows:
        raise PredictorProtocolError(
            f"output {name!r} holds {probabilities.size} values, expected {2 * rows}"
        )
    positive: npt.NDArray[np.float64] = probabilities.reshape(rows, 2)[:, 1].astype(np.float64)
    return positive
