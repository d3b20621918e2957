"""The SignalR server runtime on Starlette/uvicorn: endpoints, connections, hub method dispatch."""
