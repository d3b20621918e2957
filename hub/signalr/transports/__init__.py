"""The three SignalR transports over ASGI: WebSockets, Server-Sent Events, long polling."""
