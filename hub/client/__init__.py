"""Python clients for VoiceHub (SignalR over WebSockets)."""
