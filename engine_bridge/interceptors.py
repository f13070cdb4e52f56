"""The server interceptor: token authentication, undecodable requests, and typed errors -> status codes.

Every Storyteller handler is wrapped here, so the servicer only raises typed errors and the mapping in
`status` is applied in one place for all four call shapes. Request deserialisers are wrapped too: bytes
that do not parse become INVALID_ARGUMENT instead of gRPC's generic INTERNAL. The health service is
never wrapped (load balancers probe it without a token); reflection gets the token check only.
"""
from __future__ import annotations

import hmac
import logging
from typing import Callable

import grpc
from grpc_health.v1 import health

from engine_bridge.errors import AuthError, BadRequestError
from engine_bridge.status import classify
from engine_bridge.wire import SERVICE_NAME, UNKNOWN_WORDS_KEY

log = logging.getLogger(__name__)
_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
_OWN_PREFIX = f"/{SERVICE_NAME}/"


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception):
        self.error = error


class BridgeInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str | None = None):
        self._expected = f"Bearer {token}".encode() if token else None

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(_HEALTH_PREFIX):
            return handler
        authorized = self._authorized(handler_call_details.invocation_metadata)
        return _wrap(handler, method, authorized, map_errors=method.startswith(_OWN_PREFIX))

    def _authorized(self, metadata) -> bool:
        if self._expected is None:
            return True
        for key, value in metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(given, self._expected)
        return False


def _wrap(handler, method: str, authorized: bool, map_errors: bool):
    def check(request) -> None:
        if not authorized:
            raise AuthError("this server needs the metadata 'authorization: Bearer <token>'")
        if isinstance(request, _Malformed):
            raise BadRequestError(f"the request does not parse as its message type: {request.error}")

    def fail(context, exc: Exception) -> None:
        if not map_errors and not isinstance(exc, AuthError):
            raise exc
        status = classify(exc)
        if status.unknown_words:
            context.set_trailing_metadata(((UNKNOWN_WORDS_KEY, "\n".join(status.unknown_words).encode()),))
        log.info("call refused", extra={"method": method, "code": status.code.name, "reason": status.message})
        context.abort(status.code, status.message)

    def one(request):
        check(request)
        return request

    def many(requests):
        check(None)  # the token, before anything is read; then each message as it is read
        return (one(request) for request in requests)

    def returning(behavior: Callable, adapt: Callable):
        def call(request_or_iterator, context):
            try:
                return behavior(adapt(request_or_iterator), context)
            except Exception as exc:
                fail(context, exc)
        return call

    def streaming(behavior: Callable, adapt: Callable):
        def call(request_or_iterator, context):
            try:
                yield from behavior(adapt(request_or_iterator), context)
            except Exception as exc:
                fail(context, exc)
        return call

    deserialize = _safe(handler.request_deserializer)
    serialize = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(returning(handler.unary_unary, one), deserialize, serialize)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream, one), deserialize, serialize)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(returning(handler.stream_unary, many), deserialize, serialize)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream, many), deserialize, serialize)


def _safe(deserialize):
    if deserialize is None:
        return None

    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError and friends: answered as INVALID_ARGUMENT by the wrapper
            return _Malformed(exc)

    return parse
