"""VoiceHub (`/hubs/voice`): caller sessions and live monitoring (voicehub-contract.md sections 2-3)."""
