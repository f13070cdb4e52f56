"""Scale-out on a Ray cluster (optional extra `cluster`): sessions as Ray actors, stateless gRPC front doors.

- `journal`: what survives a node (a session's journal) and how a lost session resumes from it (pure data).
- `journaled`: the engine bridge's Session, writing its journal and able to start from a resume plan.
- `actor`: the session actor (one session, its own engine, on the node that holds its cache).
- `directory`: the one named actor on the head node: placement and admission, session ids, journals, rebuilds.
- `frontdoor`: the registry a BridgeServer uses to serve sessions that live in the cluster.
- `serve`, `bench`, `testing`: `shotstream serve --cluster`, `shotstream bench --cluster`, a local test cluster.
- `nodehost`: the local test cluster's nodes, started by a spawned process of their own.

Only these modules import Ray; `import runtime` and `import engine_bridge` never do.
"""
