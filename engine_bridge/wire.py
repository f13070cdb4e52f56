"""The generated protobuf messages and gRPC stubs of `shotstream.v1`, under short stable names.

`pb` holds the messages and enums, `rpc` the service stub, servicer base and registration function.
The generated modules live in `_gen/` (see `protogen` for why they are committed).
"""
from engine_bridge._gen import storyteller_pb2 as pb
from engine_bridge._gen import storyteller_pb2_grpc as rpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Storyteller"].full_name  # "shotstream.v1.Storyteller"
TERMINAL_PHASES = frozenset({
    pb.SHOT_PHASE_COMPLETED, pb.SHOT_PHASE_CUT, pb.SHOT_PHASE_CANCELLED, pb.SHOT_PHASE_DROPPED,
    pb.SHOT_PHASE_FAILED,
})
UNKNOWN_WORDS_KEY = "shotstream-unknown-words-bin"  # trailing metadata: UTF-8, one word per line

__all__ = ["pb", "rpc", "SERVICE_NAME", "TERMINAL_PHASES", "UNKNOWN_WORDS_KEY"]
