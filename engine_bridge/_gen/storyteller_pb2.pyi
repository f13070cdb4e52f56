from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_FORMAT_UNSPECIFIED: _ClassVar[FrameFormat]
    FRAME_FORMAT_RGB8: _ClassVar[FrameFormat]
    FRAME_FORMAT_PNG: _ClassVar[FrameFormat]
    FRAME_FORMAT_JPEG: _ClassVar[FrameFormat]

class Pacing(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PACING_UNSPECIFIED: _ClassVar[Pacing]
    PACING_REAL_TIME: _ClassVar[Pacing]
    PACING_AS_FAST_AS_POSSIBLE: _ClassVar[Pacing]

class ShotPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHOT_POLICY_UNSPECIFIED: _ClassVar[ShotPolicy]
    SHOT_POLICY_QUEUE: _ClassVar[ShotPolicy]
    SHOT_POLICY_CUT: _ClassVar[ShotPolicy]

class ShotPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHOT_PHASE_UNSPECIFIED: _ClassVar[ShotPhase]
    SHOT_PHASE_STARTED: _ClassVar[ShotPhase]
    SHOT_PHASE_COMPLETED: _ClassVar[ShotPhase]
    SHOT_PHASE_CUT: _ClassVar[ShotPhase]
    SHOT_PHASE_CANCELLED: _ClassVar[ShotPhase]
    SHOT_PHASE_DROPPED: _ClassVar[ShotPhase]
    SHOT_PHASE_FAILED: _ClassVar[ShotPhase]

class PromptMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMPT_MODE_UNSPECIFIED: _ClassVar[PromptMode]
    PROMPT_MODE_STRICT: _ClassVar[PromptMode]
    PROMPT_MODE_LENIENT: _ClassVar[PromptMode]

class CloseReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOSE_REASON_UNSPECIFIED: _ClassVar[CloseReason]
    CLOSE_REASON_CLIENT: _ClassVar[CloseReason]
    CLOSE_REASON_IDLE: _ClassVar[CloseReason]
    CLOSE_REASON_SHUTDOWN: _ClassVar[CloseReason]
FRAME_FORMAT_UNSPECIFIED: FrameFormat
FRAME_FORMAT_RGB8: FrameFormat
FRAME_FORMAT_PNG: FrameFormat
FRAME_FORMAT_JPEG: FrameFormat
PACING_UNSPECIFIED: Pacing
PACING_REAL_TIME: Pacing
PACING_AS_FAST_AS_POSSIBLE: Pacing
SHOT_POLICY_UNSPECIFIED: ShotPolicy
SHOT_POLICY_QUEUE: ShotPolicy
SHOT_POLICY_CUT: ShotPolicy
SHOT_PHASE_UNSPECIFIED: ShotPhase
SHOT_PHASE_STARTED: ShotPhase
SHOT_PHASE_COMPLETED: ShotPhase
SHOT_PHASE_CUT: ShotPhase
SHOT_PHASE_CANCELLED: ShotPhase
SHOT_PHASE_DROPPED: ShotPhase
SHOT_PHASE_FAILED: ShotPhase
PROMPT_MODE_UNSPECIFIED: PromptMode
PROMPT_MODE_STRICT: PromptMode
PROMPT_MODE_LENIENT: PromptMode
CLOSE_REASON_UNSPECIFIED: CloseReason
CLOSE_REASON_CLIENT: CloseReason
CLOSE_REASON_IDLE: CloseReason
CLOSE_REASON_SHUTDOWN: CloseReason

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("server_version", "preset", "available_presets", "backend", "backend_reason", "width", "height", "fps", "frames_per_shot", "max_chunks_per_shot", "chunk_frames", "max_prompt_chars", "limits", "usage", "auth_required", "server_events", "vocabulary", "text_len", "default_prompt_mode", "model")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PRESETS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_REASON_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SHOT_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNKS_PER_SHOT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_CHARS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SERVER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    TEXT_LEN_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROMPT_MODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    preset: str
    available_presets: _containers.RepeatedScalarFieldContainer[str]
    backend: str
    backend_reason: str
    width: int
    height: int
    fps: int
    frames_per_shot: int
    max_chunks_per_shot: int
    chunk_frames: _containers.RepeatedScalarFieldContainer[int]
    max_prompt_chars: int
    limits: Limits
    usage: Usage
    auth_required: bool
    server_events: _containers.RepeatedScalarFieldContainer[str]
    vocabulary: _containers.RepeatedScalarFieldContainer[str]
    text_len: int
    default_prompt_mode: PromptMode
    model: str
    def __init__(self, server_version: _Optional[str] = ..., preset: _Optional[str] = ..., available_presets: _Optional[_Iterable[str]] = ..., backend: _Optional[str] = ..., backend_reason: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[int] = ..., frames_per_shot: _Optional[int] = ..., max_chunks_per_shot: _Optional[int] = ..., chunk_frames: _Optional[_Iterable[int]] = ..., max_prompt_chars: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., auth_required: _Optional[bool] = ..., server_events: _Optional[_Iterable[str]] = ..., vocabulary: _Optional[_Iterable[str]] = ..., text_len: _Optional[int] = ..., default_prompt_mode: _Optional[_Union[PromptMode, str]] = ..., model: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_sessions", "cache_budget_bytes", "session_cache_bytes", "max_shots_per_request", "max_queued_shots", "max_buffer_frames", "default_buffer_frames", "max_message_bytes", "idle_timeout_ms", "max_script_bytes", "max_param_chars")
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    SESSION_CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SHOTS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_SHOTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUFFER_FRAMES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BUFFER_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_SCRIPT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAM_CHARS_FIELD_NUMBER: _ClassVar[int]
    max_sessions: int
    cache_budget_bytes: int
    session_cache_bytes: int
    max_shots_per_request: int
    max_queued_shots: int
    max_buffer_frames: int
    default_buffer_frames: int
    max_message_bytes: int
    idle_timeout_ms: int
    max_script_bytes: int
    max_param_chars: int
    def __init__(self, max_sessions: _Optional[int] = ..., cache_budget_bytes: _Optional[int] = ..., session_cache_bytes: _Optional[int] = ..., max_shots_per_request: _Optional[int] = ..., max_queued_shots: _Optional[int] = ..., max_buffer_frames: _Optional[int] = ..., default_buffer_frames: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., idle_timeout_ms: _Optional[int] = ..., max_script_bytes: _Optional[int] = ..., max_param_chars: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("open_sessions", "busy_sessions", "cache_bytes_in_use", "chunks_generated", "frames_sent", "frames_dropped")
    OPEN_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    BUSY_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_BYTES_IN_USE_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SENT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    open_sessions: int
    busy_sessions: int
    cache_bytes_in_use: int
    chunks_generated: int
    frames_sent: int
    frames_dropped: int
    def __init__(self, open_sessions: _Optional[int] = ..., busy_sessions: _Optional[int] = ..., cache_bytes_in_use: _Optional[int] = ..., chunks_generated: _Optional[int] = ..., frames_sent: _Optional[int] = ..., frames_dropped: _Optional[int] = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("seed", "global_caption", "frame_format", "jpeg_quality", "pacing", "buffer_frames", "director_script", "prompt_mode")
    SEED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_CAPTION_FIELD_NUMBER: _ClassVar[int]
    FRAME_FORMAT_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    PACING_FIELD_NUMBER: _ClassVar[int]
    BUFFER_FRAMES_FIELD_NUMBER: _ClassVar[int]
    DIRECTOR_SCRIPT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_MODE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    global_caption: str
    frame_format: FrameFormat
    jpeg_quality: int
    pacing: Pacing
    buffer_frames: int
    director_script: str
    prompt_mode: PromptMode
    def __init__(self, seed: _Optional[int] = ..., global_caption: _Optional[str] = ..., frame_format: _Optional[_Union[FrameFormat, str]] = ..., jpeg_quality: _Optional[int] = ..., pacing: _Optional[_Union[Pacing, str]] = ..., buffer_frames: _Optional[int] = ..., director_script: _Optional[str] = ..., prompt_mode: _Optional[_Union[PromptMode, str]] = ...) -> None: ...

class OpenSessionResponse(_message.Message):
    __slots__ = ("session_id", "width", "height", "fps", "frame_format", "pacing", "buffer_frames", "jpeg_quality", "cache_bytes", "idle_timeout_ms", "events", "prompt_mode", "caption_dropped_words")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PACING_FIELD_NUMBER: _ClassVar[int]
    BUFFER_FRAMES_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_MODE_FIELD_NUMBER: _ClassVar[int]
    CAPTION_DROPPED_WORDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    width: int
    height: int
    fps: int
    frame_format: FrameFormat
    pacing: Pacing
    buffer_frames: int
    jpeg_quality: int
    cache_bytes: int
    idle_timeout_ms: int
    events: _containers.RepeatedScalarFieldContainer[str]
    prompt_mode: PromptMode
    caption_dropped_words: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[int] = ..., frame_format: _Optional[_Union[FrameFormat, str]] = ..., pacing: _Optional[_Union[Pacing, str]] = ..., buffer_frames: _Optional[int] = ..., jpeg_quality: _Optional[int] = ..., cache_bytes: _Optional[int] = ..., idle_timeout_ms: _Optional[int] = ..., events: _Optional[_Iterable[str]] = ..., prompt_mode: _Optional[_Union[PromptMode, str]] = ..., caption_dropped_words: _Optional[_Iterable[str]] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ("shots_done", "frames_generated")
    SHOTS_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_GENERATED_FIELD_NUMBER: _ClassVar[int]
    shots_done: int
    frames_generated: int
    def __init__(self, shots_done: _Optional[int] = ..., frames_generated: _Optional[int] = ...) -> None: ...

class ShotSpec(_message.Message):
    __slots__ = ("prompt", "chunks")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    chunks: int
    def __init__(self, prompt: _Optional[str] = ..., chunks: _Optional[int] = ...) -> None: ...

class SubmitShotRequest(_message.Message):
    __slots__ = ("session_id", "shots", "policy")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    shots: _containers.RepeatedCompositeFieldContainer[ShotSpec]
    policy: ShotPolicy
    def __init__(self, session_id: _Optional[str] = ..., shots: _Optional[_Iterable[_Union[ShotSpec, _Mapping]]] = ..., policy: _Optional[_Union[ShotPolicy, str]] = ...) -> None: ...

class SubmitShotResponse(_message.Message):
    __slots__ = ("shot_ids", "queued_shots", "dropped")
    SHOT_IDS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_SHOTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    shot_ids: _containers.RepeatedScalarFieldContainer[int]
    queued_shots: int
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedWords]
    def __init__(self, shot_ids: _Optional[_Iterable[int]] = ..., queued_shots: _Optional[int] = ..., dropped: _Optional[_Iterable[_Union[DroppedWords, _Mapping]]] = ...) -> None: ...

class DroppedWords(_message.Message):
    __slots__ = ("words",)
    WORDS_FIELD_NUMBER: _ClassVar[int]
    words: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, words: _Optional[_Iterable[str]] = ...) -> None: ...

class TriggerEventRequest(_message.Message):
    __slots__ = ("session_id", "event", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    event: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, session_id: _Optional[str] = ..., event: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TriggerEventResponse(_message.Message):
    __slots__ = ("shot_ids", "suppressed", "cooldown_remaining_ms", "policy", "queued_shots", "dropped")
    SHOT_IDS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    QUEUED_SHOTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    shot_ids: _containers.RepeatedScalarFieldContainer[int]
    suppressed: bool
    cooldown_remaining_ms: int
    policy: ShotPolicy
    queued_shots: int
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedWords]
    def __init__(self, shot_ids: _Optional[_Iterable[int]] = ..., suppressed: _Optional[bool] = ..., cooldown_remaining_ms: _Optional[int] = ..., policy: _Optional[_Union[ShotPolicy, str]] = ..., queued_shots: _Optional[int] = ..., dropped: _Optional[_Iterable[_Union[DroppedWords, _Mapping]]] = ...) -> None: ...

class WatchFramesRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class PlayRequest(_message.Message):
    __slots__ = ("request_id", "open", "attach", "submit", "trigger", "cancel")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    open: OpenSessionRequest
    attach: AttachSession
    submit: ShotBatch
    trigger: EventTrigger
    cancel: CancelShots
    def __init__(self, request_id: _Optional[int] = ..., open: _Optional[_Union[OpenSessionRequest, _Mapping]] = ..., attach: _Optional[_Union[AttachSession, _Mapping]] = ..., submit: _Optional[_Union[ShotBatch, _Mapping]] = ..., trigger: _Optional[_Union[EventTrigger, _Mapping]] = ..., cancel: _Optional[_Union[CancelShots, _Mapping]] = ...) -> None: ...

class AttachSession(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ShotBatch(_message.Message):
    __slots__ = ("shots", "policy")
    SHOTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    shots: _containers.RepeatedCompositeFieldContainer[ShotSpec]
    policy: ShotPolicy
    def __init__(self, shots: _Optional[_Iterable[_Union[ShotSpec, _Mapping]]] = ..., policy: _Optional[_Union[ShotPolicy, str]] = ...) -> None: ...

class EventTrigger(_message.Message):
    __slots__ = ("event", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    event: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, event: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CancelShots(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StoryUpdate(_message.Message):
    __slots__ = ("frame", "shot", "command", "opened", "closed")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    SHOT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    shot: ShotEvent
    command: CommandResult
    opened: OpenSessionResponse
    closed: SessionClosed
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ..., shot: _Optional[_Union[ShotEvent, _Mapping]] = ..., command: _Optional[_Union[CommandResult, _Mapping]] = ..., opened: _Optional[_Union[OpenSessionResponse, _Mapping]] = ..., closed: _Optional[_Union[SessionClosed, _Mapping]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("session_id", "shot_id", "shot_index", "chunk_index", "frame_index", "story_frame", "pts_us", "format", "width", "height", "data", "chunk_gen_us", "buffered_us", "dropped_before", "setup_us")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOT_ID_FIELD_NUMBER: _ClassVar[int]
    SHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    STORY_FRAME_FIELD_NUMBER: _ClassVar[int]
    PTS_US_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_GEN_US_FIELD_NUMBER: _ClassVar[int]
    BUFFERED_US_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SETUP_US_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    shot_id: int
    shot_index: int
    chunk_index: int
    frame_index: int
    story_frame: int
    pts_us: int
    format: FrameFormat
    width: int
    height: int
    data: bytes
    chunk_gen_us: int
    buffered_us: int
    dropped_before: int
    setup_us: int
    def __init__(self, session_id: _Optional[str] = ..., shot_id: _Optional[int] = ..., shot_index: _Optional[int] = ..., chunk_index: _Optional[int] = ..., frame_index: _Optional[int] = ..., story_frame: _Optional[int] = ..., pts_us: _Optional[int] = ..., format: _Optional[_Union[FrameFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ..., chunk_gen_us: _Optional[int] = ..., buffered_us: _Optional[int] = ..., dropped_before: _Optional[int] = ..., setup_us: _Optional[int] = ...) -> None: ...

class ShotEvent(_message.Message):
    __slots__ = ("session_id", "shot_id", "phase", "shot_index", "prompt", "event", "chunks_requested", "chunks_done", "frames_generated", "frames_dropped", "frames_discarded", "frames_sha256", "gen_us", "error_code", "error_message", "dropped_words")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOT_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_GENERATED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DISCARDED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SHA256_FIELD_NUMBER: _ClassVar[int]
    GEN_US_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_WORDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    shot_id: int
    phase: ShotPhase
    shot_index: int
    prompt: str
    event: str
    chunks_requested: int
    chunks_done: int
    frames_generated: int
    frames_dropped: int
    frames_discarded: int
    frames_sha256: str
    gen_us: int
    error_code: int
    error_message: str
    dropped_words: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., shot_id: _Optional[int] = ..., phase: _Optional[_Union[ShotPhase, str]] = ..., shot_index: _Optional[int] = ..., prompt: _Optional[str] = ..., event: _Optional[str] = ..., chunks_requested: _Optional[int] = ..., chunks_done: _Optional[int] = ..., frames_generated: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., frames_discarded: _Optional[int] = ..., frames_sha256: _Optional[str] = ..., gen_us: _Optional[int] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., dropped_words: _Optional[_Iterable[str]] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("request_id", "code", "message", "unknown_words", "shot_ids", "suppressed", "cooldown_remaining_ms", "queued_shots", "dropped")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_WORDS_FIELD_NUMBER: _ClassVar[int]
    SHOT_IDS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_SHOTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    code: int
    message: str
    unknown_words: _containers.RepeatedScalarFieldContainer[str]
    shot_ids: _containers.RepeatedScalarFieldContainer[int]
    suppressed: bool
    cooldown_remaining_ms: int
    queued_shots: int
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedWords]
    def __init__(self, request_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., unknown_words: _Optional[_Iterable[str]] = ..., shot_ids: _Optional[_Iterable[int]] = ..., suppressed: _Optional[bool] = ..., cooldown_remaining_ms: _Optional[int] = ..., queued_shots: _Optional[int] = ..., dropped: _Optional[_Iterable[_Union[DroppedWords, _Mapping]]] = ...) -> None: ...

class SessionClosed(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: CloseReason
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[_Union[CloseReason, str]] = ...) -> None: ...
