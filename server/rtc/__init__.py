"""WebRTC in the server: the operator publishes, the relay passes packets on to every venue."""
