"""The engine bridge: what game engines talk to.

Owns the gRPC contract's Python side (`wire`, generated stubs in `_gen/`), the server (`server`,
`servicer`, `session`, `registry`, `outbox`, `status`, `interceptors`), the cutscene director
(`director`), and the client SDK (`client`). Importing this package imports nothing else: the client
SDK must stay free of torch and of the runtime, so each piece is imported where it is used.
"""
__version__ = "0.1.0"
